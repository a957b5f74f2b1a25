"""Equity marks: the account marked to market at a broker time, the rows the equity curve and drawdown read.

Written at every fill (in the fill's transaction), at every replay bar, and on quote updates at most once per the
account's ``equity_mark_interval_s`` of broker time (0: at every quote). A position is valued at the mid of the
account's last quote for its symbol, or at its cost basis when it has none (as ``portfolio_value`` does).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledger.book.store import AccountState, Store
from ledger.money import bounded, round_amount

ZERO = Decimal(0)


def mark_equity(store: Store, account: AccountState, now: datetime, *, force: bool) -> bool:
    """Write a mark at ``now`` if ``force`` or the interval since the last one has passed; True when written.

    Flushes the transaction's queued rows first, so the mark values the positions as they now stand.
    """
    if not force:
        last = store.last_equity_mark(account)
        if last is not None and (now - last).total_seconds() < account.equity_mark_interval_s:
            return False
    store.flush(now)
    long_value = short_value = ZERO
    for _, qty, cost, mid in store.position_marks(account):
        value = qty * mid if mid is not None else cost
        if qty > 0:
            long_value += value
        else:
            short_value += value
    long_value = round_amount(bounded(long_value, "the long market value"))
    short_value = round_amount(bounded(short_value, "the short market value"))
    equity = bounded(account.cash + long_value + short_value, "the equity")
    store.add_equity_mark(account, now, long_value, short_value, equity)
    return True
