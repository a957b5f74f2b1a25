"""Executing a fill: the one place that moves cash and shares, always inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from ledger.book.pricing import FillPrice, execution_price, price_fill
from ledger.book.store import AccountState, PositionState, QuoteSnapshot, Store
from ledger.constants import SIDE_BUY
from ledger.money import AmountLimitError, bounded, plain, round_amount


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
    basis_delta: Decimal  # added to the position's (signed) cost basis


class PositionReversalError(AmountLimitError):
    """A fill would take a position through zero (long to short or back): orders never reverse a position."""


def fill_effect(account: AccountState, position: PositionState, order: FillableOrder, priced: FillPrice) -> FillEffect:
    """The fill's effect on cash, the cost basis and realized P&L.

    Positions are signed (a short is a negative quantity) and so is the cost basis: a long's is what it cost,
    buy fees included; a short's is minus what its sales brought in, net of fees. A fill that reduces a position
    realizes P&L on the share of the cost basis it closes: a sell, its proceeds minus that share; a buy to
    cover, minus that share (the proceeds the short brought in) minus what the buy cost. A fill never reverses
    a position (PositionReversalError); AmountLimitError when cash, the position's quantity, value at the fill
    price, cost basis or realized P&L would reach the ledger's 10^12 bound (so no stored amount can overflow
    BIGINT)."""
    held, qty = position.qty, order.qty
    signed = qty if order.side == SIDE_BUY else -qty
    if held != 0 and (held > 0) != (signed > 0):  # reduces the position: closes part or all of it
        if qty > abs(held):
            raise PositionReversalError(
                f"the fill of {plain(qty)} would reverse the position of {plain(held)}; an order may only close it")
        share = position.cost_basis if qty == abs(held) else round_amount(position.cost_basis * qty / abs(held))
        if order.side == SIDE_BUY:
            cash_delta, realized = -priced.buy_cost, -share - priced.buy_cost
        else:
            cash_delta, realized = priced.sell_proceeds, priced.sell_proceeds - share
        bounded(account.cash + cash_delta, "cash after the fill")
        bounded(realized, "the realized P&L")
        bounded(position.realized_pnl + realized, "the position's realized P&L")
        return FillEffect(cash_delta, realized, -share)
    # Opens or adds to a position (long with a buy, short with a sell).
    after = bounded(abs(held + signed), "the position's quantity")
    bounded(after * priced.price, "the position's value at the fill price")
    if order.side == SIDE_BUY:
        bounded(position.cost_basis + priced.buy_cost, "the position's cost basis")
        return FillEffect(-priced.buy_cost, Decimal(0), priced.buy_cost)
    bounded(account.cash + priced.sell_proceeds, "cash after the fill")
    bounded(position.cost_basis - priced.sell_proceeds, "the position's cost basis")
    return FillEffect(priced.sell_proceeds, Decimal(0), -priced.sell_proceeds)


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

    The caller has checked that the account can take the order (see ``ledger.book.orders``) and records the
    order's status; the store saves ``account`` and ``position`` once per transaction (see ``Store.flush``),
    the position with its fill totals (count, bought/sold quantity and notional, fees) and the fill added to its
    UTC day's totals (``daily_totals``): the audits read those rows instead of summing every fill.
    ``effect`` is ``fill_effect``'s: how cash, the cost basis and realized P&L move.
    Returns the fill with the order's public id as ``order_id`` and the fill's key as ``fill_id``.
    """
    cash_delta, realized = effect.cash_delta, effect.realized_pnl
    if order.side == SIDE_BUY:
        position.qty += order.qty
        position.bought_qty += order.qty
        position.bought_notional += priced.notional
    else:
        position.qty -= order.qty
        position.sold_qty += order.qty
        position.sold_notional += priced.notional
    position.reserved_qty -= order.reserved_qty
    position.cost_basis += effect.basis_delta
    position.realized_pnl += realized
    position.fill_count += 1
    position.fees += priced.fee
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
