"""Use case: store quotes and, in the same transaction, let them move, trigger and fill the account's open orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledger.book.marks import MARK_FILL, MARK_QUOTE, mark_equity
from ledger.book.orders import TradingContext, open_account_for_write, work_open_orders
from ledger.book.store import Store
from ledger.book.validation import QuoteInput


def update_quotes(store: Store, ctx: TradingContext, quotes: Sequence[QuoteInput], now: datetime) -> list[dict[str, Any]]:
    """Upsert the account's last quote of each symbol (one statement); work each symbol's open orders with its
    quote, symbol by symbol in the given order, oldest order first (trailing stops move, stops trigger,
    marketable orders fill); mark equity once (at a fill, else by interval); return the fills.

    The same fills and orders as storing the quotes one at a time in that order at broker time ``now``; the
    open orders of all the symbols are read in one query, so a symbol without orders costs only its upsert.
    """
    account = open_account_for_write(store, ctx, now)
    snapshots = store.upsert_quotes(account, quotes, now)  # a QuoteInput is the tuple it takes
    resting: dict[str, list[dict[str, Any]]] = {}
    for order in store.open_orders(account, list(snapshots)):
        resting.setdefault(order["symbol"], []).append(order)
    fills: list[dict[str, Any]] = []
    for symbol, snapshot in snapshots.items():
        if symbol in resting:
            fills += work_open_orders(store, account, symbol, snapshot, resting[symbol], ctx.run_id, now)
    mark_equity(store, account, now, reason=MARK_FILL if fills else MARK_QUOTE)
    store.flush(now)  # the fills, the orders' changes, and the account's advanced clock
    return fills
