"""JSONL export: an export view of the fills table in the seed's daily log format, never the record itself."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from ledger.book.records import fill_record
from ledger.queries import fills_stmt, stream

SEED_LOG_KEYS = (
    "order_id", "timestamp", "symbol", "side", "qty", "fill_price", "notional", "fee", "slippage_bps", "fee_bps",
)


def seed_log_line(fill: dict[str, Any]) -> str:
    """One fill as the seed's JSONL record (same keys, same order)."""
    return json.dumps({key: fill[key] for key in SEED_LOG_KEYS}) + "\n"


def _day_start(since: datetime) -> datetime:
    return datetime.combine(since.astimezone(UTC).date(), time(0), UTC)


def export_jsonl(conn: Connection, account_id: int, out_dir: Path, since: datetime | None = None) -> list[Path]:
    """Write one ``YYYY-MM-DD.jsonl`` per UTC day of the account's fills (all epochs), streamed.

    ``since`` selects whole days (from the day containing it), so a file is always a complete day and a
    re-run rewrites it byte for byte. Each file is written to a temporary name and renamed into place.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stmt = fills_stmt(account_id, since=None if since is None else _day_start(since), current_epoch_only=False)
    written: list[Path] = []
    for day, lines in _group_by_day(stream(conn, stmt)):
        written.append(_write_atomic(out_dir / f"{day.isoformat()}.jsonl", lines))
    return written


def _group_by_day(rows: Iterator[Any]) -> Iterator[tuple[date, Iterator[str]]]:
    """Consecutive rows (ordered by time) grouped by UTC day, each group consumed lazily."""
    pending: list[Any] = []
    iterator = iter(rows)

    def take_day(first: Any) -> Iterator[str]:
        day = first.filled_at.date()
        yield seed_log_line(fill_record(first._mapping))
        for row in iterator:
            if row.filled_at.date() != day:
                pending.append(row)
                return
            yield seed_log_line(fill_record(row._mapping))

    first = next(iterator, None)
    while first is not None:
        yield first.filled_at.date(), take_day(first)
        first = pending.pop() if pending else None


def _write_atomic(path: Path, lines: Iterator[str]) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            _write_lines(handle, lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _write_lines(handle: IO[str], lines: Iterator[str]) -> None:
    for line in lines:
        handle.write(line)
