"""Use cases on orders: submit (fill now, rest, or reject) and cancel. Each runs inside one write transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row

from ledger.book import store
from ledger.book.fills import FillableOrder, QuoteSnapshot, apply_fill, price_order
from ledger.book.pricing import buy_reservation, is_marketable
from ledger.book.store import AccountState, PositionState
from ledger.book.validation import InvalidOrder, OrderRequest
from ledger.constants import (
    ORDER_LIMIT,
    SIDE_BUY,
    STATUS_CANCELED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_REJECTED,
)
from ledger.exceptions import (
    ClientOrderIdConflictError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderRejectedError,
)

ZERO = Decimal(0)


@dataclass(frozen=True)
class TradingContext:
    """Who is trading: the account, the run, and the run's slippage and fee settings."""

    account_id: int
    run_id: str
    slippage_bps: Decimal
    fee_bps: Decimal


@dataclass
class SubmitOutcome:
    """The order as stored; ``error`` is set when it was rejected (raised after the rejection commits)."""

    order: dict[str, Any]
    fill: dict[str, Any] | None = None
    error: OrderRejectedError | None = None
    replayed: bool = False


def new_order_id() -> str:
    """A random 128-bit id (uuid4 hex): unique forever, unlike the seed's 8 hex characters."""
    return uuid.uuid4().hex


def _base_values(ctx: TradingContext, account: AccountState, now: datetime) -> dict[str, Any]:
    return {
        "order_id": new_order_id(),
        "account_id": account.id,
        "epoch": account.epoch,
        "run_id": ctx.run_id,
        "slippage_bps_e6": ctx.slippage_bps,
        "fee_bps_e6": ctx.fee_bps,
        "filled_qty_e6": ZERO,
        "reserved_cash_e6": ZERO,
        "reserved_qty_e6": ZERO,
        "reject_reason": None,
        "submitted_at": now,
        "updated_at": now,
    }


def record_invalid_order(
    conn: Connection, ctx: TradingContext, invalid: InvalidOrder, now: datetime
) -> SubmitOutcome:
    """Keep an order that failed validation for audit, as submitted (it never holds a client_order_id)."""
    account = store.lock_account(conn, ctx.account_id)
    values = {
        **_base_values(ctx, account, now),
        "client_order_id": None,
        "symbol": invalid.symbol,
        "side": invalid.side,
        "order_type": invalid.order_type,
        "qty_e6": None,
        "limit_price_e6": None,
        "status": STATUS_REJECTED,
        "reject_reason": invalid.reason,
    }
    pk = store.insert_order(conn, values)
    store.insert_order_event(conn, pk, now, None, STATUS_REJECTED, invalid.reason)
    return SubmitOutcome({**values, "id": pk}, error=OrderRejectedError(invalid.symbol, invalid.reason))


def _same_parameters(row: Row[Any], request: OrderRequest) -> bool:
    m = row._mapping
    return (
        m["symbol"] == request.symbol
        and m["side"] == request.side
        and m["order_type"] == request.order_type
        and m["qty_e6"] == request.qty
        and m["limit_price_e6"] == request.limit_price
    )


def submit_order(conn: Connection, ctx: TradingContext, request: OrderRequest, now: datetime) -> SubmitOutcome:
    """Fill a market or marketable limit order now, rest a non-marketable limit, or reject; never half of one."""
    account = store.lock_account(conn, ctx.account_id)
    if request.client_order_id is not None:
        existing = store.find_live_order_by_client_id(conn, account.id, request.client_order_id)
        if existing is not None:
            if not _same_parameters(existing, request):
                raise ClientOrderIdConflictError(
                    f"client_order_id {request.client_order_id!r} already names order {existing.order_id} "
                    f"({existing.side} {existing.qty_e6} {existing.symbol} {existing.order_type}); "
                    "a different order needs a different id"
                )
            fill = store.fill_for_order(conn, existing.id)
            fill_values = None if fill is None else {**fill._mapping, "order_id": existing.order_id}
            return SubmitOutcome(dict(existing._mapping), fill=fill_values, replayed=True)
    outcome = place_order(conn, ctx, account, request, now, positions={})
    if outcome.error is None:
        store.save_account(conn, account, now)
    return outcome


def place_order(
    conn: Connection,
    ctx: TradingContext,
    account: AccountState,
    request: OrderRequest,
    now: datetime,
    positions: dict[str, PositionState],
) -> SubmitOutcome:
    """Decide and record one order against an already locked ``account`` (edited in place, saved by the caller).

    ``positions`` caches position state across the orders of one transaction.
    """
    quote_row = store.get_quote(conn, account.id, request.symbol)
    quote = None if quote_row is None else QuoteSnapshot(quote_row.bid_e6, quote_row.ask_e6, quote_row.quoted_at)
    position = positions.get(request.symbol)
    if position is None:
        position = positions[request.symbol] = store.get_position(conn, account, request.symbol)
    values = {
        **_base_values(ctx, account, now),
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side,
        "order_type": request.order_type,
        "qty_e6": request.qty,
        "limit_price_e6": request.limit_price,
    }
    order = FillableOrder(
        0, values["order_id"], request.symbol, request.side, request.qty, request.limit_price,
        ctx.slippage_bps, ctx.fee_bps, ZERO, ZERO,
    )
    fills_now = quote is not None and (
        request.order_type != ORDER_LIMIT or is_marketable(request.side, request.limit_price, quote.bid, quote.ask)
    )
    if request.order_type != ORDER_LIMIT and quote is None:
        return _reject(conn, values, OrderRejectedError(request.symbol, f"No quote available for {request.symbol}"))

    if fills_now:
        priced = price_order(order, quote)
        error = _affordability_error(request, account, position, priced.buy_cost)
        if error is not None:
            return _reject(conn, values, error)
        values.update(status=STATUS_FILLED, filled_qty_e6=request.qty)
        pk = store.insert_order(conn, values)
        fill = apply_fill(
            conn, account, position, FillableOrder(pk, *_order_fields(order)), priced, quote, ctx.run_id, now
        )
        _record_events(conn, pk, now, [(None, STATUS_NEW, None), (STATUS_NEW, STATUS_FILLED, None)])
        return SubmitOutcome({**values, "id": pk}, fill=fill)

    assert request.limit_price is not None
    if request.side == SIDE_BUY:
        reserve = buy_reservation(request.qty, request.limit_price, ctx.fee_bps)
        error = _affordability_error(request, account, position, reserve)
        if error is not None:
            return _reject(conn, values, error)
        values["reserved_cash_e6"] = reserve
        account.reserved_cash += reserve
    else:
        error = _affordability_error(request, account, position, ZERO)
        if error is not None:
            return _reject(conn, values, error)
        values["reserved_qty_e6"] = request.qty
        position.reserved_qty += request.qty
        store.save_position(conn, account, position, now)
    values["status"] = STATUS_NEW
    pk = store.insert_order(conn, values)
    reason = "resting: no quote yet" if quote is None else "resting: limit not marketable"
    _record_events(conn, pk, now, [(None, STATUS_NEW, reason)])
    return SubmitOutcome({**values, "id": pk})


def _order_fields(order: FillableOrder) -> tuple[Any, ...]:
    return (
        order.order_id, order.symbol, order.side, order.qty, order.limit_price,
        order.slippage_bps, order.fee_bps, order.reserved_cash, order.reserved_qty,
    )


def _affordability_error(
    request: OrderRequest, account: AccountState, position: PositionState, cash_needed: Decimal
) -> OrderRejectedError | None:
    if request.side == SIDE_BUY:
        if cash_needed > account.available_cash:
            return InsufficientFundsError(
                request.symbol,
                f"Insufficient cash: need ${cash_needed:,.2f}, have ${account.available_cash:,.2f} available",
            )
        return None
    if request.qty > position.available_qty:
        return OrderRejectedError(
            request.symbol,
            f"Insufficient shares: need {request.qty.normalize():f}, have {position.available_qty.normalize():f}"
            + (f" ({position.reserved_qty.normalize():f} reserved by resting sells)" if position.reserved_qty else ""),
        )
    return None


def _reject(conn: Connection, values: dict[str, Any], error: OrderRejectedError) -> SubmitOutcome:
    values.update(status=STATUS_REJECTED, reject_reason=error.reason, reserved_cash_e6=ZERO, reserved_qty_e6=ZERO)
    pk = store.insert_order(conn, values)
    _record_events(conn, pk, values["submitted_at"], [(None, STATUS_REJECTED, error.reason)])
    return SubmitOutcome({**values, "id": pk}, error=error)


def _record_events(
    conn: Connection, pk: int, now: datetime, transitions: list[tuple[str | None, str, str | None]]
) -> None:
    for from_status, to_status, reason in transitions:
        store.insert_order_event(conn, pk, now, from_status, to_status, reason)


def cancel_order(conn: Connection, ctx: TradingContext, order_id: str, now: datetime) -> dict[str, Any]:
    """Cancel a resting order and release its reservation; a finished order just reports its status."""
    if not isinstance(order_id, str) or not order_id:
        raise OrderNotFoundError(repr(order_id)[:64])
    account = store.lock_account(conn, ctx.account_id)
    row = store.find_order(conn, account.id, order_id)
    if row is None:
        raise OrderNotFoundError(order_id)
    if row.status == STATUS_NEW:
        release_resting(conn, account, row, now, "canceled by request")
        store.save_account(conn, account, now)
        status = STATUS_CANCELED
    else:
        status = row.status
    return {"order_id": order_id, "status": status, "timestamp": now}


def release_resting(conn: Connection, account: AccountState, row: Row[Any], now: datetime, reason: str) -> None:
    """Mark a resting order canceled and give back the cash or shares it reserved (``account`` saved by caller)."""
    account.reserved_cash -= row.reserved_cash_e6
    if row.reserved_qty_e6:
        position = store.get_position(conn, account, row.symbol)
        position.reserved_qty -= row.reserved_qty_e6
        store.save_position(conn, account, position, now)
    store.update_order(
        conn, row.id, {"status": STATUS_CANCELED, "reserved_cash_e6": ZERO, "reserved_qty_e6": ZERO, "updated_at": now}
    )
    store.insert_order_event(conn, row.id, now, STATUS_NEW, STATUS_CANCELED, reason)


def fill_resting(
    conn: Connection,
    account: AccountState,
    position: PositionState,
    row: Row[Any],
    quote: QuoteSnapshot,
    run_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Fill a resting limit order that the new quote crossed; its reservation pays for it."""
    order = FillableOrder(
        row.id, row.order_id, row.symbol, row.side, row.qty_e6, row.limit_price_e6,
        row.slippage_bps_e6, row.fee_bps_e6, row.reserved_cash_e6, row.reserved_qty_e6,
    )
    fill = apply_fill(conn, account, position, order, price_order(order, quote), quote, run_id, now)
    store.update_order(
        conn,
        row.id,
        {
            "status": STATUS_FILLED,
            "filled_qty_e6": row.qty_e6,
            "reserved_cash_e6": ZERO,
            "reserved_qty_e6": ZERO,
            "updated_at": now,
        },
    )
    store.insert_order_event(conn, row.id, now, STATUS_NEW, STATUS_FILLED, "limit crossed by quote")
    return fill
