"""Exchange calendars for time in force: which trading session a broker time belongs to, and when it closes.

A ``day`` order expires at the close of the session it was placed in (or of the next session when it was
placed while the market was closed), by the broker clock, so a replay of 2022 expires orders in 2022 market
time. Sessions, holidays, early closes and daylight-saving changes come from ``exchange_calendars``; the
ledger stores only each order's resulting ``expires_at``, so reading or expiring orders needs no calendar.

Calendars are built once per process and name (building XNYS takes about half a second; a lookup then costs
tens of microseconds). ``24/7`` is the calendar of symbols that trade around the clock: one session per UTC day.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

DEFAULT_CALENDAR = "XNYS"
ALWAYS_OPEN = "24/7"
_FIRST_YEAR = 1990  # history before this needs a calendar built further back: built on demand


@dataclass(frozen=True)
class Session:
    """One trading session: its date (the exchange's local date) and its open and close in UTC."""

    day: date
    open: datetime
    close: datetime


def validate_calendar(name: object) -> str:
    """The name of a calendar exchange_calendars knows (e.g. XNYS, XLON, 24/7); ValueError otherwise."""
    import exchange_calendars

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"calendar must be a calendar name such as {DEFAULT_CALENDAR} or {ALWAYS_OPEN}")
    clean = name.strip().upper()
    known = set(exchange_calendars.get_calendar_names(include_aliases=True))
    if clean not in known:
        raise ValueError(f"unknown calendar {name.strip()!r}: use an exchange_calendars name such as "
                         f"{DEFAULT_CALENDAR}, XLON or {ALWAYS_OPEN}")
    return clean


@contextmanager
def _quiet() -> Iterator[None]:
    """exchange_calendars trips pandas deprecation warnings internally; they are not the caller's to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@lru_cache(maxsize=16)
def _calendar(name: str, first_year: int, last_year: int) -> Any:
    import exchange_calendars

    with _quiet():
        return exchange_calendars.get_calendar(name, start=f"{first_year}-01-01", end=f"{last_year}-12-31")


def _calendar_for(name: str, moment: datetime) -> Any:
    """A calendar whose range covers ``moment`` with a year to spare on both sides."""
    first = min(_FIRST_YEAR, moment.year - 1)
    last = max(datetime.now(UTC).year + 1, moment.year + 1)
    return _calendar(name, first, last)


def _utc(timestamp: Any) -> datetime:
    return timestamp.to_pydatetime().astimezone(UTC)


def session_of(name: str, moment: datetime) -> Session:
    """The session ``moment`` falls in; when the market is closed at ``moment``, the next session."""
    import pandas as pd

    calendar = _calendar_for(name, moment)
    minute = pd.Timestamp(moment).floor("min")
    with _quiet():
        if calendar.is_trading_minute(minute):
            label = calendar.minute_to_session(minute)
        else:
            label = calendar.minute_to_future_session(minute)
        return Session(label.date(), _utc(calendar.session_open(label)), _utc(calendar.session_close(label)))


def day_order_expiry(name: str, placed_at: datetime) -> datetime:
    """When a ``day`` order placed at ``placed_at`` expires: the close of its session (see ``session_of``)."""
    return session_of(name, placed_at).close


def is_open(name: str, moment: datetime) -> bool:
    """True when ``moment`` is inside a trading session of the calendar."""
    import pandas as pd

    with _quiet():
        return bool(_calendar_for(name, moment).is_trading_minute(pd.Timestamp(moment).floor("min")))


def market_clock(name: str, moment: datetime) -> tuple[bool, datetime, datetime]:
    """(is the market open at ``moment``, the next open, the next close), in UTC (what ``/v2/clock`` answers)."""
    import pandas as pd

    calendar = _calendar_for(name, moment)
    stamp = pd.Timestamp(moment)
    with _quiet():
        return (bool(calendar.is_trading_minute(stamp.floor("min"))), _utc(calendar.next_open(stamp)),
                _utc(calendar.next_close(stamp)))


def exchange_time(name: str, moment: datetime) -> datetime:
    """``moment`` in the calendar's exchange time zone (Alpaca's calendar gives sessions in local time)."""
    return moment.astimezone(_calendar_for(name, moment).tz)


def sessions_between(name: str, start: date, end: date) -> list[Session]:
    """Every session with a date in [start, end], in order."""
    import pandas as pd

    calendar = _calendar(name, min(_FIRST_YEAR, start.year - 1), max(datetime.now(UTC).year + 1, end.year + 1))
    with _quiet():
        labels = calendar.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        return [
            Session(label.date(), _utc(calendar.session_open(label)), _utc(calendar.session_close(label)))
            for label in labels
        ]
