"""Consistent copies of a SQLite ledger while other processes keep trading on it (SQLite's online backup API).

``sqlite3.Connection.backup`` copies the database page by page inside one read transaction when asked for
all pages in one step: in WAL mode writers are not blocked, and the copy is the database as of one commit,
never half of a transaction. PostgreSQL ledgers are backed up with the server's own tool, ``pg_dump``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ledger.db.engine import connect_sqlite_read_only, describe_db_error
from ledger.exceptions import DatabaseError, LedgerError


@dataclass(frozen=True)
class BackupResult:
    """Where the copy went, how big it is, and the schema revision it holds."""

    path: Path
    size_bytes: int
    revision: str | None


def sqlite_path(db_url: str) -> Path:
    """The file of a SQLite URL; LedgerError for any other engine or an in-memory database."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        raise LedgerError(
            f"{url.get_backend_name()} ledgers are not backed up by paper-ledger: use the server's tool, "
            f"e.g. pg_dump --format=custom --file=ledger.dump {url.database or 'DBNAME'}"
        )
    if not url.database or url.database == ":memory:":
        raise LedgerError("an in-memory SQLite database cannot be backed up")
    return Path(url.database).expanduser().resolve()


def backup_sqlite(db_url: str, destination: Path) -> BackupResult:
    """Copy the ledger at ``db_url`` to the new file ``destination``, consistently, while it stays in use.

    The copy is written next to ``destination`` under a temporary name, checked with ``PRAGMA
    integrity_check``, then renamed into place, so ``destination`` never holds a partial copy. An existing
    ``destination`` is refused rather than overwritten.
    """
    source_path = sqlite_path(db_url)
    if not source_path.is_file():
        raise DatabaseError(f"no ledger database at {source_path}")
    target = destination.expanduser().resolve()
    if target.exists():
        raise LedgerError(f"{target} already exists; choose a new file for the backup")
    if not target.parent.is_dir():
        raise LedgerError(f"cannot write {target}: directory {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        partial.open("xb").close()  # the destination must take a new file: an error here names it, not the source
    except OSError as exc:
        raise LedgerError(f"cannot write the backup to {target}: {exc.strerror or exc}") from exc
    try:
        # Read-only on the source: a backup must never be able to change the ledger it copies.
        source = connect_sqlite_read_only(source_path)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # all pages in one step: one consistent snapshot
                copy.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file, no -wal beside it
                problems = copy.execute("PRAGMA integrity_check").fetchall()
                if problems != [("ok",)]:
                    raise DatabaseError(f"the backup copy failed its integrity check: {problems[:3]}")
                revision = _revision(copy)
            finally:
                copy.close()
        finally:
            source.close()
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise DatabaseError(f"backup of {source_path} to {target} failed: {describe_db_error(exc)}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, revision)


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else row[0]
