"""``/v2/clock``, ``/v2/calendar`` (NYSE sessions) and ``/v2/assets`` (the symbols the ledger knows)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ledger.queries import known_symbols
from ledger import calendars
from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import Asset, CalendarDay, Clock, render_asset, time_text

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]


@router.get("/v2/clock", response_model=Clock)
def get_clock(who: CallerDep) -> Clock:
    now = who.broker.now()
    is_open, next_open, next_close = calendars.market_clock(who.broker.settings()["calendar"], now)
    return Clock(timestamp=time_text(now), is_open=is_open, next_open=time_text(next_open),  # type: ignore[arg-type]
                 next_close=time_text(next_close))  # type: ignore[arg-type]


@router.get("/v2/calendar", response_model=list[CalendarDay])
def get_calendar(who: CallerDep, start: date | None = None, end: date | None = None) -> list[CalendarDay]:
    """The sessions of the account's exchange calendar (XNYS by default), open and close in exchange time."""
    today = datetime.now(UTC).date()
    first = start or today
    last = end or first + timedelta(days=365)
    if last < first:
        return []
    name = who.broker.settings()["calendar"]

    def hhmm(moment: datetime) -> str:
        return calendars.exchange_time(name, moment).strftime("%H:%M")

    return [
        CalendarDay(date=session.day.isoformat(), open=hhmm(session.open), close=hhmm(session.close),
                    session_open=hhmm(session.open).replace(":", ""), session_close=hhmm(session.close).replace(":", ""),
                    settlement_date=session.day.isoformat())
        for session in calendars.sessions_between(name, first, last)
    ]


@router.get("/v2/assets", response_model=list[Asset], response_model_by_alias=True)
def list_assets(who: CallerDep, status: str | None = None, asset_class: str | None = None,
                exchange: str | None = None, attributes: str | None = None) -> list[dict[str, Any]]:
    if (status not in (None, "active")) or (asset_class not in (None, "us_equity")):
        return []
    with who.ledger.reading() as conn:
        return [render_asset(symbol) for symbol in known_symbols(conn, who.account_id)]


@router.get("/v2/assets/{symbol_or_asset_id}", response_model=Asset, response_model_by_alias=True)
def get_asset(symbol_or_asset_id: str, who: CallerDep) -> dict[str, Any]:
    wanted = symbol_or_asset_id.strip()
    with who.ledger.reading() as conn:
        for symbol in known_symbols(conn, who.account_id):
            asset = render_asset(symbol)
            if wanted.upper() == symbol or wanted.lower() == asset["id"]:
                return asset
    raise errors.not_found("asset not found")
