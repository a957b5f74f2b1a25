"""DatabaseBarCache: bars kept in the ledger database, served for ranges held whole, replaced on re-fetch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from ledger.bars import DatabaseBarCache, bar_ranges, bars
from ledger.brokers.data_provider import BarCache, YFinanceProvider
from ledger.db.engine import get_engine

JAN = [datetime(2024, 1, day, tzinfo=UTC) for day in range(1, 32)]


def daily_bars(days: list[int], base: float = 100.0) -> pd.DataFrame:
    """Daily bars on the given January days, in the provider's normalized shape."""
    index = pd.DatetimeIndex([JAN[day - 1] for day in days], name="timestamp")
    close = np.array([base + day for day in days], dtype="float64")
    return pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1000.0 * np.array(days),
        },
        index=index,
    )


def fetch(cache: DatabaseBarCache, frame: pd.DataFrame, start: datetime, end: datetime) -> None:
    """What the provider does: ask the cache (a miss), fetch the window, store it."""
    assert cache.get_bars("AAPL", "1d", start, end) is None
    cache.put_bars("AAPL", "1d", frame)


def test_it_is_a_bar_cache(db_url):
    assert isinstance(DatabaseBarCache(db_url), BarCache)


def test_bars_round_trip_with_prices_at_six_decimals_and_whole_volume(db_url):
    cache = DatabaseBarCache(db_url)
    frame = daily_bars([2, 3, 4])
    frame.loc[JAN[1], ["open", "volume"]] = [101.12345678, 1234.5]
    frame.loc[JAN[2], "volume"] = np.nan
    fetch(cache, frame, JAN[0], JAN[7])

    got = cache.get_bars("AAPL", "1d", JAN[0], JAN[7])

    assert list(got.columns) == ["open", "high", "low", "close", "volume"]
    assert (got.dtypes == "float64").all()
    assert got.index.name == "timestamp" and str(got.index.tz) == "UTC"
    assert list(got.index) == list(frame.index)
    assert got.loc[JAN[1], "open"] == 101.123457  # rounded half-even to six decimals
    assert got.loc[JAN[1], "volume"] == 1234  # 1234.5 rounds half-even to the even 1234
    assert np.isnan(got.loc[JAN[2], "volume"])
    unchanged = ["high", "low", "close"]
    pd.testing.assert_frame_equal(got[unchanged], frame[unchanged], check_index_type=False)


def test_a_window_with_market_holidays_inside_a_fetched_range_is_answered(db_url):
    cache = DatabaseBarCache(db_url)
    fetch(cache, daily_bars([2, 3, 5, 8]), JAN[0], JAN[9])  # weekends and a holiday: no bars, still fetched

    got = cache.get_bars("AAPL", "1d", JAN[2], JAN[7])  # 3rd to 7th: bars on 3rd and 5th only

    assert [stamp.day for stamp in got.index] == [3, 5]
    empty = cache.get_bars("AAPL", "1d", JAN[5], JAN[6])  # the 6th: held, and no bar that day
    assert empty is not None and empty.empty


def test_a_window_reaching_past_what_was_fetched_is_a_miss(db_url):
    cache = DatabaseBarCache(db_url)
    fetch(cache, daily_bars([2, 3, 4]), JAN[0], JAN[4])
    assert cache.get_bars("AAPL", "1d", JAN[0], JAN[5]) is None  # one day more than fetched
    assert cache.get_bars("AAPL", "1wk", JAN[0], JAN[4]) is None  # another interval
    assert cache.get_bars("MSFT", "1d", JAN[0], JAN[4]) is None  # another symbol


def test_adjacent_fetches_merge_into_one_range(db_url):
    cache = DatabaseBarCache(db_url)
    fetch(cache, daily_bars([2, 3]), JAN[0], JAN[4])
    fetch(cache, daily_bars([5, 8]), JAN[4], JAN[9])

    got = cache.get_bars("AAPL", "1d", JAN[0], JAN[9])

    assert [stamp.day for stamp in got.index] == [2, 3, 5, 8]
    with get_engine(db_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(bar_ranges)).scalar_one() == 1


def test_a_refetch_replaces_the_bars_of_its_range(db_url):
    cache = DatabaseBarCache(db_url)
    fetch(cache, daily_bars([2, 3, 4, 5]), JAN[0], JAN[5])
    revised = daily_bars([2, 4, 5, 8], base=200.0)  # the vendor dropped the 3rd and revised the rest
    fetch(cache, revised, JAN[0], JAN[9])  # a longer window: a miss, so the provider fetched it again

    got = cache.get_bars("AAPL", "1d", JAN[0], JAN[9])

    assert [stamp.day for stamp in got.index] == [2, 4, 5, 8]
    assert list(got["close"]) == [202.0, 204.0, 205.0, 208.0]


def test_bars_stored_without_a_preceding_miss_cover_only_their_own_span(db_url):
    cache = DatabaseBarCache(db_url)
    cache.put_bars("AAPL", "1d", daily_bars([3, 4]))
    assert cache.get_bars("AAPL", "1d", JAN[0], JAN[9]) is None
    just_after_the_last_bar = datetime(2024, 1, 4, 0, 0, 0, 1, tzinfo=UTC)
    assert list(cache.get_bars("AAPL", "1d", JAN[2], just_after_the_last_bar)["close"]) == [103.0, 104.0]


def test_an_unusable_frame_is_refused_and_nothing_is_written(db_url):
    cache = DatabaseBarCache(db_url)
    bad = daily_bars([2, 3])
    bad.loc[JAN[2], "close"] = np.nan
    with pytest.raises(ValueError, match="close of the AAPL bar at 2024-01-03"):
        cache.put_bars("AAPL", "1d", bad)
    naive = daily_bars([2]).tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        cache.put_bars("AAPL", "1d", naive)
    with pytest.raises(ValueError, match="lack column"):
        cache.put_bars("AAPL", "1d", daily_bars([2]).drop(columns="volume"))
    with pytest.raises(ValueError, match="timezone-aware"):
        cache.get_bars("AAPL", "1d", datetime(2024, 1, 1), JAN[3])
    with get_engine(db_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(bars)).scalar_one() == 0


class FakeYFinance:
    """yfinance at its edge: Ticker(symbol).history(...) returns fixed bars and counts the requests."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.requests: list[dict[str, Any]] = []

    def Ticker(self, symbol: str) -> FakeYFinance:  # noqa: N802 - yfinance's spelling
        return self

    def history(self, **window: Any) -> pd.DataFrame:
        self.requests.append(window)
        yahoo = self.frame.rename(columns=str.title)
        return yahoo.tz_convert("America/New_York")


def test_a_rerun_replays_the_cached_bars_without_asking_yahoo(db_url):
    yahoo_bars = daily_bars([2, 3, 4, 5, 8])
    first_yahoo = FakeYFinance(yahoo_bars)
    first = YFinanceProvider(bar_cache=DatabaseBarCache(db_url), yf_module=first_yahoo)
    fetched = first.get_history("AAPL", "2024-01-01", "2024-01-09")
    assert len(first_yahoo.requests) == 1

    offline_yahoo = FakeYFinance(daily_bars([2], base=999.0))  # would return different data if asked
    rerun = YFinanceProvider(bar_cache=DatabaseBarCache(db_url), yf_module=offline_yahoo)
    replayed = rerun.get_history("AAPL", "2024-01-01", "2024-01-09")

    assert offline_yahoo.requests == []
    pd.testing.assert_frame_equal(replayed, fetched, check_index_type=False)
    assert list(replayed["close"]) == [102.0, 103.0, 104.0, 105.0, 108.0]
