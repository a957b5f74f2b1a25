"""Use case: store a quote and, in the same transaction, fill every resting limit order it crosses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.book.orders import TradingContext, fill_resting
from ledger.book.pricing import is_marketable
from ledger.book.store import Store
from ledger.book.validation import QuoteInput


def update_quote(store: Store, ctx: TradingContext, quote: QuoteInput, now: datetime) -> list[dict[str, Any]]:
    """Upsert the account's last quote for the symbol; fill crossed resting orders oldest first; return the fills."""
    account = store.lock_account(ctx.account_id, now)
    snapshot = store.upsert_quote(account, quote.symbol, (quote.bid, quote.ask, quote.bid_size, quote.ask_size), now)
    crossed = [
        order
        for order in store.resting_orders(account, quote.symbol)
        if is_marketable(order["side"], order["limit_price_e6"], quote.bid, quote.ask)
    ]
    fills: list[dict[str, Any]] = []
    if crossed:
        store.reserve_keys(len(crossed))
        position = store.position(account, quote.symbol)
        for order in crossed:
            fill = fill_resting(store, account, position, order, snapshot, ctx.run_id, now)
            if fill is not None:
                fills.append(fill)
    store.flush(now)  # the fills, and the account's advanced clock
    return fills
