"""Executing a fill: the one place that moves cash and shares, always inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from ledger.book import store
from ledger.book.pricing import FillPrice, execution_price, price_fill
from ledger.book.store import AccountState, PositionState
from ledger.constants import SIDE_BUY
from ledger.money import round_amount


@dataclass(frozen=True)
class QuoteSnapshot:
    """The quote a fill was priced from (recorded on the fill for audit)."""

    bid: Decimal
    ask: Decimal
    quoted_at: datetime


@dataclass(frozen=True)
class FillableOrder:
    """What a fill needs to know about its order."""

    pk: int
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    limit_price: Decimal | None
    slippage_bps: Decimal
    fee_bps: Decimal
    reserved_cash: Decimal
    reserved_qty: Decimal


def price_order(order: FillableOrder, quote: QuoteSnapshot) -> FillPrice:
    price = execution_price(order.side, quote.bid, quote.ask, order.slippage_bps, order.limit_price)
    return price_fill(order.qty, price, order.fee_bps)


def apply_fill(
    conn: Connection,
    account: AccountState,
    position: PositionState,
    order: FillableOrder,
    priced: FillPrice,
    quote: QuoteSnapshot,
    run_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Record the fill, its cash movement and the position change; update ``account`` and ``position`` in place.

    The caller has checked that the account can afford a buy and holds the shares for a sell, and saves
    ``account`` and the order's status afterwards (so a batch saves the account once).
    Cost basis includes buy fees; realized P&L of a sell is proceeds net of fee minus the cost basis share sold.
    """
    if order.side == SIDE_BUY:
        cash_delta = -priced.buy_cost
        realized = Decimal(0)
        position.qty += order.qty
        position.cost_basis += priced.buy_cost
    else:
        cost_share = (
            position.cost_basis
            if order.qty == position.qty
            else round_amount(position.cost_basis * order.qty / position.qty)
        )
        cash_delta = priced.sell_proceeds
        realized = priced.sell_proceeds - cost_share
        position.qty -= order.qty
        position.reserved_qty -= order.reserved_qty
        position.cost_basis -= cost_share
        position.realized_pnl += realized
    account.cash += cash_delta
    account.reserved_cash -= order.reserved_cash
    fill_values = {
        "order_id": order.pk,
        "account_id": account.id,
        "epoch": account.epoch,
        "run_id": run_id,
        "symbol": order.symbol,
        "side": order.side,
        "qty_e6": order.qty,
        "price_e6": priced.price,
        "notional_e6": priced.notional,
        "fee_e6": priced.fee,
        "realized_pnl_e6": realized,
        "slippage_bps_e6": order.slippage_bps,
        "fee_bps_e6": order.fee_bps,
        "quote_bid_e6": quote.bid,
        "quote_ask_e6": quote.ask,
        "quote_at": quote.quoted_at,
        "filled_at": now,
    }
    fill_id = store.insert_fill(conn, fill_values)
    store.insert_cash_movement(conn, account, run_id, "fill", cash_delta, now, fill_id=fill_id)
    store.save_position(conn, account, position, now)
    return {**fill_values, "order_id": order.order_id, "fill_id": fill_id}
