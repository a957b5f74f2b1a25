"""Tests for ledger.brokers.data_provider: yfinance faked at its edge (no network), replay, sample data."""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yfinance
import yfinance.multi

from ledger.brokers.data_provider import (
    OHLCV_COLUMNS,
    BarCache,
    DataProvider,
    ReplayProvider,
    YFinanceProvider,
    get_data_provider,
    normalize_bars,
)
from ledger.data import make_sample, sample_bars_path
from ledger.exceptions import DataProviderError

REAL_DOWNLOAD = yfinance.download
QUOTE_KEYS = {"symbol", "bid", "ask", "bid_size", "ask_size", "timestamp", "spread_bps"}
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------
# Fixtures and fakes


@pytest.fixture(autouse=True)
def isolated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the conftest fixture: these tests touch no database, so they need no engine matrix."""
    monkeypatch.chdir(tmp_path)


class NetworkUsed(BaseException):
    """A BaseException, so the provider's ``except Exception`` cannot turn it into a DataProviderError."""


@pytest.fixture(autouse=True)
def no_real_yfinance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call into the real yfinance network entry points fails the test loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkUsed(f"real yfinance called with {args} {kwargs}")

    monkeypatch.setattr(yfinance, "Ticker", refuse)
    monkeypatch.setattr(yfinance, "download", refuse)
    monkeypatch.setattr(yfinance.multi, "Ticker", refuse)


class FakeClock:
    def __init__(self, start: datetime = T0):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class FakeTicker:
    def __init__(self, fake: FakeYF, symbol: str):
        self._fake = fake
        self.symbol = symbol

    @property
    def info(self) -> Any:
        self._fake.calls.append(("info", self.symbol, {}))
        return self._fake.answer(self._fake.infos, self.symbol)

    def history(self, **kwargs: Any) -> pd.DataFrame:
        self._fake.calls.append(("history", self.symbol, kwargs))
        return self._fake.answer(self._fake.histories, self.symbol).copy()


class FakeYF:
    """Stands in for the yfinance module: canned answers (or exceptions) per symbol, every call recorded."""

    def __init__(self) -> None:
        self.infos: dict[str, Any] = {}
        self.histories: dict[str, Any] = {}
        self.download_result: Any = None
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    @staticmethod
    def answer(table: dict[str, Any], symbol: str) -> Any:
        value = table[symbol]
        if isinstance(value, BaseException):
            raise value
        return value

    def Ticker(self, symbol: str) -> FakeTicker:  # noqa: N802 - mirrors yfinance
        return FakeTicker(self, symbol)

    def download(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(("download", kwargs.get("tickers"), kwargs))
        if isinstance(self.download_result, BaseException):
            raise self.download_result
        return self.download_result

    def count(self, kind: str) -> int:
        return sum(1 for call in self.calls if call[0] == kind)


@pytest.fixture
def fake_yf() -> FakeYF:
    return FakeYF()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(fake_yf: FakeYF, fake_clock: FakeClock) -> YFinanceProvider:
    return YFinanceProvider(cache_ttl_seconds=30, timeout=7.5, clock=fake_clock, yf_module=fake_yf)


def yahoo_history(dates: list[str], closes: list[float], tz: str | None = "America/New_York") -> pd.DataFrame:
    """A frame shaped like ``Ticker.history()``: capitalized columns, exchange-time index named Date."""
    index = pd.DatetimeIndex(dates)
    index = (index.tz_localize(tz) if tz else index).rename("Date")
    close = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "Open": close - 0.5,
            "High": close + 1.0,
            "Low": close - 1.0,
            "Close": close,
            "Adj Close": close,
            "Volume": np.full(len(close), 1_000, dtype="int64"),
        },
        index=index,
    )


def yahoo_download(per_symbol: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """A frame shaped like ``yf.download(group_by="ticker")``: (Ticker, Price) columns, NaN-padded index."""
    frames: dict[str, pd.DataFrame] = {}
    for symbol, frame in per_symbol.items():
        if frame is None:  # yfinance's placeholder for a failed ticker
            frame = pd.DataFrame(columns=["Open", "High", "Low", "Close", "Adj Close", "Volume"], dtype=float)
        else:
            frame = frame.copy()
            frame.index = frame.index.tz_localize(None)
        frames[symbol] = frame
    union = pd.DatetimeIndex([])
    for frame in frames.values():
        union = union.union(pd.DatetimeIndex(frame.index))
    frames = {symbol: frame.reindex(union) for symbol, frame in frames.items()}
    return pd.concat(frames.values(), axis=1, keys=frames.keys(), names=["Ticker", "Price"])


# ---------------------------------------------------------------------------------------------------------
# YFinanceProvider: quotes


def test_quote_with_real_bid_ask_is_parsed(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    fake_yf.infos["AAPL"] = {
        "bid": 99.9, "ask": 100.1, "bidSize": 300, "askSize": 200, "regularMarketPrice": 95.0
    }

    quote = provider.get_quote("aapl")

    assert set(quote) == QUOTE_KEYS
    assert quote["symbol"] == "AAPL"
    assert (quote["bid"], quote["ask"]) == (99.9, 100.1)
    assert (quote["bid_size"], quote["ask_size"]) == (300.0, 200.0)
    assert quote["spread_bps"] == pytest.approx(20.0)
    assert quote["timestamp"] == T0 and quote["timestamp"].utcoffset() == timedelta(0)
    assert all(isinstance(quote[key], float) for key in ("bid", "ask", "bid_size", "ask_size", "spread_bps"))
    assert fake_yf.calls == [("info", "AAPL", {})]


@pytest.mark.parametrize(
    "bid_ask",
    [
        {},
        {"bid": 0, "ask": 0},
        {"bid": 0.0, "ask": 100.2},
        {"bid": float("nan"), "ask": float("nan")},
        {"bid": None, "ask": None},
        {"bid": 100.5, "ask": 99.5},  # crossed
        {"bid": -1.0, "ask": 100.1},
        {"bid": "n/a", "ask": True},
    ],
    ids=["missing", "zero", "one-zero", "nan", "none", "crossed", "negative", "junk"],
)
def test_unusable_bid_ask_gives_synthetic_10bps_spread(
    provider: YFinanceProvider, fake_yf: FakeYF, bid_ask: dict[str, Any]
) -> None:
    fake_yf.infos["MSFT"] = {**bid_ask, "regularMarketPrice": 200.0}

    quote = provider.get_quote("MSFT")

    assert quote["bid"] == pytest.approx(199.9)
    assert quote["ask"] == pytest.approx(200.1)
    assert (quote["bid"] + quote["ask"]) / 2 == pytest.approx(200.0)
    assert quote["spread_bps"] == pytest.approx(10.0)
    assert (quote["bid_size"], quote["ask_size"]) == (100.0, 100.0)


def test_synthetic_spread_falls_back_to_previous_close(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    fake_yf.infos["XYZ"] = {"bid": 0, "ask": 0, "regularMarketPrice": None, "previousClose": 50.0}
    quote = provider.get_quote("XYZ")
    assert (quote["bid"] + quote["ask"]) / 2 == pytest.approx(50.0)


@pytest.mark.parametrize("info", [{}, {"bid": 0, "ask": 0, "regularMarketPrice": 0}, None, "garbage"])
def test_no_usable_price_raises_naming_symbol(provider: YFinanceProvider, fake_yf: FakeYF, info: Any) -> None:
    fake_yf.infos["DEAD"] = info
    with pytest.raises(DataProviderError, match="DEAD") as caught:
        provider.get_quote("DEAD")
    assert caught.value.symbol == "DEAD"


def test_quote_cache_hit_within_ttl_and_refetch_after(
    provider: YFinanceProvider, fake_yf: FakeYF, fake_clock: FakeClock
) -> None:
    fake_yf.infos["AAPL"] = {"bid": 99.0, "ask": 101.0}
    first = provider.get_quote("AAPL")
    first["bid"] = -1.0  # the caller's copy; must not leak into the cache

    fake_yf.infos["AAPL"] = {"bid": 109.0, "ask": 111.0}
    fake_clock.advance(29.9)
    cached = provider.get_quote("AAPL")
    assert fake_yf.count("info") == 1
    assert cached["bid"] == 99.0
    assert cached["timestamp"] == T0  # when it was fetched, not when it was served
    cached["ask"] = -1.0
    assert provider.get_quote("AAPL")["ask"] == 101.0  # served copies are independent too

    fake_clock.advance(0.1)  # age == TTL: stale
    fresh = provider.get_quote("AAPL")
    assert fake_yf.count("info") == 2
    assert fresh["bid"] == 109.0
    assert fresh["timestamp"] == T0 + timedelta(seconds=30)


def test_clock_going_backwards_invalidates_cache(
    provider: YFinanceProvider, fake_yf: FakeYF, fake_clock: FakeClock
) -> None:
    fake_yf.infos["AAPL"] = {"bid": 99.0, "ask": 101.0}
    provider.get_quote("AAPL")
    fake_clock.advance(-5)
    provider.get_quote("AAPL")
    assert fake_yf.count("info") == 2


def test_zero_ttl_disables_cache(fake_yf: FakeYF, fake_clock: FakeClock) -> None:
    provider = YFinanceProvider(cache_ttl_seconds=0, clock=fake_clock, yf_module=fake_yf)
    fake_yf.infos["AAPL"] = {"bid": 99.0, "ask": 101.0}
    provider.get_quote("AAPL")
    provider.get_quote("AAPL")
    assert fake_yf.count("info") == 2


def test_naive_clock_is_refused(fake_yf: FakeYF) -> None:
    provider = YFinanceProvider(clock=lambda: datetime(2024, 1, 2), yf_module=fake_yf)
    fake_yf.infos["AAPL"] = {"bid": 99.0, "ask": 101.0}
    with pytest.raises(ValueError, match="timezone-aware"):
        provider.get_quote("AAPL")


@pytest.mark.parametrize("kwargs", [{"cache_ttl_seconds": -1}, {"timeout": 0}, {"synthetic_spread_bps": -5}])
def test_constructor_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        YFinanceProvider(**kwargs)


def test_malformed_symbol_is_a_data_provider_error(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    with pytest.raises(DataProviderError, match="malformed"):
        provider.get_quote("not a symbol!")
    assert fake_yf.calls == []


def test_default_module_is_yfinance_imported_lazily(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    fake = FakeYF()
    fake.infos["AAPL"] = {"bid": 10.0, "ask": 10.02}
    monkeypatch.setattr(yfinance, "Ticker", fake.Ticker)
    quote = YFinanceProvider(clock=fake_clock).get_quote("AAPL")
    assert quote["ask"] == 10.02
    assert fake.count("info") == 1


# ---------------------------------------------------------------------------------------------------------
# YFinanceProvider: batched quotes


def test_multiple_quotes_use_one_download_for_all_symbols(
    provider: YFinanceProvider, fake_yf: FakeYF
) -> None:
    fake_yf.download_result = yahoo_download(
        {
            "AAA": yahoo_history(["2024-01-02", "2024-01-03"], [10.0, 11.0]),
            "BBB": yahoo_history(["2024-01-02", "2024-01-03"], [20.0, 22.0]),
            # Shorter history: padded with NaN on 2024-01-03, so its last *valid* close must be used.
            "CCC": yahoo_history(["2024-01-02"], [30.0]),
        }
    )

    quotes = provider.get_multiple_quotes(["aaa", "BBB", "ccc", "AAA"])

    assert fake_yf.count("download") == 1
    assert fake_yf.count("info") == 0
    _, tickers, kwargs = fake_yf.calls[0]
    assert tickers == ["AAA", "BBB", "CCC"]
    assert kwargs["group_by"] == "ticker" and kwargs["timeout"] == 7.5
    assert kwargs["progress"] is False and kwargs["threads"] is False
    assert list(quotes) == ["AAA", "BBB", "CCC"]
    for symbol, price in (("AAA", 11.0), ("BBB", 22.0), ("CCC", 30.0)):
        quote = quotes[symbol]
        assert set(quote) == QUOTE_KEYS and quote["symbol"] == symbol
        assert (quote["bid"] + quote["ask"]) / 2 == pytest.approx(price)
        assert quote["spread_bps"] == pytest.approx(10.0)
        assert quote["timestamp"] == T0


def test_multiple_quotes_fill_and_use_the_quote_cache(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    fake_yf.infos["AAA"] = {"bid": 9.9, "ask": 10.1}
    provider.get_quote("AAA")
    fake_yf.download_result = yahoo_download({"BBB": yahoo_history(["2024-01-02"], [20.0])})

    quotes = provider.get_multiple_quotes(["AAA", "BBB"])

    assert fake_yf.calls[-1][1] == ["BBB"]  # AAA came from the cache
    assert quotes["AAA"]["bid"] == 9.9
    provider.get_quote("BBB")
    assert fake_yf.count("info") == 1  # BBB was cached by the batch


def test_multiple_quotes_omit_and_log_symbols_without_data(
    provider: YFinanceProvider, fake_yf: FakeYF, caplog: pytest.LogCaptureFixture
) -> None:
    fake_yf.download_result = yahoo_download({"AAA": yahoo_history(["2024-01-02"], [10.0]), "GONE": None})
    with caplog.at_level(logging.WARNING, logger="ledger.brokers.data_provider"):
        quotes = provider.get_multiple_quotes(["AAA", "GONE"])
    assert list(quotes) == ["AAA"]
    assert "GONE" in caplog.text


def test_multiple_quotes_raise_when_every_symbol_fails(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    fake_yf.download_result = yahoo_download({"GONE": None, "LOST": None})
    with pytest.raises(DataProviderError, match="GONE.*LOST"):
        provider.get_multiple_quotes(["GONE", "LOST"])


def test_multiple_quotes_of_nothing_is_empty_without_a_request(
    provider: YFinanceProvider, fake_yf: FakeYF
) -> None:
    assert provider.get_multiple_quotes([]) == {}
    assert fake_yf.calls == []


@pytest.mark.filterwarnings("ignore::Warning")
def test_multiple_quotes_parse_real_yfinance_download_output(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    """Runs the real yf.download (its frame assembly) with only its per-ticker fetch faked."""
    histories = {"AAA": yahoo_history(["2024-01-02", "2024-01-03"], [10.0, 12.5])}

    class OfflineTicker:
        def __init__(self, symbol: str):
            self.symbol = symbol
            self._price_history = None

        def history(self, **kwargs: Any) -> pd.DataFrame:
            if self.symbol not in histories:
                raise ConnectionError("no such ticker")
            return histories[self.symbol].copy()

    monkeypatch.setattr(yfinance, "download", REAL_DOWNLOAD)
    monkeypatch.setattr(yfinance.multi, "Ticker", OfflineTicker)
    provider = YFinanceProvider(clock=fake_clock, timeout=3)

    quotes = provider.get_multiple_quotes(["AAA", "NOPE"])

    assert list(quotes) == ["AAA"]
    assert (quotes["AAA"]["bid"] + quotes["AAA"]["ask"]) / 2 == pytest.approx(12.5)


# ---------------------------------------------------------------------------------------------------------
# YFinanceProvider: errors


@pytest.mark.parametrize(
    ("operation", "arrange"),
    [
        ("quote", lambda fake: fake.infos.__setitem__("AAPL", ConnectionError("connection reset"))),
        ("quote", lambda fake: fake.infos.__setitem__("AAPL", KeyError("regularMarketTime"))),
        ("historical", lambda fake: fake.histories.__setitem__("AAPL", TimeoutError("read timed out"))),
        ("history", lambda fake: fake.histories.__setitem__("AAPL", ValueError("Expecting value: line 1"))),
        ("multiple", lambda fake: setattr(fake, "download_result", RuntimeError("rate limited"))),
    ],
    ids=["quote-network", "quote-parse", "historical-timeout", "history-json", "multiple-download"],
)
def test_yfinance_exceptions_become_chained_data_provider_errors(
    provider: YFinanceProvider, fake_yf: FakeYF, operation: str, arrange: Any
) -> None:
    arrange(fake_yf)
    calls = {
        "quote": lambda: provider.get_quote("AAPL"),
        "historical": lambda: provider.get_historical("AAPL"),
        "history": lambda: provider.get_history("AAPL", "2024-01-01", "2024-02-01"),
        "multiple": lambda: provider.get_multiple_quotes(["AAPL"]),
    }
    with pytest.raises(DataProviderError) as caught:
        calls[operation]()
    error = caught.value
    assert error.symbol == "AAPL"
    assert "AAPL" in str(error)
    assert isinstance(error.__cause__, Exception) and not isinstance(error.__cause__, DataProviderError)


def test_empty_history_raises(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    fake_yf.histories["AAPL"] = yahoo_history([], [])
    with pytest.raises(DataProviderError, match="AAPL.*no bars"):
        provider.get_historical("AAPL")


# ---------------------------------------------------------------------------------------------------------
# YFinanceProvider: bars


def test_historical_columns_normalized_and_index_utc(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    raw = yahoo_history(["2024-01-03", "2024-01-02"], [101.0, 100.0])  # out of order on purpose
    raw["Dividends"] = 0.0
    raw["Stock Splits"] = 0.0
    fake_yf.histories["AAPL"] = raw

    bars = provider.get_historical("aapl", period="5d", interval="1d")

    assert list(bars.columns) == list(OHLCV_COLUMNS)
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert bars.index.name == "timestamp"
    assert bars.index.dtype == "datetime64[us, UTC]"
    # Midnight in New York is 05:00 UTC in January.
    assert list(bars.index) == [
        pd.Timestamp("2024-01-02 05:00", tz="UTC"),
        pd.Timestamp("2024-01-03 05:00", tz="UTC"),
    ]
    assert list(bars["close"]) == [100.0, 101.0]
    _, symbol, kwargs = fake_yf.calls[0]
    assert symbol == "AAPL"
    assert kwargs["period"] == "5d" and kwargs["interval"] == "1d" and kwargs["timeout"] == 7.5


@pytest.mark.parametrize("ticker_level_first", [True, False])
def test_normalize_bars_flattens_multiindex_columns(ticker_level_first: bool) -> None:
    raw = yahoo_download(
        {"AAA": yahoo_history(["2024-01-02"], [10.0]), "BBB": yahoo_history(["2024-01-02"], [20.0])}
    )
    if not ticker_level_first:  # yf.download's default group_by="column" layout
        raw.columns = raw.columns.swaplevel(0, 1)

    bars = normalize_bars(raw, "BBB")

    assert list(bars.columns) == list(OHLCV_COLUMNS)
    assert bars["close"].tolist() == [20.0]
    assert str(bars.index.tz) == "UTC"  # the download's naive index is taken as UTC


def test_normalize_bars_requires_every_ohlcv_column() -> None:
    raw = yahoo_history(["2024-01-02"], [10.0]).drop(columns=["Volume"])
    with pytest.raises(DataProviderError, match="volume"):
        normalize_bars(raw, "AAA")


class DictBarCache:
    """A BarCache in a dict: answers only for ranges it fully holds (here: any stored frame)."""

    def __init__(self) -> None:
        self.frames: dict[tuple[str, str], pd.DataFrame] = {}
        self.gets: list[tuple[str, str, datetime, datetime]] = []
        self.puts: list[tuple[str, str, pd.DataFrame]] = []

    def get_bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        self.gets.append((symbol, interval, start, end))
        frame = self.frames.get((symbol, interval))
        if frame is None:
            return None
        return frame[(frame.index >= start) & (frame.index < end)]

    def put_bars(self, symbol: str, interval: str, frame: pd.DataFrame) -> None:
        self.puts.append((symbol, interval, frame))
        self.frames[(symbol, interval)] = frame


def test_get_history_consults_and_fills_the_bar_cache(fake_yf: FakeYF, fake_clock: FakeClock) -> None:
    cache = DictBarCache()
    assert isinstance(cache, BarCache)
    provider = YFinanceProvider(clock=fake_clock, bar_cache=cache, yf_module=fake_yf)
    # Yahoo answers one bar past the requested end: the provider must clip it.
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    fake_yf.histories["AAPL"] = yahoo_history(days, [1, 2, 3, 4])

    first = provider.get_history("aapl", date(2024, 1, 2), date(2024, 1, 5))

    start, end = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC)
    assert cache.gets == [("AAPL", "1d", start, end)]
    assert first["close"].tolist() == [1.0, 2.0, 3.0]
    _, _, kwargs = fake_yf.calls[0]
    assert (kwargs["start"], kwargs["end"], kwargs["interval"]) == (start, end, "1d")
    assert kwargs["start"].tzinfo is not None and kwargs["timeout"] == 10.0
    assert len(cache.puts) == 1 and cache.puts[0][:2] == ("AAPL", "1d")
    pd.testing.assert_frame_equal(cache.puts[0][2], first)

    second = provider.get_history("AAPL", "2024-01-02", "2024-01-05")

    assert fake_yf.count("history") == 1  # served by the cache
    assert len(cache.gets) == 2 and len(cache.puts) == 1
    pd.testing.assert_frame_equal(second, first)


def test_get_history_survives_a_failing_cache(
    fake_yf: FakeYF, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenCache(DictBarCache):
        def get_bars(self, *args: Any) -> pd.DataFrame | None:
            raise OSError("disk gone")

    provider = YFinanceProvider(clock=fake_clock, bar_cache=BrokenCache(), yf_module=fake_yf)
    fake_yf.histories["AAPL"] = yahoo_history(["2024-01-02"], [5.0])
    with caplog.at_level(logging.WARNING, logger="ledger.brokers.data_provider"):
        bars = provider.get_history("AAPL", "2024-01-01", "2024-01-10")
    assert bars["close"].tolist() == [5.0]
    assert "cache read failed" in caplog.text


def test_get_history_rejects_an_empty_window(provider: YFinanceProvider, fake_yf: FakeYF) -> None:
    with pytest.raises(ValueError, match="after start"):
        provider.get_history("AAPL", "2024-02-01", "2024-01-01")
    fake_yf.histories["AAPL"] = yahoo_history(["2023-06-01"], [5.0])
    with pytest.raises(DataProviderError, match="no bars between"):
        provider.get_history("AAPL", "2024-01-01", "2024-02-01")


# ---------------------------------------------------------------------------------------------------------
# ReplayProvider


def long_bars() -> pd.DataFrame:
    """Two symbols on three days; BBB has no bar on the second day; rows within a day in reverse order."""
    return pd.DataFrame(
        {
            "timestamp": ["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-04"],
            "symbol": ["BBB", "AAA", "AAA", "BBB", "AAA"],
            "open": [20.0, 10.0, 11.0, 21.0, 12.0],
            "high": [21.0, 11.0, 12.0, 22.0, 13.0],
            "low": [19.0, 9.0, 10.0, 20.0, 11.0],
            "close": [20.5, 10.5, 11.5, 21.5, 12.5],
            "volume": [200, 100, 110, 210, 120],
        }
    )


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_replay_yields_bars_grouped_by_timestamp_in_time_order() -> None:
    replay = ReplayProvider(long_bars())

    steps = list(replay.bars())

    assert [stamp for stamp, _ in steps] == [day("2024-01-02"), day("2024-01-03"), day("2024-01-04")]
    assert all(stamp.tzinfo is not None for stamp, _ in steps)
    assert [list(bars) for _, bars in steps] == [["AAA", "BBB"], ["AAA"], ["AAA", "BBB"]]
    assert steps[0][1]["BBB"] == {"open": 20.0, "high": 21.0, "low": 19.0, "close": 20.5, "volume": 200.0}
    assert replay.symbols == ["AAA", "BBB"] and len(replay) == 3


def test_replay_quote_is_at_market_time_of_the_current_position() -> None:
    replay = ReplayProvider(long_bars())
    seen = []
    for stamp, _ in replay:
        seen.append((stamp, replay.get_quote("aaa"), replay.get_quote("BBB")))

    for stamp, quote, _ in seen:
        assert set(quote) == QUOTE_KEYS
        assert quote["timestamp"] == stamp  # market time, not wall-clock time
    assert [(a["bid"] + a["ask"]) / 2 for _, a, _ in seen] == pytest.approx([10.5, 11.5, 12.5])
    assert seen[0][1]["spread_bps"] == pytest.approx(10.0)
    # BBB did not trade on 2024-01-03: its quote is the stale 2024-01-02 close with that bar's time.
    stale = seen[1][2]
    assert stale["timestamp"] == day("2024-01-02")
    assert (stale["bid"] + stale["ask"]) / 2 == pytest.approx(20.5)


def test_replay_advance_and_reset_move_the_position() -> None:
    replay = ReplayProvider(long_bars())
    assert replay.current_timestamp == day("2024-01-02")
    assert replay.advance() is True and replay.advance() is True
    assert replay.current_timestamp == day("2024-01-04") and replay.position == 2
    assert replay.advance() is False and replay.position == 2
    replay.reset()
    assert replay.get_quote("AAA")["timestamp"] == day("2024-01-02")


def test_replay_history_never_looks_ahead() -> None:
    replay = ReplayProvider(long_bars())
    replay.advance()

    bars = replay.get_historical("AAA", period="max")
    assert list(bars.columns) == list(OHLCV_COLUMNS)
    assert list(bars.index) == [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC")]
    assert bars.index.name == "timestamp"

    window = replay.get_history("AAA", "2024-01-01", "2024-12-31")
    assert window["close"].tolist() == [10.5, 11.5]
    with pytest.raises(DataProviderError, match="no replay bars"):
        replay.get_history("AAA", "2024-01-04", "2024-01-05")  # still in the future


def test_replay_period_counts_back_from_the_current_bar() -> None:
    dates = pd.bdate_range("2024-01-01", periods=10)
    frame = pd.DataFrame(
        {"timestamp": dates, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1}
    )
    replay = ReplayProvider(frame, symbol="AAA")
    for _ in range(4):
        replay.advance()  # now at Friday 2024-01-05
    assert len(replay.get_historical("AAA", period="3d")) == 3
    assert len(replay.get_historical("AAA", period="1wk")) == 5
    with pytest.raises(DataProviderError, match="not 1h"):
        replay.get_historical("AAA", interval="1h")
    with pytest.raises(ValueError, match="period"):
        replay.get_historical("AAA", period="fortnight")


def test_replay_unknown_symbol_and_multiple_quotes(caplog: pytest.LogCaptureFixture) -> None:
    replay = ReplayProvider(long_bars())
    with pytest.raises(DataProviderError, match="ZZZ"):
        replay.get_quote("ZZZ")
    with caplog.at_level(logging.WARNING, logger="ledger.brokers.data_provider"):
        quotes = replay.get_multiple_quotes(["BBB", "ZZZ", "AAA"])
    assert list(quotes) == ["BBB", "AAA"]
    assert "ZZZ" in caplog.text
    with pytest.raises(DataProviderError, match="ZZZ"):
        replay.get_multiple_quotes(["ZZZ"])


def test_replay_timestamps_become_utc() -> None:
    frame = long_bars().iloc[[1, 2]].reset_index(drop=True)
    frame["timestamp"] = ["2024-01-02T09:30:00-05:00", "2024-01-03 14:30"]  # aware and naive
    replay = ReplayProvider(frame)
    assert replay.timestamps == [
        datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
        datetime(2024, 1, 3, 14, 30, tzinfo=UTC),
    ]


def test_replay_accepts_a_wide_single_symbol_frame() -> None:
    raw = yahoo_history(["2024-01-02", "2024-01-03"], [10.0, 11.0])  # DatetimeIndex, capitalized columns
    replay = ReplayProvider(raw, symbol="aaa")
    assert replay.symbols == ["AAA"]
    assert replay.timestamps[0] == datetime(2024, 1, 2, 5, tzinfo=UTC)
    replay.advance()
    assert replay.get_historical("AAA", period="max")["close"].tolist() == [10.0, 11.0]


def test_replay_symbol_argument_filters_a_long_frame() -> None:
    replay = ReplayProvider(long_bars(), symbol="BBB")
    assert replay.symbols == ["BBB"] and len(replay) == 2
    broken = _mutate(long_bars(), 3, "close", 0.0)
    with pytest.raises(ValueError, match="row 3 "):  # numbered as in the caller's frame, not the filtered one
        ReplayProvider(broken, symbol="BBB")


def _mutate(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.astype({column: object}) if not isinstance(value, float) else frame
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["volume"]), "missing column.*volume"),
        (lambda f: f.drop(columns=["symbol"]), "no 'symbol' column"),
        (lambda f: f.iloc[0:0], "empty"),
        (lambda f: _mutate(f, 2, "close", float("nan")), "row 2 .*close must be a finite price > 0"),
        (lambda f: _mutate(f, 1, "open", 0.0), "row 1 .*open must be a finite price > 0"),
        (lambda f: _mutate(f, 3, "low", -1.0), "row 3 .*low must be"),
        (lambda f: _mutate(f, 0, "high", "abc"), "row 0 .*high must be"),
        (lambda f: _mutate(f, 0, "volume", -5.0), "row 0 .*volume must be"),
        (lambda f: _mutate(f, 4, "high", 11.5), "row 4 .*high/low"),
        (lambda f: _mutate(f, 2, "timestamp", "not a date"), "timestamp"),
        (lambda f: _mutate(f, 1, "symbol", "bad symbol!"), "bad symbol"),
        (lambda f: f.iloc[[0, 1, 3, 2, 4]].reset_index(drop=True), "row 3 .*not in time order"),
        (lambda f: pd.concat([f.iloc[:2], f.iloc[[1]], f.iloc[2:]], ignore_index=True), "row 2 .*duplicate"),
    ],
    ids=[
        "no-volume", "no-symbol", "empty", "nan-close", "zero-open", "negative-low", "text-high",
        "negative-volume", "high-below-open", "bad-timestamp", "bad-symbol", "unsorted", "duplicate",
    ],
)
def test_replay_rejects_invalid_bars(mutate: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayProvider(mutate(long_bars()))


def test_replay_from_csv_round_trip(tmp_path: Path) -> None:
    frame = long_bars()
    frame.loc[frame["symbol"] == "BBB", "symbol"] = "NA"  # a real ticker that pandas would read as NaN
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)

    from_file = ReplayProvider.from_file(path)
    in_memory = ReplayProvider(frame)

    assert from_file.symbols == ["AAA", "NA"]
    assert list(from_file.bars()) == list(in_memory.bars())


def test_replay_from_parquet_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    frame = long_bars()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    assert list(ReplayProvider.from_file(path).bars()) == list(ReplayProvider(long_bars()).bars())


def test_replay_from_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    long_bars().iloc[[0, 0]].to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"broken\.csv.*duplicate"):
        ReplayProvider.from_file(path)
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        ReplayProvider.from_file(tmp_path / "bars.xlsx")


# ---------------------------------------------------------------------------------------------------------
# Factory


def test_factory_backends(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    long_bars().to_csv(path, index=False)

    replay = get_data_provider("replay", path=path)
    assert isinstance(replay, ReplayProvider) and replay.symbols == ["AAA", "BBB"]
    assert isinstance(get_data_provider("replay", bars=long_bars(), symbol="AAA"), ReplayProvider)
    yf_provider = get_data_provider("yfinance", cache_ttl_seconds=5)
    assert isinstance(yf_provider, YFinanceProvider) and isinstance(yf_provider, DataProvider)
    assert isinstance(get_data_provider(), YFinanceProvider)

    with pytest.raises(ValueError, match="exactly one of path= or bars="):
        get_data_provider("replay")
    with pytest.raises(NotImplementedError):
        get_data_provider("ibkr")
    with pytest.raises(ValueError, match="Unknown data provider backend: bogus"):
        get_data_provider("bogus")


# ---------------------------------------------------------------------------------------------------------
# Sample dataset


def test_sample_dataset_loads_with_three_synthetic_symbols() -> None:
    path = sample_bars_path()
    assert path.is_file() and path.name == "sample_bars.csv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "timestamp,symbol,open,high,low,close,volume"

    replay = ReplayProvider.from_file(path)

    assert replay.symbols == ["SYN_A", "SYN_B", "SYN_C"]
    assert len(replay) == 500
    assert replay.timestamps[0] == datetime(2022, 1, 3, tzinfo=UTC)
    assert all(stamp.weekday() < 5 for stamp in replay.timestamps)
    raw = pd.read_csv(path)
    assert (raw[["open", "high", "low", "close"]] > 0).all().all()
    assert raw["volume"].dtype == np.int64 and (raw["volume"] > 0).all()
    assert (raw.groupby("symbol").size() == 500).all()
    scaled = raw[["open", "high", "low", "close"]].to_numpy() * 10_000
    assert np.allclose(scaled, np.round(scaled), atol=1e-6)  # at most 4 decimals


def test_sample_dataset_is_labelled_synthetic() -> None:
    import ledger.data

    assert make_sample.__doc__ is not None and "SYNTHETIC" in make_sample.__doc__.splitlines()[0]
    assert ledger.data.__doc__ is not None and "SYNTHETIC" in ledger.data.__doc__


def test_sample_dataset_matches_its_generator() -> None:
    generated = make_sample.generate_sample_bars()
    stored = pd.read_csv(sample_bars_path())
    assert list(stored.columns) == list(generated.columns)
    assert stored["timestamp"].tolist() == generated["timestamp"].tolist()
    assert stored["symbol"].tolist() == generated["symbol"].tolist()
    for column in ("open", "high", "low", "close", "volume"):
        tolerance = 1.0 if column == "volume" else 1e-4  # last-digit rounding may differ across numpy builds
        np.testing.assert_allclose(stored[column], generated[column], atol=tolerance)


def test_sample_dataset_gives_a_crossover_strategy_a_few_dozen_trades() -> None:
    raw = pd.read_csv(sample_bars_path())
    crossings = 0
    for _, group in raw.groupby("symbol"):
        close = group["close"].reset_index(drop=True)
        above = (close.rolling(10).mean() > close.rolling(30).mean())[29:]
        crossings += int((above.astype(int).diff().abs() == 1).sum())
    assert 24 <= crossings <= 150


class OfflineYF(FakeYF):
    """yfinance without a network, as 0.2/1.x behave: download logs each failure and a pandas warning, then
    returns an empty frame; Ticker calls raise the transport's error."""

    DNS = "DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com')"

    def download(self, **kwargs: Any) -> pd.DataFrame:
        self.calls.append(("download", kwargs.get("tickers"), kwargs))
        yf_logger = logging.getLogger("yfinance")
        yf_logger.error("\n%d Failed downloads:", len(kwargs["tickers"]))
        yf_logger.error(f"{kwargs['tickers']}: {self.DNS}")
        warnings.warn("The default fill_method='pad' in DataFrame.pct_change is deprecated", FutureWarning)
        return pd.DataFrame()


def test_offline_multiple_quotes_fail_in_one_line_naming_the_network_cause_and_print_nothing(
    fake_clock: FakeClock, capfd: pytest.CaptureFixture[str]
) -> None:
    provider = YFinanceProvider(clock=fake_clock, yf_module=OfflineYF())

    with pytest.raises(DataProviderError) as raised:
        provider.get_multiple_quotes(["AAPL", "MSFT"])

    message = str(raised.value)
    assert "\n" not in message
    assert "cannot reach Yahoo Finance" in message and "Could not resolve host" in message
    assert capfd.readouterr().err == ""  # no yfinance log lines, no pandas warning on the terminal


def test_offline_quote_and_history_name_the_network_cause(fake_clock: FakeClock, capfd) -> None:
    offline = OfflineYF()
    offline.infos["AAPL"] = ConnectionError("HTTPSConnectionPool(host='query2.finance.yahoo.com'): Max retries\nmore")
    offline.histories["AAPL"] = ConnectionError("Failed to perform, curl: (6) Could not resolve host")
    provider = YFinanceProvider(clock=fake_clock, yf_module=offline)

    with pytest.raises(DataProviderError, match=r"cannot reach Yahoo Finance: HTTPSConnectionPool.*Max retries$"):
        provider.get_quote("AAPL")
    with pytest.raises(DataProviderError, match="cannot reach Yahoo Finance: Failed to perform"):
        provider.get_historical("AAPL")
    assert capfd.readouterr().err == ""
