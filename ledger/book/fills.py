"""Executing a fill: the one place that moves cash and shares, always inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from ledger.book.pricing import FillPrice, execution_price, price_fill
from ledger.book.store import AccountState, PositionState, QuoteSnapshot, Store
from ledger.constants import SIDE_BUY
from ledger.money import bounded, round_amount


class FillableOrder(NamedTuple):
    """What a fill needs to know about its order (a NamedTuple: built once or twice per order on the hot path)."""

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


class FillEffect(NamedTuple):
    """What a fill does to cash and the position, computed (and bounds-checked) before anything is written."""

    cash_delta: Decimal
    realized_pnl: Decimal
    cost_share: Decimal  # sells: the cost basis of the shares sold


def fill_effect(account: AccountState, position: PositionState, order: FillableOrder, priced: FillPrice) -> FillEffect:
    """The fill's effect; AmountLimitError when cash, the position's quantity, value at the fill price, cost
    basis or realized P&L would reach the ledger's 10^12 bound (so no stored amount can overflow BIGINT)."""
    if order.side == SIDE_BUY:
        qty = bounded(position.qty + order.qty, "the position's quantity")
        bounded(qty * priced.price, "the position's value at the fill price")
        bounded(position.cost_basis + priced.buy_cost, "the position's cost basis")
        return FillEffect(-priced.buy_cost, Decimal(0), Decimal(0))
    cost_share = (
        position.cost_basis
        if order.qty == position.qty
        else round_amount(position.cost_basis * order.qty / position.qty)
    )
    realized = priced.sell_proceeds - cost_share
    bounded(account.cash + priced.sell_proceeds, "cash after the fill")
    bounded(realized, "the realized P&L")
    bounded(position.realized_pnl + realized, "the position's realized P&L")
    return FillEffect(priced.sell_proceeds, realized, cost_share)


def apply_fill(
    store: Store,
    account: AccountState,
    position: PositionState,
    order: FillableOrder,
    priced: FillPrice,
    effect: FillEffect,
    quote: QuoteSnapshot,
    run_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Queue the fill, its cash movement and the position change; update ``account`` and ``position`` in place.

    The caller has checked that the account can afford a buy and holds the shares for a sell, and records the
    order's status; the store saves ``account`` and ``position`` once per transaction (see ``Store.flush``).
    Cost basis includes buy fees; realized P&L of a sell is proceeds net of fee minus the cost basis share sold.
    Returns the fill with the order's public id as ``order_id`` and the fill's key as ``fill_id``.
    """
    cash_delta, realized = effect.cash_delta, effect.realized_pnl
    if order.side == SIDE_BUY:
        position.qty += order.qty
        position.cost_basis += priced.buy_cost
    else:
        position.qty -= order.qty
        position.reserved_qty -= order.reserved_qty
        position.cost_basis -= effect.cost_share
        position.realized_pnl += realized
    store.touch_position(position)
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
    fill_id = store.add_fill(fill_values)
    store.add_cash_movement(account, run_id, "fill", cash_delta, now, fill_key=fill_id)
    return {**fill_values, "order_id": order.order_id, "fill_id": fill_id}
