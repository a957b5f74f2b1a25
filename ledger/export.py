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
from ledger.exceptions import ExportError
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
    re-run rewrites it byte for byte. All or nothing: every day is first written to a hidden temporary file
    beside its target, and only once all are written are they renamed into place; on failure the temporary
    files are removed, no day file is changed, and the error (:class:`ExportError`) names the day file.
    Files get the usual permissions of a new file (0666 less the umask).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the export directory {out_dir}: {exc.strerror or exc}") from exc
    stmt = fills_stmt(account_id, since=None if since is None else _day_start(since), current_epoch_only=False)
    staged: list[tuple[Path, Path]] = []
    try:
        for day, lines in _group_by_day(stream(conn, stmt)):
            target = out_dir / f"{day.isoformat()}.jsonl"
            staged.append((target, _write_temporary(target, lines)))
        for target, _ in staged:  # what would stop a rename, found before any file is replaced
            if target.is_dir():
                raise ExportError(f"cannot write {target}: a directory of that name is in the way")
        return [_move_into_place(temporary, target) for target, temporary in staged]
    finally:
        for _, temporary in staged:
            temporary.unlink(missing_ok=True)


def _write_temporary(target: Path, lines: Iterator[str]) -> Path:
    """``lines`` written and synced to a new hidden file beside ``target``; ExportError naming ``target``."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    temporary = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a new file of ours honours the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            _write_lines(handle, lines)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _move_into_place(temporary: Path, target: Path) -> Path:
    try:
        os.replace(temporary, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc} (the day files before it in date "
                          "order were written)") from exc
    return target


def _umask() -> int:
    """The process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def _write_lines(handle: IO[str], lines: Iterator[str]) -> None:
    for line in lines:
        handle.write(line)
