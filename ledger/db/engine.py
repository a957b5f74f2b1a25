"""Database URLs, engines with the ledger's SQLite pragmas, and the two kinds of transaction.

SQLite: WAL journal, ``busy_timeout``, foreign keys on, and the driver's own implicit transactions turned off
so that we emit ``BEGIN`` ourselves: ``BEGIN IMMEDIATE`` for writes (the write lock is taken up front, so
two writers queue on ``busy_timeout`` instead of failing on lock upgrade) and a deferred ``BEGIN`` for reads.
PostgreSQL: plain transactions; the use cases lock the account row with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from ledger.config import get_cfg
from ledger.constants import DEFAULT_DB_FILE
from ledger.exceptions import DatabaseError

_BEGIN_KEY = "ledger_begin"
_PG_READ_ONLY_TRANSACTION = "25006"  # SQLSTATE read_only_sql_transaction (psycopg files it under InternalError)
_engines: dict[str, Engine] = {}
_read_only_engines: dict[str, Engine] = {}


def resolve_db_url(db_url: str | os.PathLike[str] | None = None) -> str:
    """Explicit URL > ``LEDGER_DATABASE_URL`` > config ``database_url`` > ``sqlite:///paper_ledger.db`` (cwd).

    A bare filesystem path (text or ``os.PathLike``) is accepted and taken as a SQLite file. An explicit value of
    another type is a TypeError and an empty one a ValueError: neither may silently pick some other database.
    """
    if db_url is not None:
        if isinstance(db_url, os.PathLike):
            db_url = os.fspath(db_url)
        if not isinstance(db_url, str):
            raise TypeError(f"db_url must be a URL or file path (str), got {type(db_url).__name__}")
        if not db_url.strip():
            raise ValueError("db_url is empty; pass a URL or file path, or None for the default")
    url = get_cfg("database_url", explicit=db_url)
    if not url:
        url = f"sqlite:///{Path.cwd() / DEFAULT_DB_FILE}"
    url = str(url)
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def get_engine(db_url: str) -> Engine:
    """One engine per URL per process (engines own pools; making them per broker would waste connections)."""
    engine = _engines.get(db_url)
    if engine is None:
        engine = _create_engine(db_url)
        _engines[db_url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection this process holds (tests and forked children use it)."""
    for engine in (*_engines.values(), *_read_only_engines.values()):
        engine.dispose()
    _engines.clear()
    _read_only_engines.clear()


def get_read_only_engine(db_url: str) -> Engine:
    """An engine whose connections cannot write, for the commands that only read (cached per URL).

    SQLite: each connection is :func:`connect_sqlite_read_only` (no journal-mode switch, no file created);
    PostgreSQL: every session has ``default_transaction_read_only=on``. Nothing here migrates.
    """
    engine = _read_only_engines.get(db_url)
    if engine is None:
        engine = _create_read_only_engine(db_url)
        _read_only_engines[db_url] = engine
    return engine


def _create_read_only_engine(db_url: str) -> Engine:
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        raise DatabaseError(f"invalid database URL {db_url!r}: {exc}") from exc
    if url.get_backend_name() != "sqlite":
        try:
            return create_engine(db_url, poolclass=NullPool,
                                 connect_args={"options": "-c default_transaction_read_only=on"})
        except (ArgumentError, ImportError) as exc:
            raise DatabaseError(f"cannot use database URL {url.render_as_string(hide_password=True)}: {exc}") from exc
    database = _sqlite_file(url.database, url.query)
    if not database or database == ":memory:":
        raise DatabaseError("an in-memory SQLite database cannot hold a ledger; give a file path")
    path = Path(database).expanduser().resolve()
    timeout = int(get_cfg("sqlite_busy_timeout_ms")) / 1000
    engine = create_engine(db_url, poolclass=NullPool, creator=lambda: connect_sqlite_read_only(path, timeout))

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # a deferred read transaction: one snapshot for the whole command

    return engine


def connect_sqlite_read_only(path: Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A driver connection to the SQLite file ``path`` that cannot write it (``file:...?mode=ro``).

    A reader of a WAL database needs the shared-memory index ``-shm`` beside it. When that cannot be created
    (a read-only directory) and there is no ``-wal`` file (every commit is in the main file), the file is
    opened with ``immutable=1`` instead: SQLite then reads it without any lock, which is only correct while
    nobody writes to it, the one way to read a ledger in a directory we may not write. With a ``-wal`` file
    present that fallback would miss its commits, so it is refused.
    """
    if not path.is_file():
        raise DatabaseError(f"no ledger database at {path}")
    uri = path.as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the first read opens the WAL index
        except sqlite3.OperationalError as exc:
            conn.close()
            if "readonly" not in str(exc).lower():
                raise
            if path.with_name(path.name + "-wal").exists():
                raise DatabaseError(
                    f"cannot read {path}: its WAL index ({path.name}-shm) cannot be created in a read-only "
                    f"directory while {path.name}-wal holds commits; ask a user who may write there to run a "
                    "command on it (or copy it with `paper-ledger db backup`)"
                ) from exc
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path} read-only: {describe_db_error(exc)}") from exc
    conn.isolation_level = None  # we emit BEGIN ourselves (see the engine's begin event)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _create_engine(db_url: str) -> Engine:
    try:
        url = make_url(db_url)
    except ArgumentError as exc:
        raise DatabaseError(f"invalid database URL {db_url!r}: {exc}") from exc
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(db_url, _sqlite_file(url.database, url.query))
    try:
        return create_engine(db_url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise DatabaseError(f"cannot use database URL {url.render_as_string(hide_password=True)}: {exc}") from exc


def _sqlite_file(database: str | None, query: Mapping[str, object]) -> str | None:
    """The file a SQLite URL names; with ``?uri=true`` the database part is a ``file:`` URI (e.g. ``?mode=ro``)."""
    if database and str(query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        return unquote(urlsplit(database).path) or None
    return database


def _create_sqlite_engine(db_url: str, database: str | None) -> Engine:
    if not database or database == ":memory:":
        raise DatabaseError("an in-memory SQLite database cannot hold a ledger; give a file path")
    parent = Path(database).expanduser().resolve().parent
    if not parent.is_dir():
        raise DatabaseError(f"cannot open ledger {database}: directory {parent} does not exist")
    busy_timeout_ms = int(get_cfg("sqlite_busy_timeout_ms"))
    synchronous = str(get_cfg("sqlite_synchronous")).upper()
    if synchronous not in ("NORMAL", "FULL", "EXTRA", "OFF"):
        raise DatabaseError(f"sqlite_synchronous must be NORMAL, FULL, EXTRA or OFF, got {synchronous!r}")
    engine = create_engine(
        db_url,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Autocommit at the driver level: pysqlite's implicit BEGIN would defer the write lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Switching to WAL rewrites the file header: never do it to another application's database,
            # which ensure_schema is about to refuse untouched.
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode[0]).lower() != "wal" and not _holds_foreign_tables(cursor):
                mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
                if str(mode[0]).lower() != "wal":
                    raise sqlite3.OperationalError(f"cannot switch {database} to WAL (journal_mode={mode[0]})")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop(_BEGIN_KEY, "BEGIN"))

    return engine


def _holds_foreign_tables(cursor: sqlite3.Cursor) -> bool:
    """True when the file has tables but no Alembic version table: not a paper-ledger database."""
    names = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return bool(names - {"sqlite_sequence", "sqlite_stat1"}) and "alembic_version" not in names


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """A read-write transaction holding the database write lock from its first statement (SQLite)."""
    if conn.in_transaction():
        raise RuntimeError("write_transaction opened inside another transaction")
    if is_sqlite(conn):
        conn.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"
    with translate_db_errors(conn), _transaction(conn):
        yield conn


@contextmanager
def read_transaction(conn: Connection) -> Iterator[Connection]:
    """A short read transaction: one consistent snapshot, ended at once so no stale snapshot is kept."""
    if conn.in_transaction():
        raise RuntimeError("read_transaction opened inside another transaction")
    with translate_db_errors(conn), _transaction(conn):
        yield conn


@contextmanager
def _transaction(conn: Connection) -> Iterator[Connection]:
    """``conn.begin()``, plus a rollback at the driver when the block fails.

    When the failure happens at commit (an error or KeyboardInterrupt in the commit itself, or in a
    ``commit`` event), SQLAlchemy considers the transaction over and skips its rollback, but the driver
    connection is still inside it: on SQLite it keeps the write lock, on PostgreSQL the account row lock,
    and the next transaction on this connection would commit the failed one's rows after all.
    """
    try:
        with conn.begin():
            yield conn
    except BaseException:
        _roll_back_driver(conn)
        raise


def _roll_back_driver(conn: Connection) -> None:
    """Roll back whatever the driver connection still has open; throw the connection away if that fails."""
    if conn.closed or conn.invalidated:
        return
    try:
        conn.connection.driver_connection.rollback()  # a no-op when nothing is open
    except Exception:  # noqa: BLE001 - a connection we cannot roll back must not be reused
        conn.invalidate()


_DRIVER_MESSAGES = (
    ("readonly", "the database file is read-only"),
    ("disk is full", "the disk (or the database's max_page_count) is full; the transaction was rolled back"),
    ("file is not a database", "the file is not a SQLite database (corrupt or foreign file)"),
    ("malformed", "the database file is corrupt"),
    ("unable to open", "the database file cannot be opened"),
    ("database is locked", "the database stayed locked by another writer longer than busy_timeout"),
    # PostgreSQL
    ("read-only transaction", "the database is read-only for this session (read-only setting or standby)"),
    ("lock timeout", "a row stayed locked by another session longer than lock_timeout"),
)


def describe_db_error(exc: BaseException) -> str:
    """A one-line, human explanation of a driver error."""
    raw = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = raw.lower()
    for needle, meaning in _DRIVER_MESSAGES:
        if needle in lowered:
            return f"{meaning} ({raw})"
    return raw


@contextmanager
def translate_db_errors(conn: Connection | Engine | None = None) -> Iterator[None]:
    """Turn operational driver errors (I/O, locks, corruption) into DatabaseError; leave integrity errors alone."""
    try:
        yield
    except OperationalError as exc:
        where = ""
        if conn is not None:
            where = f" [{conn.engine.url.render_as_string(hide_password=True)}]"
        raise DatabaseError(describe_db_error(exc) + where) from exc
    except DBAPIError as exc:
        corrupt = isinstance(exc.orig, sqlite3.DatabaseError) and not isinstance(exc.orig, sqlite3.IntegrityError)
        read_only = getattr(exc.orig, "sqlstate", None) == _PG_READ_ONLY_TRANSACTION
        if exc.connection_invalidated or corrupt or read_only:
            raise DatabaseError(describe_db_error(exc)) from exc
        raise
