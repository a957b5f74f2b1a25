"""Use case: store a quote and, in the same transaction, fill every resting limit order it crosses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ledger.book import store
from ledger.book.fills import QuoteSnapshot
from ledger.book.orders import TradingContext, fill_resting
from ledger.book.pricing import is_marketable
from ledger.book.validation import QuoteInput


def update_quote(conn: Connection, ctx: TradingContext, quote: QuoteInput, now: datetime) -> list[dict[str, Any]]:
    """Upsert the account's last quote for the symbol; fill crossed resting orders oldest first; return the fills."""
    account = store.lock_account(conn, ctx.account_id)
    store.upsert_quote(
        conn,
        account.id,
        {
            "symbol": quote.symbol,
            "bid_e6": quote.bid,
            "ask_e6": quote.ask,
            "bid_size_e6": quote.bid_size,
            "ask_size_e6": quote.ask_size,
            "quoted_at": now,
        },
    )
    snapshot = QuoteSnapshot(quote.bid, quote.ask, now)
    fills: list[dict[str, Any]] = []
    crossed = [
        row
        for row in store.resting_orders(conn, account, quote.symbol)
        if is_marketable(row.side, row.limit_price_e6, quote.bid, quote.ask)
    ]
    if crossed:
        position = store.get_position(conn, account, quote.symbol)
        for row in crossed:
            fills.append(fill_resting(conn, account, position, row, snapshot, ctx.run_id, now))
        store.save_account(conn, account, now)
    return fills
