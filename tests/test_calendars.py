"""Exchange calendars: the session a broker time belongs to and its close (what a day order's expiry is)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.calendars import ALWAYS_OPEN, day_order_expiry, is_open, session_of, sessions_between, validate_calendar


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("placed_at", "expires_at"),
    [
        (utc(2022, 3, 4, 15, 0), utc(2022, 3, 4, 21, 0)),  # during the session, EST: close 16:00 = 21:00 UTC
        (utc(2022, 3, 14, 15, 0), utc(2022, 3, 14, 20, 0)),  # after the DST change, EDT: close 20:00 UTC
        (utc(2022, 3, 4, 22, 0), utc(2022, 3, 7, 21, 0)),  # Friday after the close: Monday's session
        (utc(2022, 3, 5, 12, 0), utc(2022, 3, 7, 21, 0)),  # Saturday: Monday's session
        (utc(2022, 7, 4, 15, 0), utc(2022, 7, 5, 20, 0)),  # Independence Day: the next session
        (utc(2022, 11, 25, 15, 0), utc(2022, 11, 25, 18, 0)),  # day after Thanksgiving: early close 13:00 EST
        (utc(2022, 3, 4, 13, 0), utc(2022, 3, 4, 21, 0)),  # before the open: that day's session
        (utc(1985, 7, 3, 15, 0), utc(1985, 7, 3, 20, 0)),  # before the default range: built on demand
    ],
)
def test_a_day_order_expires_at_the_close_of_its_session_on_xnys(placed_at: datetime, expires_at: datetime) -> None:
    assert day_order_expiry("XNYS", placed_at) == expires_at


def test_the_always_open_calendar_has_one_session_per_utc_day() -> None:
    assert day_order_expiry(ALWAYS_OPEN, utc(2022, 7, 4, 15, 0)) == utc(2022, 7, 5, 0, 0)
    assert day_order_expiry(ALWAYS_OPEN, utc(2022, 3, 5, 23, 59)) == utc(2022, 3, 6, 0, 0)
    assert is_open(ALWAYS_OPEN, utc(2022, 3, 5, 3, 0))


def test_is_open_and_sessions_follow_holidays() -> None:
    assert is_open("XNYS", utc(2022, 3, 4, 15, 0))
    assert not is_open("XNYS", utc(2022, 3, 4, 21, 0))  # the close minute itself is not a trading minute
    assert not is_open("XNYS", utc(2022, 12, 26, 15, 0))  # Christmas observed
    days = [session.day for session in sessions_between("XNYS", date(2022, 12, 23), date(2022, 12, 28))]
    assert days == [date(2022, 12, 23), date(2022, 12, 27), date(2022, 12, 28)]
    assert session_of("XNYS", utc(2022, 12, 24, 12, 0)).day == date(2022, 12, 27)


def test_calendar_names_are_checked_and_normalised() -> None:
    assert validate_calendar(" xnys ") == "XNYS"
    assert validate_calendar("24/7") == "24/7"
    for bad in ("NOPE", "", None, 5):
        with pytest.raises(ValueError, match="calendar"):
            validate_calendar(bad)
