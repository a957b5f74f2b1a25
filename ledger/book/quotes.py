"""Use case: store a quote and, in the same transaction, let it move, trigger and fill the account's open orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.book.marks import MARK_FILL, MARK_QUOTE, mark_equity
from ledger.book.orders import TradingContext, open_account_for_write, work_open_orders
from ledger.book.store import Store
from ledger.book.validation import QuoteInput


def update_quote(store: Store, ctx: TradingContext, quote: QuoteInput, now: datetime) -> list[dict[str, Any]]:
    """Upsert the account's last quote for the symbol; work the symbol's open orders oldest first (trailing
    stops move, stops trigger, marketable orders fill); mark equity (at a fill, else by interval); return fills."""
    account = open_account_for_write(store, ctx, now)
    snapshot = store.upsert_quote(account, quote.symbol, (quote.bid, quote.ask, quote.bid_size, quote.ask_size), now)
    fills = work_open_orders(store, account, quote.symbol, snapshot, ctx.run_id, now)
    mark_equity(store, account, now, reason=MARK_FILL if fills else MARK_QUOTE)
    store.flush(now)  # the fills, the orders' changes, and the account's advanced clock
    return fills
