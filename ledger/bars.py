"""Historical bars cached in the ledger database, so a replay re-run sees exactly the bars its first run saw.

:class:`DatabaseBarCache` implements the ``BarCache`` protocol of ``ledger.brokers.data_provider`` on two
tables: ``bars`` (one row per symbol, interval and bar time; prices as exact millionths rounded to six
decimals, volume in whole units) and ``bar_ranges`` (the time ranges the cache holds completely).

Why ranges: a gap between bars may be a weekend, a holiday or a range nobody fetched, and the bars alone
cannot tell which. The provider trusts a non-empty answer without asking the source, so ``get_bars`` answers
only when one recorded range contains the whole request. The range recorded by ``put_bars`` is the window of
the ``get_bars`` miss that came just before it on the same thread for the same symbol and interval (the
provider's flow: ask the cache, fetch exactly that window, store what came back); a ``put_bars`` without such
a miss records only the span from its first to its last bar.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select

from ledger.book.validation import require_utc
from ledger.brokers.data_provider import OHLCV_COLUMNS
from ledger.db.engine import (
    get_engine,
    read_transaction,
    resolve_db_url,
    translate_db_errors,
    write_transaction,
)
from ledger.db.migrate import ensure_schema
from ledger.db.models import SYMBOL_LENGTH, Bar, BarRange
from ledger.money import round_amount, to_decimal

bars = Bar.__table__
bar_ranges = BarRange.__table__

_PRICE_COLUMNS = ("open", "high", "low", "close")
_INTERVAL_LENGTH = bars.c.interval.type.length
_SOURCE_LENGTH = bars.c.source.type.length
_BAR_TIME_DTYPE = "datetime64[us, UTC]"  # the ledger stores microseconds


class DatabaseBarCache:
    """A ``BarCache`` on the ledger database: ``get_bars`` / ``put_bars`` over the ``bars`` table.

    ``db``: a SQLAlchemy URL (None: the library's default resolution) or an Engine. The schema is brought
    to head on construction, as ``PaperBroker`` does. ``source`` is recorded on every stored bar.
    """

    def __init__(self, db: str | Engine | None = None, *, source: str = "yfinance"):
        if not isinstance(source, str) or not 0 < len(source) <= _SOURCE_LENGTH:
            raise ValueError(f"source must be 1-{_SOURCE_LENGTH} characters, got {source!r}")
        self._engine = db if isinstance(db, Engine) else get_engine(resolve_db_url(db))
        ensure_schema(self._engine)
        self.source = source
        self._lock = threading.Lock()
        self._misses: dict[tuple[int, str, str], tuple[datetime, datetime]] = {}

    def get_bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """Bars with start <= timestamp < end when a stored range holds that whole window, else None.

        The frame is indexed by a UTC ``DatetimeIndex`` named ``timestamp`` (microseconds) with float64
        columns ``open, high, low, close, volume`` (volume NaN where the source had none).
        """
        _check_key(symbol, interval)
        window = require_utc(start, "start"), require_utc(end, "end")
        if window[1] <= window[0]:
            raise ValueError(f"end ({window[1].isoformat()}) must be after start ({window[0].isoformat()})")
        with translate_db_errors(self._engine), self._engine.connect() as conn, read_transaction(conn):
            rows = _cached_rows(conn, symbol, interval, *window)
        if rows is None:
            with self._lock:
                self._misses[(threading.get_ident(), symbol, interval)] = window
            return None
        return _frame(rows)

    def put_bars(self, symbol: str, interval: str, frame: pd.DataFrame) -> None:
        """Store bars just fetched, replacing every cached bar of the range they cover, in one transaction.

        ``frame``: a UTC-aware ``DatetimeIndex`` and float columns ``open, high, low, close, volume``.
        Prices are rounded half-even to six decimals, volume to whole units; a missing price is an error.
        """
        _check_key(symbol, interval)
        fetched_at = datetime.now(UTC)
        rows = _bar_rows(symbol, interval, frame, self.source, fetched_at)
        with self._lock:
            window = self._misses.pop((threading.get_ident(), symbol, interval), None)
        stamps = [row["ts"] for row in rows]
        if window is not None and all(window[0] <= stamp < window[1] for stamp in stamps):
            covered = window
        elif stamps:
            covered = (stamps[0], stamps[-1] + timedelta(microseconds=1))
        else:
            return  # no bars and no window: nothing learned
        with translate_db_errors(self._engine), self._engine.connect() as conn, write_transaction(conn):
            conn.execute(
                delete(bars).where(
                    bars.c.symbol == symbol,
                    bars.c.interval == interval,
                    bars.c.ts >= covered[0],
                    bars.c.ts < covered[1],
                )
            )
            if rows:
                conn.execute(insert(bars), rows)
            _record_range(conn, symbol, interval, covered, fetched_at)


def _check_key(symbol: object, interval: object) -> None:
    if not isinstance(symbol, str) or not 0 < len(symbol) <= SYMBOL_LENGTH:
        raise ValueError(f"symbol must be 1-{SYMBOL_LENGTH} characters, got {symbol!r}"[:200])
    if not isinstance(interval, str) or not 0 < len(interval) <= _INTERVAL_LENGTH:
        raise ValueError(f"interval must be 1-{_INTERVAL_LENGTH} characters, got {interval!r}"[:200])


def _cached_rows(
    conn: Connection, symbol: str, interval: str, start: datetime, end: datetime
) -> list[Any] | None:
    """The bars of the window when one recorded range contains it; None otherwise."""
    covering = conn.execute(
        select(bar_ranges.c.range_start).where(
            bar_ranges.c.symbol == symbol,
            bar_ranges.c.interval == interval,
            bar_ranges.c.range_start <= start,
            bar_ranges.c.range_end >= end,
        )
    ).first()
    if covering is None:
        return None
    return list(
        conn.execute(
            select(bars.c.ts, *(bars.c[f"{name}_e6"] for name in _PRICE_COLUMNS), bars.c.volume)
            .where(bars.c.symbol == symbol, bars.c.interval == interval, bars.c.ts >= start, bars.c.ts < end)
            .order_by(bars.c.ts)
        )
    )


def _record_range(
    conn: Connection, symbol: str, interval: str, covered: tuple[datetime, datetime], fetched_at: datetime
) -> None:
    """Add ``covered`` to the complete ranges, merged with every range it overlaps or touches."""
    key = (bar_ranges.c.symbol == symbol, bar_ranges.c.interval == interval)
    neighbours = conn.execute(
        select(bar_ranges.c.range_start, bar_ranges.c.range_end).where(
            *key, bar_ranges.c.range_start <= covered[1], bar_ranges.c.range_end >= covered[0]
        )
    ).all()
    start = min([covered[0], *(row.range_start for row in neighbours)])
    end = max([covered[1], *(row.range_end for row in neighbours)])
    if neighbours:
        starts = [row.range_start for row in neighbours]
        conn.execute(delete(bar_ranges).where(*key, bar_ranges.c.range_start.in_(starts)))
    conn.execute(
        insert(bar_ranges),
        {
            "symbol": symbol,
            "interval": interval,
            "range_start": start,
            "range_end": end,
            "fetched_at": fetched_at,
        },
    )


def _bar_rows(
    symbol: str, interval: str, frame: pd.DataFrame, source: str, fetched_at: datetime
) -> list[dict[str, Any]]:
    """The frame as ``bars`` rows, oldest first; ValueError naming the symbol and bar if one is unusable."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"bars for {symbol} must be a DataFrame, got {type(frame).__name__}")
    missing = [name for name in OHLCV_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"bars for {symbol} lack column(s) {', '.join(missing)}")
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError(f"bars for {symbol} need a timezone-aware DatetimeIndex (UTC)")
    if frame.index.has_duplicates:
        raise ValueError(f"bars for {symbol} repeat a timestamp")
    ordered = frame.sort_index()
    stamps = ordered.index.tz_convert(UTC)
    columns = [ordered[name].to_numpy() for name in OHLCV_COLUMNS]
    rows = []
    for stamp, *bar in zip(stamps, *columns):
        when = stamp.to_pydatetime()
        values = dict(zip(OHLCV_COLUMNS, bar))
        row: dict[str, Any] = {
            "symbol": symbol,
            "interval": interval,
            "ts": when,
            "volume": _volume(values["volume"], symbol, when),
            "source": source,
            "fetched_at": fetched_at,
        }
        for name in _PRICE_COLUMNS:
            row[f"{name}_e6"] = _price(values[name], symbol, when, name)
        rows.append(row)
    return rows


def _price(value: object, symbol: str, when: datetime, name: str) -> Decimal:
    what = f"{name} of the {symbol} bar at {when.isoformat()}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{what} is missing")
    return round_amount(to_decimal(value, what))


def _volume(value: object, symbol: str, when: datetime) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    volume = to_decimal(value, f"volume of the {symbol} bar at {when.isoformat()}")
    return int(volume.to_integral_value(ROUND_HALF_EVEN))


def _frame(rows: list[Any]) -> pd.DataFrame:
    index = pd.DatetimeIndex([row.ts for row in rows], dtype=_BAR_TIME_DTYPE, name="timestamp")
    columns = {name: [float(getattr(row, f"{name}_e6")) for row in rows] for name in _PRICE_COLUMNS}
    columns["volume"] = [math.nan if row.volume is None else float(row.volume) for row in rows]
    return pd.DataFrame(columns, index=index, dtype="float64")
