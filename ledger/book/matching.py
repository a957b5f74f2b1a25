"""When an open order trades against a quote: stop triggers, trailing water marks, how much can fill, at what price.

Pure decisions on an order (the store's dict of its row) and a quote; the use cases in ``ledger.book.orders``
write what they decide. The rules, in Alpaca's vocabulary:

- A ``stop`` or ``stop_limit`` triggers on the quote that reaches its stop (buy: ask >= stop; sell: bid <= stop)
  and from then on works as a market or limit order. A ``trailing_stop`` keeps a water mark (sell: the highest
  bid seen since it was placed; buy: the lowest ask) and its stop trails it by ``trail_price`` or
  ``trail_percent``; it triggers like a stop and then works as a market order.
- A working order trades when marketable: market always, limit when the quote crosses its limit.
- Fill model ``full``: the whole remaining quantity fills. ``displayed_size``: at most the quote's displayed
  size on the side it takes (ask size for buys, bid size for sells), each quote's size consumed once across
  the account's orders, oldest first; a size of 0 means "unknown" and fills fully.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from ledger.book.pricing import is_marketable
from ledger.book.store import AccountState, QuoteSnapshot
from ledger.constants import (
    FILL_DISPLAYED_SIZE,
    ORDER_LIMIT,
    ORDER_STOP_LIMIT,
    ORDER_TRAILING_STOP,
    SIDE_BUY,
    STOP_TYPES,
)
from ledger.money import UNIT, plain, round_amount

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def remaining_qty(order: dict) -> Decimal:
    return order["qty_e6"] - order["filled_qty_e6"]


def is_triggered(order: dict) -> bool:
    """True for an order that works now: not a stop type, or a stop whose trigger was reached."""
    return order["order_type"] not in STOP_TYPES or order["triggered_at"] is not None


def working_limit(order: dict) -> Decimal | None:
    """The price limit of a working order: its limit (limit, triggered stop_limit), else None (market-like)."""
    return order["limit_price_e6"] if order["order_type"] in (ORDER_LIMIT, ORDER_STOP_LIMIT) else None


def trailing_stop_price(order: dict, mark: Decimal) -> Decimal:
    """The stop of a trailing order whose water mark is ``mark``: the trail below it (sell) or above it (buy)."""
    if order["trail_price_e6"] is not None:
        offset = order["trail_price_e6"]
    else:
        offset = mark * order["trail_percent_e6"] / HUNDRED
    return round_amount(mark + offset if order["side"] == SIDE_BUY else mark - offset)


def track_stop(order: dict, quote: QuoteSnapshot) -> str | None:
    """Move a trailing stop's water mark and stop with ``quote``; trigger a stop the quote reached.

    Edits ``order`` in place (``hwm_e6``, ``stop_price_e6``); returns the trigger's reason when the order
    triggers on this quote (the caller stamps ``triggered_at`` and records the event), else None.
    """
    if order["order_type"] not in STOP_TYPES or order["triggered_at"] is not None:
        return None
    buy = order["side"] == SIDE_BUY
    touch = quote.ask if buy else quote.bid
    if order["order_type"] == ORDER_TRAILING_STOP:
        mark = order["hwm_e6"]
        if mark is None or (touch < mark if buy else touch > mark):
            order["hwm_e6"] = mark = touch
        order["stop_price_e6"] = trailing_stop_price(order, mark)
    stop = order["stop_price_e6"]
    if (touch >= stop) if buy else (touch <= stop):
        return f"stop triggered: {'ask' if buy else 'bid'} {plain(touch)} {'>=' if buy else '<='} stop {plain(stop)}"
    return None


def is_marketable_now(order: dict, quote: QuoteSnapshot) -> bool:
    """A working order the quote can fill: market-like, or its limit crossed."""
    if not is_triggered(order):
        return False
    limit = working_limit(order)
    return limit is None or is_marketable(order["side"], limit, quote.bid, quote.ask)


class Liquidity:
    """What the account's last quote of a symbol still offers its orders: the displayed sizes less what fills
    have taken (stored on the quote, so a size is consumed once across transactions too)."""

    def __init__(self, account: AccountState, quote: QuoteSnapshot):
        limited = account.fill_model == FILL_DISPLAYED_SIZE
        # None: unlimited (fill model "full", or a size of 0 = unknown).
        self._left: dict[str, Decimal | None] = {
            SIDE_BUY: quote.ask_size - quote.ask_taken if limited and quote.ask_size > 0 else None,
            "SELL": quote.bid_size - quote.bid_taken if limited and quote.bid_size > 0 else None,
        }

    def available(self, side: str, wanted: Decimal) -> Decimal:
        left = self._left[side]
        return wanted if left is None else max(ZERO, min(wanted, left))

    def take(self, side: str, qty: Decimal) -> bool:
        """Consume ``qty``; True when the size is limited (the caller records the taking on the quote)."""
        left = self._left[side]
        if left is None:
            return False
        self._left[side] = left - qty
        return True


def notional_qty(notional: Decimal, price: Decimal) -> Decimal:
    """The quantity a cash amount buys or sells at ``price``: rounded down to six decimals (never overspends)."""
    return (notional / price).quantize(UNIT, rounding=ROUND_DOWN)


def average_price(fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    """Volume-weighted average of (qty, price) fills, rounded half-even to six decimals."""
    total_qty = sum((qty for qty, _ in fills), ZERO)
    return round_amount(sum((qty * price for qty, price in fills), ZERO) / total_qty)
