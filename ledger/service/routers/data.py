"""Market data in Alpaca's shape for ``StockHistoricalDataClient(url_override=...)``: the authenticated account's
last quotes, and daily/hourly/weekly bars from the ledger's bar cache (paged with ``next_page_token``)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import and_, or_, select

from ledger.db.models import Bar
from ledger.queries import quote_row, quotes_stmt
from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import Bars, LatestQuote, LatestQuotes, render_quote, time_text

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]
bars = Bar.__table__
# Alpaca's timeframe -> the bar cache's interval spelling (see ledger.bars).
INTERVALS = {"1Day": "1d", "1D": "1d", "1Hour": "1h", "1H": "1h", "1Week": "1wk", "1W": "1wk"}


def _symbols(text: str) -> list[str]:
    return sorted({symbol.strip().upper() for symbol in text.split(",") if symbol.strip()})


@router.get("/v2/stocks/quotes/latest", response_model=LatestQuotes, response_model_by_alias=True)
def latest_quotes(who: CallerDep, symbols: str, feed: str | None = None, currency: str | None = None) -> dict[str, Any]:
    wanted = set(_symbols(symbols))
    with who.ledger.reading() as conn:
        rows = [row for row in conn.execute(quotes_stmt(who.account_id)) if row.symbol in wanted]
    return {"quotes": {row.symbol: render_quote(row) for row in rows}}


@router.get("/v2/stocks/{symbol}/quotes/latest", response_model=LatestQuote, response_model_by_alias=True)
def latest_quote(symbol: str, who: CallerDep, feed: str | None = None) -> dict[str, Any]:
    clean = symbol.strip().upper()
    with who.ledger.reading() as conn:
        row = quote_row(conn, who.account_id, clean)
    if row is None:
        raise errors.not_found(f"no quote for {clean[:32]}")
    return {"symbol": clean, "quote": render_quote(row)}


def _page_token(symbol: str, ts: datetime) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{ts.isoformat()}".encode()).decode()


def _page_start(token: str) -> tuple[str, datetime]:
    try:
        symbol, _, stamp = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        return symbol, datetime.fromisoformat(stamp).astimezone(UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.bad_request("invalid page_token") from None


@router.get("/v2/stocks/bars", response_model=Bars)
def stock_bars(
    who: CallerDep,
    symbols: str,
    timeframe: str = "1Day",
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    page_token: str | None = None,
    sort: str = "asc",
    adjustment: str | None = None,
    feed: str | None = None,
    asof: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    interval = INTERVALS.get(timeframe)
    if interval is None:
        raise errors.bad_request(f"timeframe {timeframe[:20]!r} is not in the bar cache: use 1Day, 1Hour or 1Week")
    wanted = _symbols(symbols)
    stmt = select(bars).where(bars.c.interval == interval, bars.c.symbol.in_(wanted))
    if start is not None:
        stmt = stmt.where(bars.c.ts >= _utc(start))
    if end is not None:
        stmt = stmt.where(bars.c.ts <= _utc(end))
    if page_token is not None:
        symbol, ts = _page_start(page_token)
        stmt = stmt.where(or_(bars.c.symbol > symbol, and_(bars.c.symbol == symbol, bars.c.ts >= ts)))
    stmt = stmt.order_by(bars.c.symbol, bars.c.ts).limit(limit + 1)
    with who.ledger.reading() as conn:
        rows = list(conn.execute(stmt))
    following = rows[limit] if len(rows) > limit else None
    by_symbol: dict[str, list[dict[str, Any]]] = {}
    for row in rows[:limit]:
        by_symbol.setdefault(row.symbol, []).append({
            "t": time_text(row.ts).replace(".000000Z", "Z"),  # type: ignore[union-attr]
            "o": float(row.open_e6), "h": float(row.high_e6), "l": float(row.low_e6), "c": float(row.close_e6),
            "v": float(row.volume or 0), "n": None, "vw": None,
        })
    return {"bars": by_symbol,
            "next_page_token": None if following is None else _page_token(following.symbol, following.ts)}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)



