"""Equity marks: the account marked to market at a broker time, the rows the equity curve and drawdown read.

Written at every fill (in the fill's transaction), at every replay bar, and on quote updates at most once per the
account's ``equity_mark_interval_s`` of broker time (0: at every quote). A position is valued at the mid of the
account's last quote for its symbol, or at its cost basis when it has none (as ``portfolio_value`` does).
An account whose values reach the ledger's 10^12 bound is not marked (the mark could not be stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ledger.book.margin import Margin, margin_figures, position_value
from ledger.book.store import AccountState, Store
from ledger.money import MAX_AMOUNT

MARK_FILL = "fill"  # always: the account changed
MARK_BAR = "bar"  # unless a mark at this broker time exists (a resumed replay does not mark a bar twice)
MARK_QUOTE = "quote"  # at most once per the account's equity_mark_interval_s
_STRENGTH = {MARK_QUOTE: 0, MARK_BAR: 1, MARK_FILL: 2}


def stored_margin(store: Store, account: AccountState) -> Margin:
    """The account's margin figures (ledger.book.margin) from its cash and reservations as this transaction
    holds them and its positions as stored (``flush`` first when this transaction changed positions)."""
    values = (position_value(qty, cost, mid) for _, qty, cost, mid in store.position_marks(account))
    return margin_figures(account.cash, account.reserved_cash, account.max_margin_multiplier, values)


@dataclass(frozen=True)
class Holdings:
    """What an account holds as this transaction sees it: cash not reserved by open orders, equity (cash plus
    positions at their quote mid, at cost without a quote, unrounded as ``ledger.queries.portfolio_value``) and
    each non-zero position's signed quantity."""

    available_cash: Decimal
    equity: Decimal
    positions: dict[str, Decimal]


def stored_holdings(store: Store, account: AccountState) -> Holdings:
    """The account's holdings from its positions as stored (``flush`` first when this transaction changed them)."""
    marks = store.position_marks(account)
    equity = account.cash + sum((position_value(qty, cost, mid) for _, qty, cost, mid in marks), Decimal(0))
    return Holdings(account.available_cash, equity, {symbol: qty for symbol, qty, _, _ in marks})


def mark_equity(store: Store, account: AccountState, now: datetime, *, reason: str) -> bool:
    """Write a mark at ``now`` when ``reason`` calls for one (see MARK_*); True when written.

    Flushes the transaction's queued rows first, so the mark values the positions as they now stand. In a
    transaction that defers its marks (``store.defer_marks``) only the strongest reason is kept, for
    :func:`write_deferred_mark` at its end, and nothing is written here.
    """
    if store.defer_marks:
        held = store.deferred_mark
        if held is None or _STRENGTH[reason] > _STRENGTH[held]:
            store.deferred_mark = reason
        return False
    if reason != MARK_FILL:
        last = store.last_equity_mark(account)
        if last is not None and (
            last >= now if reason == MARK_BAR else (now - last).total_seconds() < account.equity_mark_interval_s
        ):
            return False
    store.flush(now)
    figures = stored_margin(store, account)
    long_value, short_value, equity = figures.long_value, figures.short_value, figures.equity
    if max(abs(long_value), abs(short_value), abs(equity)) >= MAX_AMOUNT:
        # Prices moved the account past the ledger's bound: the mark cannot be stored, and a quote must not
        # fail for it. No mark is written (the curve resumes when the account is back within bounds).
        return False
    store.add_equity_mark(account, now, long_value, short_value, equity)
    return True


def write_deferred_mark(store: Store, account: AccountState, now: datetime) -> bool:
    """The one mark of a transaction that deferred its marks: the final state at ``now``, for the strongest
    reason its use cases gave (a fill: always); True when written."""
    reason, store.defer_marks, store.deferred_mark = store.deferred_mark, False, None
    return False if reason is None else mark_equity(store, account, now, reason=reason)
