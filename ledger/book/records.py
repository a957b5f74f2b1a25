"""Rows as the dicts the Broker protocol returns: floats and ISO-free datetimes at the edge only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row

from ledger.money import to_float


def order_record(row: Row[Any] | Mapping[str, Any], *, exact: bool = False) -> dict[str, Any]:
    """An ``orders`` row (a Core row or the store's dict) as a protocol dict: quantities and prices as floats, or
    as the ledger's exact Decimals with ``exact=True`` (the HTTP service renders those as decimal strings).

    ``replaces`` / ``replaced_by``: the public ids of the orders this one replaced or was replaced by, when the
    row carries them (the store's dict after a replace, or a query joining them), else None.
    """
    m = row._mapping if isinstance(row, Row) else row
    number = _same if exact else to_float
    return {
        "order_id": m["order_id"],
        "client_order_id": m["client_order_id"],
        "symbol": m["symbol"],
        "side": m["side"],
        "order_type": m["order_type"],
        "time_in_force": m["time_in_force"],
        "qty": number(m["qty_e6"]),
        "requested_notional": number(m["notional_e6"]),  # a notional order's cash amount (its qty is derived)
        "limit_price": number(m["limit_price_e6"]),
        "stop_price": number(m["stop_price_e6"]),
        "trail_price": number(m["trail_price_e6"]),
        "trail_percent": number(m["trail_percent_e6"]),
        "hwm": number(m["hwm_e6"]),
        "status": m["status"],
        "filled_qty": number(m["filled_qty_e6"]),
        "filled_avg_price": number(m["filled_avg_price_e6"]),
        "reject_reason": m["reject_reason"],
        "run_id": m["run_id"],
        "epoch": m["epoch"],
        "timestamp": m["submitted_at"],
        "updated_at": m["updated_at"],
        "expires_at": m["expires_at"],
        "triggered_at": m["triggered_at"],
        "filled_at": m["filled_at"],
        "canceled_at": m["canceled_at"],
        "expired_at": m["expired_at"],
        "replaced_at": m["replaced_at"],
        "replaces": m.get("replaces"),
        "replaced_by": m.get("replaced_by"),
    }


def _same(value: Any) -> Any:
    return value


def fill_record(m: Any) -> dict[str, Any]:
    """A fill (mapping with the ``fills`` columns plus the public ``order_id``) in the seed's log format, extended."""
    return {
        "order_id": m["order_id"],
        "timestamp": m["filled_at"].isoformat(),
        "symbol": m["symbol"],
        "side": m["side"],
        "qty": to_float(m["qty_e6"]),
        "fill_price": to_float(m["price_e6"]),
        "notional": to_float(m["notional_e6"]),
        "fee": to_float(m["fee_e6"]),
        "slippage_bps": to_float(m["slippage_bps_e6"]),
        "fee_bps": to_float(m["fee_bps_e6"]),
        "realized_pnl": to_float(m["realized_pnl_e6"]),
        "quote_bid": to_float(m["quote_bid_e6"]),
        "quote_ask": to_float(m["quote_ask_e6"]),
        "run_id": m["run_id"],
    }
