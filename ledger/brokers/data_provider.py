"""Market data for paper trading: live quotes and bars from Yahoo Finance, or offline replay of stored bars.

Two providers implement :class:`DataProvider`:

* :class:`YFinanceProvider` asks Yahoo Finance through the ``yfinance`` package. Quotes are cached for a
  short TTL; every failure of yfinance (network, parsing, anything) surfaces as a
  :class:`~ledger.exceptions.DataProviderError` naming the symbol, with the original exception chained.
* :class:`ReplayProvider` serves OHLCV bars from a DataFrame or a CSV/Parquet file, one timestamp at a time,
  so a strategy can be run offline and deterministically.

Shapes shared by both:

* A quote is a dict with ``symbol`` (upper-case), ``bid``, ``ask``, ``bid_size``, ``ask_size`` and
  ``spread_bps`` (floats) and ``timestamp`` (a UTC-aware ``datetime``). When no real bid/ask is available the
  quote is a *synthetic spread* of ``synthetic_spread_bps`` (default 10 bps) centred on the last price.
* Bars are a DataFrame indexed by a UTC-aware ``DatetimeIndex`` named ``timestamp`` with float columns
  ``open, high, low, close, volume`` (see :func:`normalize_bars`).
* ``get_multiple_quotes`` returns the symbols it could price and omits (and logs) the others; it raises
  ``DataProviderError`` only when none of the requested symbols could be priced, so one delisted ticker
  does not take down a whole portfolio refresh.

yfinance's own log lines and the warnings of the libraries under it (pandas) are kept off the terminal
while it runs; they are collected instead, so that a failure says its cause in one line ("cannot reach
Yahoo Finance: ... Could not resolve host ...") rather than printing a dozen lines before a vague error.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ledger.book.validation import normalize_symbol
from ledger.exceptions import DataProviderError
from ledger.money import round_amount

logger = logging.getLogger(__name__)

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
REPLAY_COLUMNS: tuple[str, ...] = ("timestamp", "symbol", *OHLCV_COLUMNS)
DEFAULT_SYNTHETIC_SPREAD_BPS = 10.0
DEFAULT_QUOTE_SIZE = 100.0

# yfinance ``.info`` keys holding a last price, most to least current. The previous close is a last resort:
# stale, but still the price the symbol last traded at.
_INFO_PRICE_KEYS = ("regularMarketPrice", "currentPrice", "regularMarketPreviousClose", "previousClose")
_PERIOD_PATTERN = re.compile(r"^(\d+)(d|wk|mo|y)$")

Clock = Callable[[], datetime]
TimeLike = datetime | date | str | pd.Timestamp


@runtime_checkable
class BarCache(Protocol):
    """A store of normalized bars that :meth:`YFinanceProvider.get_history` consults before asking Yahoo.

    ``start`` (inclusive) and ``end`` (exclusive) are UTC-aware datetimes. ``get_bars`` returns None (or an
    empty frame) unless it holds the *whole* range, because the provider then trusts the answer without
    fetching. Frames in both directions have the :func:`normalize_bars` shape.
    """

    def get_bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """Bars of ``symbol`` at ``interval`` with start <= timestamp < end, or None when not fully cached."""
        ...

    def put_bars(self, symbol: str, interval: str, frame: pd.DataFrame) -> None:
        """Store bars just fetched for ``symbol`` at ``interval``."""
        ...


class DataProvider(ABC):
    """What trading code may ask of a market-data source."""

    @abstractmethod
    def get_quote(self, symbol: str) -> dict[str, Any]:
        """The current quote of ``symbol`` (see the module docstring for its keys)."""

    @abstractmethod
    def get_historical(self, symbol: str, period: str = "1mo", interval: str = "1d") -> pd.DataFrame:
        """OHLCV bars of ``symbol`` covering the last ``period`` (``5d``, ``1mo``, ``1y``, ``max``...)."""

    @abstractmethod
    def get_multiple_quotes(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """Quotes of several symbols keyed by upper-case symbol; unpriceable symbols are omitted."""

    def get_history(self, symbol: str, start: TimeLike, end: TimeLike, interval: str = "1d") -> pd.DataFrame:
        """OHLCV bars of ``symbol`` with start <= timestamp < end (naive times and dates mean UTC)."""
        raise NotImplementedError(f"{type(self).__name__} does not serve bars by date range")


# ---------------------------------------------------------------------------------------------------------
# Shared helpers


def _clean_symbol(symbol: object) -> str:
    """The upper-case symbol, or DataProviderError when it is malformed."""
    try:
        return normalize_symbol(symbol)
    except (ValueError, TypeError) as exc:
        raise DataProviderError(str(symbol), str(exc)) from exc


def _positive_float(value: object) -> float | None:
    """``value`` as a finite float > 0, or None (missing, zero, NaN, infinite, negative, non-numeric)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number


def _six_places(value: float) -> float:
    """``value`` rounded half-even to the ledger's six decimal places (as a float whose repr has at most six)."""
    return float(round_amount(Decimal(repr(float(value)))))


def _make_quote(
    symbol: str, bid: float, ask: float, bid_size: float, ask_size: float, timestamp: datetime
) -> dict[str, Any]:
    # The ledger refuses more than six decimals rather than round them: float noise is rounded here, at the edge.
    bid, ask, bid_size, ask_size = (_six_places(value) for value in (bid, ask, bid_size, ask_size))
    mid = (bid + ask) / 2.0
    return {
        "symbol": symbol,
        "bid": bid,
        "ask": ask,
        "bid_size": bid_size,
        "ask_size": ask_size,
        "timestamp": timestamp,
        "spread_bps": float((ask - bid) / mid * 10_000.0),
    }


def synthetic_quote(
    symbol: str,
    price: float,
    timestamp: datetime,
    spread_bps: float = DEFAULT_SYNTHETIC_SPREAD_BPS,
    size: float = DEFAULT_QUOTE_SIZE,
) -> dict[str, Any]:
    """A quote ``spread_bps`` wide centred on ``price`` (for sources that have no real bid/ask)."""
    half = price * spread_bps / 20_000.0
    return _make_quote(symbol, price - half, price + half, size, size, timestamp)


def _check_spread_bps(value: float) -> float:
    spread = float(value)
    if not math.isfinite(spread) or not 0 <= spread < 10_000:
        raise ValueError(f"synthetic_spread_bps must be between 0 and 10000, got {value!r}")
    return spread


def to_utc_timestamp(value: TimeLike, what: str = "time") -> pd.Timestamp:
    """``value`` as a UTC-aware Timestamp; naive datetimes, dates and date strings are taken as UTC."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a date or time: {value!r}") from exc
    if stamp is pd.NaT:
        raise ValueError(f"{what} is not a date or time: {value!r}")
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """``index`` as a UTC microsecond DatetimeIndex named ``timestamp`` (naive values are taken as UTC)."""
    stamps = pd.DatetimeIndex(index)
    stamps = stamps.tz_localize(UTC) if stamps.tz is None else stamps.tz_convert(UTC)
    # One resolution whatever the source (pandas parses to us or ns), so fetched and cached frames compare
    # equal; microseconds is what the ledger database stores.
    return stamps.as_unit("us").rename("timestamp")


def _flatten_columns(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Reduce yfinance's MultiIndex columns, (Ticker, Price) or (Price, Ticker), to those of ``symbol``."""
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex):
        return frame
    price_level = next(
        (
            level
            for level in range(columns.nlevels)
            if "close" in {str(value).strip().lower() for value in columns.get_level_values(level)}
        ),
        None,
    )
    if price_level is None:
        raise DataProviderError(symbol, f"response has no Close column (columns: {list(columns)[:8]})")
    keep = np.ones(len(columns), dtype=bool)
    for level in range(columns.nlevels):
        values = columns.get_level_values(level)
        # A level with several values besides the price names is the ticker level of a batched response.
        if level != price_level and values.nunique() > 1:
            keep &= np.asarray([str(value).strip().upper() == symbol for value in values])
    if not keep.any():
        raise DataProviderError(symbol, "symbol is absent from the response")
    selected = frame.loc[:, keep]
    selected.columns = selected.columns.get_level_values(price_level)
    return selected


def normalize_bars(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """yfinance-style bars -> float ``open, high, low, close, volume`` indexed by a UTC ``timestamp`` index.

    Column names are lower-cased (``Stock Splits`` -> ``stock_splits``), MultiIndex columns are reduced to
    the ones of ``symbol``, extra columns are dropped, rows without a close are dropped (a batched download
    pads every ticker to the union of dates), and the index is sorted and de-duplicated (last row wins).
    Raises DataProviderError when a column is missing or no bar is left.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataProviderError(symbol, f"expected a DataFrame of bars, got {type(frame).__name__}")
    flat = _flatten_columns(frame, symbol)
    flat = flat.rename(columns=lambda name: str(name).strip().lower().replace(" ", "_"))
    if flat.columns.duplicated().any():
        raise DataProviderError(symbol, f"ambiguous bar columns: {list(flat.columns)}")
    missing = [column for column in OHLCV_COLUMNS if column not in flat.columns]
    if missing:
        raise DataProviderError(symbol, f"bars lack column(s) {', '.join(missing)}")
    try:
        bars = flat.loc[:, list(OHLCV_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype("float64")
        bars.index = _utc_index(flat.index)
    except (TypeError, ValueError) as exc:
        raise DataProviderError(symbol, f"unparseable bars: {exc}") from exc
    bars = bars[bars["close"].notna()]
    bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    if bars.empty:
        raise DataProviderError(symbol, "no bars returned")
    return bars


def _in_period(index: pd.DatetimeIndex, period: str, now: pd.Timestamp) -> np.ndarray:
    """Mask of the timestamps inside a yfinance-style ``period`` ending at ``now`` (5d = the last 5 days)."""
    text = period.strip().lower()
    if text == "max":
        return np.ones(len(index), dtype=bool)
    if text == "ytd":
        return np.asarray(index.year == now.year)
    match = _PERIOD_PATTERN.match(text)
    if not match:
        raise ValueError(f"period must look like 5d, 2wk, 1mo, 1y, ytd or max, got {period!r}")
    count, unit = int(match.group(1)), match.group(2)
    offsets = {
        "d": pd.DateOffset(days=count),
        "wk": pd.DateOffset(weeks=count),
        "mo": pd.DateOffset(months=count),
        "y": pd.DateOffset(years=count),
    }
    # Exclusive lower bound: "5d" of daily bars ending today is today and the four days before.
    return np.asarray(index > now - offsets[unit])


def _raise_if_all_failed(requested: list[str], quotes: dict[str, Any], failures: dict[str, str]) -> None:
    """The get_multiple_quotes policy: omit and log failed symbols, raise only when nothing was priced."""
    if not failures:
        return
    detail = "; ".join(f"{symbol}: {reason}" for symbol, reason in failures.items())
    if not quotes:
        raise DataProviderError(", ".join(requested), f"no quote for any requested symbol ({detail})")
    logger.warning("Quotes unavailable, omitted from the result: %s", detail)


# What a network failure looks like in yfinance's exceptions and log lines (requests, curl_cffi, urllib3).
_NETWORK_FAILURE = re.compile(
    r"resolve host|name or service not known|temporary failure in name resolution|failed to perform|"
    r"connection|timed out|timeout|network is unreachable|dnserror|ssl",
    re.IGNORECASE,
)
_FAILED_DOWNLOADS_HEADER = re.compile(r"^\d+ Failed downloads?:$")


class _CollectedLines(logging.Handler):
    """Keeps the non-empty lines yfinance logs (warnings and errors), in order."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        for line in record.getMessage().splitlines():
            line = line.strip()
            if line and not _FAILED_DOWNLOADS_HEADER.match(line):
                self.lines.append(re.sub(r"^\[[^\]]*\]:\s*", "", line))  # "['AAPL']: DNSError(...)"


@contextmanager
def _quiet_yfinance() -> Iterator[list[str]]:
    """yfinance's log lines and library warnings kept off the terminal during a call; yields the lines it logged."""
    yf_logger = logging.getLogger("yfinance")
    collected = _CollectedLines()
    propagate = yf_logger.propagate
    yf_logger.addHandler(collected)  # with a handler of its own, logging's last-resort stderr printer stays quiet
    yf_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield collected.lines
    finally:
        yf_logger.removeHandler(collected)
        yf_logger.propagate = propagate


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _failure(what: str, exc: BaseException | None, logged: list[str]) -> str:
    """One line on why a yfinance call failed: the exception, else the first line yfinance logged."""
    cause = _first_line(str(exc)) or type(exc).__name__ if exc is not None else ""
    cause = cause or (logged[0] if logged else "")
    if _NETWORK_FAILURE.search(f"{type(exc).__name__ if exc is not None else ''} {cause}"):
        return f"cannot reach Yahoo Finance: {cause}"
    return f"{what} failed: {cause}" if cause else f"{what} failed"


def _requested_symbols(symbols: Iterable[str]) -> list[str]:
    """Upper-case symbols without repeats, in the caller's order (a lone string is one symbol)."""
    if isinstance(symbols, str):
        symbols = [symbols]
    return list(dict.fromkeys(_clean_symbol(symbol) for symbol in symbols))


# ---------------------------------------------------------------------------------------------------------
# Yahoo Finance


class YFinanceProvider(DataProvider):
    """Yahoo Finance through ``yfinance`` (free; delayed and rate-limited, fine for paper trading).

    Network calls are isolated in three small methods that tests replace or feed with a fake module
    (``yf_module``): :meth:`_fetch_info` (``Ticker.info``, the only yfinance call carrying bid/ask),
    :meth:`_fetch_history` (``Ticker.history``) and :meth:`_download` (``yfinance.download``, batched).
    """

    def __init__(
        self,
        cache_ttl_seconds: float = 30.0,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        bar_cache: BarCache | None = None,
        synthetic_spread_bps: float = DEFAULT_SYNTHETIC_SPREAD_BPS,
        yf_module: Any = None,
    ):
        """Set up the provider; nothing is fetched (and yfinance is not imported) until first use.

        ``cache_ttl_seconds``: how long a quote is served from memory (0 disables the cache).
        ``timeout``: seconds passed to every yfinance call that accepts one (``.info`` does not; yfinance
        applies its own 30 s there). ``clock``: returns the UTC-aware "now" used for quote timestamps and the
        TTL. ``bar_cache``: optional :class:`BarCache` for :meth:`get_history`. ``yf_module``: the object
        standing in for the ``yfinance`` module (tests pass a fake); default imports yfinance lazily.
        """
        ttl = float(cache_ttl_seconds)
        if not math.isfinite(ttl) or ttl < 0:
            raise ValueError(f"cache_ttl_seconds must be a finite number >= 0, got {cache_ttl_seconds!r}")
        wait = float(timeout)
        if not math.isfinite(wait) or wait <= 0:
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        self._cache_ttl = ttl
        self._timeout = wait
        self._clock: Clock = clock if clock is not None else (lambda: datetime.now(UTC))
        self._bar_cache = bar_cache
        self._spread_bps = _check_spread_bps(synthetic_spread_bps)
        self._yf = yf_module
        self._cache: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._lock = threading.Lock()  # the cache may be shared by a strategy thread and a UI thread

    # -- the yfinance edge: the only methods that touch the network -----------------------------------

    def _yfinance(self) -> Any:
        if self._yf is None:
            # Imported lazily: yfinance pulls in an HTTP stack that offline (replay) runs never need.
            self._yf = importlib.import_module("yfinance")
        return self._yf

    def _fetch_info(self, symbol: str) -> Mapping[str, Any]:
        """``yfinance.Ticker(symbol).info``: the quote summary, the cheapest call that carries bid and ask."""
        return self._yfinance().Ticker(symbol).info

    def _fetch_history(self, symbol: str, **window: Any) -> pd.DataFrame:
        """``yfinance.Ticker(symbol).history(...)``: split/dividend-adjusted prices, no action columns."""
        return self._yfinance().Ticker(symbol).history(
            **window, auto_adjust=True, actions=False, timeout=self._timeout
        )

    def _download(self, symbols: list[str]) -> pd.DataFrame:
        """One ``yfinance.download`` of the last few daily bars of all ``symbols``, grouped by ticker.

        ``threads=False`` keeps it deterministic; yfinance still sends one chart request per ticker inside
        this call, each bounded by ``timeout``. Prices are unadjusted: the last close is what trades.
        """
        return self._yfinance().download(
            tickers=symbols,
            period="5d",
            interval="1d",
            group_by="ticker",
            auto_adjust=False,
            actions=False,
            progress=False,
            threads=False,
            timeout=self._timeout,
        )

    # -- quotes -------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"clock must return a timezone-aware datetime, got {now!r}")
        return now.astimezone(UTC)

    def _cached(self, symbol: str, now: datetime) -> dict[str, Any] | None:
        with self._lock:
            entry = self._cache.get(symbol)
        if entry is None:
            return None
        fetched_at, quote = entry
        age = (now - fetched_at).total_seconds()
        # A clock that went backwards (negative age) means the entry cannot be trusted: refetch.
        if 0 <= age < self._cache_ttl:
            return dict(quote)  # a copy, so a caller editing its quote cannot corrupt the cache
        return None

    def _remember(self, symbol: str, quote: dict[str, Any], now: datetime) -> None:
        if self._cache_ttl > 0:
            with self._lock:
                self._cache[symbol] = (now, dict(quote))

    def clear_cache(self) -> None:
        """Forget every cached quote."""
        with self._lock:
            self._cache.clear()

    def _quote_from_info(self, symbol: str, info: object, now: datetime) -> dict[str, Any]:
        if not isinstance(info, Mapping):
            raise DataProviderError(symbol, f"unexpected quote payload of type {type(info).__name__}")
        bid = _positive_float(info.get("bid"))
        ask = _positive_float(info.get("ask"))
        bid_size = _positive_float(info.get("bidSize")) or DEFAULT_QUOTE_SIZE
        ask_size = _positive_float(info.get("askSize")) or DEFAULT_QUOTE_SIZE
        if bid is not None and ask is not None and bid <= ask:
            return _make_quote(symbol, bid, ask, bid_size, ask_size, now)
        # Yahoo reports bid/ask as 0 or leaves them out outside market hours, and occasionally crossed:
        # fall back to a synthetic spread around the last price.
        price = next(
            (p for p in (_positive_float(info.get(key)) for key in _INFO_PRICE_KEYS) if p is not None), None
        )
        if price is None:
            raise DataProviderError(symbol, "no usable bid/ask or last price in the quote")
        logger.debug("%s: bid=%r ask=%r unusable, synthetic spread around %s", symbol, bid, ask, price)
        quote = synthetic_quote(symbol, price, now, self._spread_bps)
        quote["bid_size"], quote["ask_size"] = bid_size, ask_size
        return quote

    def get_quote(self, symbol: str) -> dict[str, Any]:
        """The quote of ``symbol``: real bid/ask when Yahoo has them, else a synthetic spread.

        Served from the cache while younger than ``cache_ttl_seconds``. ``timestamp`` is when the quote
        was fetched (by ``clock``). Raises DataProviderError on any failure.
        """
        clean = _clean_symbol(symbol)
        now = self._now()
        cached = self._cached(clean, now)
        if cached is not None:
            return cached
        with _quiet_yfinance() as logged:
            try:
                info = self._fetch_info(clean)
            except Exception as exc:  # yfinance raises anything from HTTP errors to KeyError on odd payloads
                raise DataProviderError(clean, _failure("quote request", exc, logged)) from exc
        quote = self._quote_from_info(clean, info, now)
        self._remember(clean, quote, now)
        return dict(quote)

    def get_multiple_quotes(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """Quotes for ``symbols`` from ONE batched download (last daily close, synthetic spread).

        Symbols cached within the TTL are not re-requested. Symbols Yahoo has no data for are omitted and
        logged; DataProviderError is raised only when no requested symbol could be priced.
        """
        requested = _requested_symbols(symbols)
        now = self._now()
        quotes: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for symbol in requested:
            cached = self._cached(symbol, now)
            if cached is not None:
                quotes[symbol] = cached
            else:
                missing.append(symbol)
        failures: dict[str, str] = {}
        if missing:
            with _quiet_yfinance() as logged:
                try:
                    data = self._download(missing)
                except Exception as exc:
                    raise DataProviderError(", ".join(missing), _failure("batched download", exc, logged)) from exc
            for symbol in missing:
                try:
                    close = normalize_bars(data, symbol)["close"].iloc[-1]
                except DataProviderError as exc:
                    failures[symbol] = exc.reason
                    continue
                except Exception as exc:  # a payload shape nobody anticipated: report it per symbol
                    failures[symbol] = f"unparseable download: {exc!r}"
                    continue
                price = _positive_float(close)
                if price is None:
                    failures[symbol] = f"last close is not a positive price: {close!r}"
                    continue
                quote = synthetic_quote(symbol, price, now, self._spread_bps)
                self._remember(symbol, quote, now)
                quotes[symbol] = quote
            if not quotes and _NETWORK_FAILURE.search(" ".join(logged)):
                # offline, yfinance logs each failed download and returns an empty frame rather than raising
                raise DataProviderError(", ".join(missing), _failure("batched download", None, logged))
        _raise_if_all_failed(requested, quotes, failures)
        return {symbol: quotes[symbol] for symbol in requested if symbol in quotes}

    # -- bars ---------------------------------------------------------------------------------------------

    def _history(self, symbol: str, **window: Any) -> pd.DataFrame:
        with _quiet_yfinance() as logged:
            try:
                raw = self._fetch_history(symbol, **window)
            except Exception as exc:
                raise DataProviderError(symbol, _failure("history request", exc, logged)) from exc
        if logged and (raw is None or getattr(raw, "empty", False)) and _NETWORK_FAILURE.search(" ".join(logged)):
            raise DataProviderError(symbol, _failure("history request", None, logged))
        return normalize_bars(raw, symbol)

    def get_historical(self, symbol: str, period: str = "1mo", interval: str = "1d") -> pd.DataFrame:
        """Bars of ``symbol`` over the last ``period`` at ``interval`` (yfinance spellings: 1mo, 1d)."""
        clean = _clean_symbol(symbol)
        return self._history(clean, period=period, interval=interval)

    def get_history(self, symbol: str, start: TimeLike, end: TimeLike, interval: str = "1d") -> pd.DataFrame:
        """Bars of ``symbol`` with start <= timestamp < end (naive times and dates mean UTC).

        The bar cache, when given, is asked first and receives what was fetched. A failing cache is logged
        and bypassed: it is an optimization, and the bars are still correct without it.
        """
        clean = _clean_symbol(symbol)
        first = to_utc_timestamp(start, "start")
        stop = to_utc_timestamp(end, "end")
        if stop <= first:
            raise ValueError(f"end ({stop.isoformat()}) must be after start ({first.isoformat()})")
        window_start, window_end = first.to_pydatetime(), stop.to_pydatetime()
        if self._bar_cache is not None:
            try:
                cached = self._bar_cache.get_bars(clean, interval, window_start, window_end)
            except Exception:
                logger.warning("Bar cache read failed for %s; fetching from Yahoo", clean, exc_info=True)
                cached = None
            if cached is not None and not cached.empty:
                bars = normalize_bars(cached, clean)
                return bars[(bars.index >= first) & (bars.index < stop)]
        fetched = self._history(clean, start=window_start, end=window_end, interval=interval)
        # Yahoo reads the window in the exchange's time zone; clip so the result matches the UTC contract.
        bars = fetched[(fetched.index >= first) & (fetched.index < stop)]
        if bars.empty:
            raise DataProviderError(clean, f"no bars between {first.isoformat()} and {stop.isoformat()}")
        if self._bar_cache is not None:
            try:
                self._bar_cache.put_bars(clean, interval, bars.copy())
            except Exception:
                logger.warning("Bar cache write failed for %s", clean, exc_info=True)
        return bars


# ---------------------------------------------------------------------------------------------------------
# Replay


def _prepare_replay_frame(bars: pd.DataFrame, symbol: str | None, first_row: int = 0) -> pd.DataFrame:
    """Validate replay input and return it in long form: UTC timestamps, upper-case symbols, float OHLCV.

    ``first_row``: the position of ``bars``' first row in the caller's data (errors name rows by position)."""
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"replay bars must be a pandas DataFrame, got {type(bars).__name__}")
    frame = bars
    if isinstance(frame.columns, pd.MultiIndex):
        if symbol is None:
            raise ValueError("replay bars have MultiIndex columns: pass symbol= to pick one ticker")
        frame = _flatten_columns(frame, symbol)
    frame = frame.rename(columns=lambda name: str(name).strip().lower().replace(" ", "_"))
    if frame.columns.duplicated().any():
        raise ValueError(f"replay bars have duplicate column names: {list(frame.columns)}")
    if "timestamp" not in frame.columns:
        alias = next((name for name in ("datetime", "date") if name in frame.columns), None)
        if alias is not None:
            frame = frame.rename(columns={alias: "timestamp"})
        elif isinstance(frame.index, pd.DatetimeIndex):
            # A wide single-symbol frame such as yfinance's history(): the time is the index.
            frame = frame.rename_axis("timestamp").reset_index()
    if "symbol" not in frame.columns:
        if symbol is None:
            raise ValueError("replay bars have no 'symbol' column: pass symbol= for a single-symbol frame")
        frame = frame.assign(symbol=symbol)
    missing = [column for column in REPLAY_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"replay bars are missing column(s) {', '.join(missing)}; need {', '.join(REPLAY_COLUMNS)}"
        )
    frame = frame.loc[:, list(REPLAY_COLUMNS)].reset_index(drop=True)
    if frame.empty:
        raise ValueError("replay bars are empty")

    raw_symbols = frame["symbol"]
    try:
        mapping = {value: normalize_symbol(value) for value in pd.unique(raw_symbols)}
    except (ValueError, TypeError) as exc:
        raise ValueError(f"replay bars hold a bad symbol: {exc}") from exc
    symbols = raw_symbols.map(mapping).astype(object)
    # Error messages name rows by their position in the caller's frame (0 = first data row).
    positions = np.arange(len(frame)) + first_row
    if symbol is not None:
        keep = (symbols == symbol).to_numpy()
        if not keep.any():
            raise ValueError(f"replay bars hold no rows for symbol {symbol}")
        frame, symbols = frame[keep].reset_index(drop=True), symbols[keep].reset_index(drop=True)
        positions = positions[keep]

    def fail(row: int, stamp: object, message: str) -> ValueError:
        return ValueError(f"replay bars row {positions[row]} ({symbols[row]} at {stamp}): {message}")

    try:
        # ISO 8601 first: it lets one column mix dates, naive times and offsets, as hand-made CSVs do.
        stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        try:
            stamps = pd.to_datetime(frame["timestamp"], utc=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"replay bars hold an unparseable timestamp: {exc}") from exc
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise fail(row, frame["timestamp"][row], "timestamp is missing")
    stamps = stamps.dt.as_unit("us")  # the resolution of normalize_bars and of the ledger database

    values: dict[str, np.ndarray] = {}
    for column in OHLCV_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        if column == "volume":
            bad = ~(np.isfinite(numbers) & (numbers >= 0))
            need = "a finite volume >= 0"
        else:
            bad = ~(np.isfinite(numbers) & (numbers > 0))
            need = "a finite price > 0"
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            got = frame[column][row]
            raise fail(row, stamps[row], f"{column} must be {need}, got {got!r}")
        values[column] = numbers

    # Tolerance for float noise in stored data; a real inconsistency is far larger.
    slack = 1e-9 * values["high"]
    body_top = np.maximum(values["open"], values["close"])
    body_bottom = np.minimum(values["open"], values["close"])
    inconsistent = (values["high"] + slack < np.maximum(body_top, values["low"])) | (
        values["low"] - slack > body_bottom
    )
    if inconsistent.any():
        row = int(np.flatnonzero(inconsistent)[0])
        raise fail(row, stamps[row], "high/low do not bracket open and close")

    backwards = np.flatnonzero((stamps.diff() < pd.Timedelta(0)).to_numpy())
    if backwards.size:
        row = int(backwards[0])  # diff() puts each step on its later row
        message = f"rows are not in time order (the previous row is at {stamps[row - 1]})"
        raise fail(row, stamps[row], message)
    clean = pd.DataFrame({"timestamp": stamps, "symbol": symbols, **values})
    duplicated = clean.duplicated(["timestamp", "symbol"]).to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise fail(row, stamps[row], "duplicate (timestamp, symbol) row")
    # Rows are already in time order; order symbols within a timestamp so replay is deterministic.
    return clean.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


REPLAY_CHUNK_ROWS = 25_000


def read_replay_chunks(path: str | Path, chunk_rows: int = REPLAY_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """A long ``.csv`` or ``.parquet`` bar file (as ``ReplayProvider.from_file`` reads it) in validated chunks
    of about ``chunk_rows`` rows, in time order, each holding whole timestamps (symbols sorted within one).

    Memory stays flat however long the history: the file is read ``chunk_rows`` at a time, and the rows of the
    last timestamp of a chunk wait for the next one (a timestamp may straddle two). Errors name the file and
    the data row, as ``from_file``'s do; rows out of time order across chunks are refused like within one.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        raw_chunks: Iterable[pd.DataFrame] = pd.read_csv(
            source, dtype={"symbol": str}, keep_default_na=False, na_values=[""], chunksize=chunk_rows
        )
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        raw_chunks = (batch.to_pandas() for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_rows))
    else:
        raise ValueError(f"replay file must be .csv or .parquet, got {source}")
    waiting: pd.DataFrame | None = None  # raw rows of the previous chunk's last timestamp
    first_row = 0
    try:
        for raw in raw_chunks:
            if waiting is not None:
                raw = pd.concat([waiting, raw], ignore_index=True)
            # The waiting rows come first, so time order and duplicates are checked across chunks too.
            clean = _prepare_replay_frame(raw, None, first_row)
            stamps = clean["timestamp"]
            last = int((stamps == stamps.iloc[-1]).sum())  # raw rows are in time order: these are its tail
            waiting = raw.iloc[len(raw) - last :]
            first_row += len(raw) - last
            if last < len(clean):
                yield clean.iloc[: len(clean) - last]
        if waiting is None:
            raise ValueError("replay bars are empty")
        yield _prepare_replay_frame(waiting, None, first_row)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


class ReplayProvider(DataProvider):
    """Offline market data: stored OHLCV bars served one timestamp at a time, with no look-ahead.

    The replay position starts at the first timestamp. :meth:`bars` (also ``iter(provider)``) yields
    ``(timestamp, {symbol: {"open", "high", "low", "close", "volume"}})`` from the current position on,
    moving the position as it goes; :meth:`advance` moves one step. Quotes and history answer as of the
    current position: a quote is a synthetic spread around the symbol's latest close at or before it, time
    stamped with that bar's (market) time, and history never includes later bars.
    """

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        symbol: str | None = None,
        interval: str = "1d",
        synthetic_spread_bps: float = DEFAULT_SYNTHETIC_SPREAD_BPS,
        quote_size: float = DEFAULT_QUOTE_SIZE,
    ):
        """Validate and load ``bars``.

        Long format: columns ``timestamp, symbol, open, high, low, close, volume`` (any letter case),
        rows in time order, at most one row per (timestamp, symbol). A wide single-symbol frame (the time
        as a ``timestamp``/``date`` column or a DatetimeIndex, no symbol column) needs ``symbol=``; given
        with a long frame, ``symbol=`` keeps that symbol's rows only. Naive timestamps are UTC.
        ``interval`` names the bars' spacing; history requests for another interval are refused.
        Raises ValueError (naming the row) on invalid input.
        """
        wanted = _clean_symbol(symbol) if symbol is not None else None
        self._frame = _prepare_replay_frame(bars, wanted)
        self._interval = interval
        self._spread_bps = _check_spread_bps(synthetic_spread_bps)
        size = _positive_float(quote_size)
        if size is None:
            raise ValueError(f"quote_size must be a finite number > 0, got {quote_size!r}")
        self._quote_size = size
        stamps = pd.DatetimeIndex(self._frame["timestamp"])
        self._timestamps = stamps.unique()
        # Row ranges of each timestamp (rows are sorted by time), so a step costs no scan.
        self._starts = stamps.searchsorted(self._timestamps, side="left")
        self._ends = stamps.searchsorted(self._timestamps, side="right")
        self._by_symbol: dict[str, pd.DataFrame] = {
            name: group.set_index("timestamp")[list(OHLCV_COLUMNS)]
            for name, group in self._frame.groupby("symbol", sort=True)
        }
        for group in self._by_symbol.values():
            group.index = _utc_index(group.index)
        self._position = 0

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ReplayProvider:
        """Load bars from a ``.csv`` or ``.parquet`` file; keyword arguments go to the constructor.

        Errors name the file and the data row (0 = the first row after the CSV header).
        """
        source = Path(path)
        suffix = source.suffix.lower()
        if suffix == ".csv":
            # Keep symbols as text ("NA" is a ticker, not a missing value); only empty price cells are NaN.
            frame = pd.read_csv(source, dtype={"symbol": str}, keep_default_na=False, na_values=[""])
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(source)
        else:
            raise ValueError(f"replay file must be .csv or .parquet, got {source}")
        try:
            return cls(frame, **kwargs)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    # -- position -----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of distinct timestamps."""
        return len(self._timestamps)

    @property
    def position(self) -> int:
        """The index of the current timestamp (0 = first)."""
        return self._position

    @property
    def current_timestamp(self) -> datetime:
        """The market time of the current replay position (UTC-aware)."""
        return self._timestamps[self._position].to_pydatetime()

    @property
    def timestamps(self) -> list[datetime]:
        """Every distinct timestamp, in order."""
        return [stamp.to_pydatetime() for stamp in self._timestamps]

    @property
    def symbols(self) -> list[str]:
        """The symbols in the data, sorted."""
        return list(self._by_symbol)

    def reset(self) -> None:
        """Go back to the first timestamp."""
        self._position = 0

    def advance(self) -> bool:
        """Move to the next timestamp; False (and no move) when already at the last one."""
        if self._position + 1 >= len(self._timestamps):
            return False
        self._position += 1
        return True

    def _bars_at(self, index: int) -> dict[str, dict[str, float]]:
        rows = self._frame.iloc[self._starts[index] : self._ends[index]]
        return {
            str(row.symbol): {column: float(getattr(row, column)) for column in OHLCV_COLUMNS}
            for row in rows.itertuples(index=False)
        }

    def bars(self) -> Iterator[tuple[datetime, dict[str, dict[str, float]]]]:
        """Yield ``(timestamp, {symbol: bar})`` from the current position to the end, moving the position.

        While the caller handles a yielded step, quotes and history answer as of that timestamp.
        """
        for index in range(self._position, len(self._timestamps)):
            self._position = index
            yield self._timestamps[index].to_pydatetime(), self._bars_at(index)

    def __iter__(self) -> Iterator[tuple[datetime, dict[str, dict[str, float]]]]:
        return self.bars()

    # -- DataProvider ---------------------------------------------------------------------------------------

    def _visible(self, symbol: str) -> pd.DataFrame:
        """The bars of ``symbol`` up to and including the current timestamp."""
        try:
            bars = self._by_symbol[symbol]
        except KeyError:
            raise DataProviderError(symbol, "symbol is not in the replay data") from None
        end = bars.index.searchsorted(self._timestamps[self._position], side="right")
        return bars.iloc[:end]

    def get_quote(self, symbol: str) -> dict[str, Any]:
        """A synthetic-spread quote around the latest close at or before the current position.

        ``timestamp`` is that bar's market time, so a symbol that did not trade at the current timestamp
        shows a stale quote rather than a made-up fresh one.
        """
        clean = _clean_symbol(symbol)
        visible = self._visible(clean)
        if visible.empty:
            now = self._timestamps[self._position].isoformat()
            raise DataProviderError(clean, f"no bar at or before {now}")
        stamp = visible.index[-1].to_pydatetime()
        price = float(visible["close"].iloc[-1])
        return synthetic_quote(clean, price, stamp, self._spread_bps, self._quote_size)

    def get_multiple_quotes(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """Quotes as of the current position; unknown symbols are omitted and logged (all unknown: raise)."""
        requested = _requested_symbols(symbols)
        quotes: dict[str, dict[str, Any]] = {}
        failures: dict[str, str] = {}
        for symbol in requested:
            try:
                quotes[symbol] = self.get_quote(symbol)
            except DataProviderError as exc:
                failures[symbol] = exc.reason
        _raise_if_all_failed(requested, quotes, failures)
        return quotes

    def _check_interval(self, symbol: str, interval: str) -> None:
        if interval != self._interval:
            raise DataProviderError(symbol, f"replay data has {self._interval} bars, not {interval}")

    def get_historical(self, symbol: str, period: str = "1mo", interval: str = "1d") -> pd.DataFrame:
        """Bars of ``symbol`` in the ``period`` ending at the current position (never later bars)."""
        clean = _clean_symbol(symbol)
        self._check_interval(clean, interval)
        bars = self._visible(clean)
        bars = bars[_in_period(bars.index, period, self._timestamps[self._position])]
        if bars.empty:
            raise DataProviderError(clean, f"no bars in the last {period} of the replay")
        return bars.copy()

    def get_history(self, symbol: str, start: TimeLike, end: TimeLike, interval: str = "1d") -> pd.DataFrame:
        """Bars of ``symbol`` with start <= timestamp < end, cut at the current position (no look-ahead)."""
        clean = _clean_symbol(symbol)
        self._check_interval(clean, interval)
        first, stop = to_utc_timestamp(start, "start"), to_utc_timestamp(end, "end")
        bars = self._visible(clean)
        bars = bars[(bars.index >= first) & (bars.index < stop)]
        if bars.empty:
            window = f"{first.isoformat()} and {stop.isoformat()}"
            raise DataProviderError(clean, f"no replay bars between {window}")
        return bars.copy()


# ---------------------------------------------------------------------------------------------------------


def get_data_provider(backend: str = "yfinance", **kwargs: Any) -> DataProvider:
    """A data provider for ``backend``: "yfinance" or "replay" ("ibkr" is not implemented yet).

    Keyword arguments go to the provider's constructor; "replay" needs ``path=`` (a CSV/Parquet file) or
    ``bars=`` (a DataFrame).
    """
    name = backend.strip().lower() if isinstance(backend, str) else backend
    if name == "yfinance":
        return YFinanceProvider(**kwargs)
    if name == "replay":
        path = kwargs.pop("path", None)
        bars = kwargs.pop("bars", None)
        if (path is None) == (bars is None):
            raise ValueError("the replay data provider needs exactly one of path= or bars=")
        if path is not None:
            return ReplayProvider.from_file(path, **kwargs)
        return ReplayProvider(bars, **kwargs)
    if name == "ibkr":
        raise NotImplementedError("IBKR data provider not yet implemented")
    raise ValueError(f"Unknown data provider backend: {backend}")
