"""Read-only SQL on a ledger, for audits: a connection that cannot write, on SQLite and on PostgreSQL.

The guard is the connection, not a parse of the statement:

- SQLite: the file is opened with a ``file:...?mode=ro`` URI (``immutable=1`` in a read-only directory, see
  ``connect_sqlite_read_only``), so the driver itself refuses every write; on top, ``PRAGMA query_only`` is on
  and an authorizer denies ATTACH (which could create files) and pragmas that set the journal mode, turn
  ``query_only`` off and the like. The driver runs one statement per call.
- PostgreSQL: the session starts with ``default_transaction_read_only=on`` and its transactions are
  ``READ ONLY``; the statement's transaction is always rolled back, and the statement is sent prepared,
  which the server refuses to do for more than one command.

Either way a write (UPDATE, DELETE, DROP, ...) fails with :class:`ReadOnlyViolation` and changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ledger.backup import sqlite_path
from ledger.db.engine import connect_sqlite_read_only
from ledger.exceptions import DatabaseError, LedgerError

_READ_ONLY_SQLSTATE = "25006"  # PostgreSQL: read_only_sql_transaction


class ReadOnlyViolation(LedgerError):
    """The statement tried to change the database through the read-only SQL console."""


class QueryError(LedgerError):
    """The database refused the statement (syntax, unknown table, ...)."""


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one statement."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_read_only(db_url: str, statement: str) -> QueryResult:
    """Run one SQL statement on a read-only connection to the ledger at ``db_url``."""
    if not statement.strip():
        raise ValueError("the SQL statement is empty")
    backend = make_url(db_url).get_backend_name()
    with _read_only_cursor(db_url) as (cursor, execute):
        try:
            execute(statement)
            columns = [column[0] for column in cursor.description or ()]
            rows = [tuple(row) for row in cursor.fetchall()] if columns else []
        except Exception as exc:  # the drivers' error classes differ; classify by what they say
            raise _classify(exc, backend) from exc
    return QueryResult(columns, rows)


@contextmanager
def _read_only_cursor(db_url: str) -> Iterator[tuple[Any, Any]]:
    if make_url(db_url).get_backend_name() == "sqlite":
        with _sqlite_cursor(db_url) as opened:
            yield opened
    else:
        with _server_cursor(db_url) as opened:
            yield opened


@contextmanager
def _sqlite_cursor(db_url: str) -> Iterator[tuple[Any, Any]]:
    conn = connect_sqlite_read_only(sqlite_path(db_url))
    try:
        conn.set_authorizer(_sqlite_authorizer)
        cursor = conn.cursor()
        yield cursor, cursor.execute
    finally:
        conn.close()


# Pragmas that change the file or the connection's guard when given a value. The read-only file refuses most
# of them anyway, but with misleading errors ("disk I/O error" for journal_mode): denied here, they are
# reported as what they are, a refused write.
_SETTING_PRAGMAS = frozenset({
    "application_id", "auto_vacuum", "incremental_vacuum", "journal_mode", "journal_size_limit", "locking_mode",
    "max_page_count", "page_size", "query_only", "schema_version", "user_version", "wal_checkpoint",
    "writable_schema",
})


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _SETTING_PRAGMAS and arg2 is not None:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@contextmanager
def _server_cursor(db_url: str) -> Iterator[tuple[Any, Any]]:
    engine = create_engine(
        db_url, poolclass=NullPool, connect_args={"options": "-c default_transaction_read_only=on"}
    )
    try:
        raw = engine.raw_connection()
    except Exception as exc:
        raise DatabaseError(f"cannot connect to {make_url(db_url).render_as_string(hide_password=True)}: {exc}") from exc
    try:
        cursor = raw.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        raw.commit()
        single = engine.dialect.driver == "psycopg"

        def execute(statement: str) -> None:
            # prepare=True: the server refuses a prepared statement holding several commands.
            if single:
                cursor.execute(statement, prepare=True)
            else:
                cursor.execute(statement)

        yield cursor, execute
    finally:
        try:
            raw.rollback()  # whatever ran, nothing of it is kept
        finally:
            raw.close()
            engine.dispose()


def _classify(exc: Exception, backend: str) -> LedgerError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    read_only = getattr(exc, "sqlstate", None) == _READ_ONLY_SQLSTATE or (
        backend == "sqlite" and ("readonly" in message.lower() or "not authorized" in message.lower())
    )
    if read_only:
        return ReadOnlyViolation(f"refused: `sql` runs on a read-only connection and nothing was changed ({message})")
    return QueryError(f"{backend} refused the statement: {message}")
