"""The market clock and calendar the service answers (``/v2/clock``, ``/v2/calendar``), from exchange_calendars.

NYSE (XNYS) sessions with holidays and early closes. A small module of the service until the library's own
calendar (``ledger.calendars``) is merged; it then folds into that module.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

CALENDAR = "XNYS"
EXCHANGE_ZONE = ZoneInfo("America/New_York")
FIRST_DAY = date(2000, 1, 1)


@lru_cache(maxsize=1)
def _calendar() -> Any:
    """XNYS from 2000 to two years ahead, built once per process (about half a second)."""
    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(CALENDAR, start=FIRST_DAY.isoformat(),
                                               end=f"{datetime.now(UTC).year + 2}-12-31")


def _utc(timestamp: Any) -> datetime:
    return timestamp.to_pydatetime().astimezone(UTC)


def clock(now: datetime) -> tuple[bool, datetime, datetime]:
    """(is the market open at ``now``, the next open, the next close), times in UTC."""
    import pandas as pd

    calendar = _calendar()
    moment = pd.Timestamp(now)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        is_open = bool(calendar.is_open_on_minute(moment.floor("min")))
        next_open = calendar.next_open(moment)
        next_close = calendar.next_close(moment)
    return is_open, _utc(next_open), _utc(next_close)


def sessions(start: date, end: date) -> list[tuple[date, datetime, datetime]]:
    """Each trading session from ``start`` to ``end`` (inclusive): its date, open and close in UTC."""
    calendar = _calendar()
    first = max(start, calendar.first_session.date())
    last = min(end, calendar.last_session.date())
    if first > last:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = calendar.schedule.loc[first.isoformat():last.isoformat()]
    return [(day.date(), _utc(row.open), _utc(row.close)) for day, row in schedule.iterrows()]


def local_hhmm(moment: datetime) -> str:
    """A UTC time as exchange-local ``HH:MM`` (what Alpaca's calendar sends)."""
    return moment.astimezone(EXCHANGE_ZONE).strftime("%H:%M")
