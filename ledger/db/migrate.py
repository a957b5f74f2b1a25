"""Alembic run from code: bring a ledger database to the code's schema head, or refuse a newer one untouched.

The migrations live in ``migrations/`` at the repository root and ship inside the wheel as
``ledger/_migrations`` so an installed package can create and upgrade databases from any directory.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from ledger.db.engine import is_sqlite, translate_db_errors
from ledger.exceptions import DatabaseError, SchemaTooNewError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported only where a migration runs or an unknown revision is judged: importing it costs about
# a third of a second, and opening a ledger already at head (every command, every broker) needs only the
# head revision, read from the migration files by _declared_revisions.

# Arbitrary constant key for PostgreSQL's advisory lock taken while migrating ("PLEDGER" in hex-ish).
_PG_MIGRATION_LOCK = 0x504C45444745


def migrations_dir() -> Path:
    """The Alembic script directory: packaged copy first, else the source checkout's ``migrations/``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(f"paper-ledger's migrations are missing (looked in {here / '_migrations'})")


def alembic_config(db_url: str | None = None) -> Config:
    """An Alembic Config pointing at the ledger's migrations, usable from any working directory."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if db_url:
        cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The code's head revision: the one revision no other migration names as its ``down_revision``.

    Read from the literal ``revision`` / ``down_revision`` assignments of the migration files (as Alembic's
    generated scripts write them) without importing Alembic; a test checks it against Alembic's own head.
    """
    declared = _declared_revisions()
    parents = {parent for parent_list in declared.values() for parent in parent_list}
    heads = sorted(set(declared) - parents)
    if len(heads) != 1:
        raise DatabaseError(f"the code's migrations have {len(heads)} heads; expected exactly one")
    return heads[0]


def _declared_revisions() -> dict[str, tuple[str, ...]]:
    """revision -> its down revisions, from each migration file's module-level assignments."""
    declared: dict[str, tuple[str, ...]] = {}
    for script in sorted((migrations_dir() / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                values[target.id] = ast.literal_eval(node.value)
        if "revision" not in values:
            raise DatabaseError(f"migration {script.name} declares no revision")
        down = values.get("down_revision")
        declared[str(values["revision"])] = () if down is None else tuple(down) if isinstance(down, (tuple, list)) else (str(down),)
    return declared


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision; None for a database Alembic has never touched."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise DatabaseError(f"the database has several schema heads {rows}; it was not made by paper-ledger")
    return rows[0] if rows else None


def _check_known(revision: str | None, conn: Connection) -> None:
    if revision is None:
        tables = set(inspect(conn).get_table_names())
        if tables:
            raise DatabaseError(
                f"the database holds tables {sorted(tables)[:5]} but no ledger schema version; "
                "it is not a paper-ledger database"
            )
        return
    if not is_known_revision(revision):
        raise SchemaTooNewError(f"{made_by_newer(revision)}. The database was not modified.")


def is_known_revision(revision: str) -> bool:
    """True when ``revision`` is one of this paper-ledger's migrations (False: a newer paper-ledger made it)."""
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - Alembic raises several types for an unknown id
        return False


def made_by_newer(revision: str) -> str:
    """What to tell the user about a database whose revision this paper-ledger does not know."""
    return (f"the database was made by a newer paper-ledger (revision {revision}, this one knows up to "
            f"{head_revision()}); upgrade paper-ledger")


def check_schema_at_head(conn: Connection, where: str) -> str:
    """The head revision when the ledger behind ``conn`` is at it; otherwise an error saying what to do.

    For the commands that only read: they never migrate (a read must not change the file), so an empty
    database is "no ledger here", an older schema asks for ``paper-ledger db upgrade``, and a newer one
    (``SchemaTooNewError``) asks for a newer paper-ledger. ``where`` names the database in messages.
    """
    head = head_revision()
    revision = current_revision(conn)
    if revision == head:
        return head
    _check_known(revision, conn)  # a foreign or newer database: its own message
    if revision is None:
        raise DatabaseError(
            f"no ledger here ({where} holds no ledger schema): create one with `paper-ledger account create "
            "NAME --cash N` or `paper-ledger db upgrade`"
        )
    raise DatabaseError(
        f"the ledger's schema is at revision {revision}, this paper-ledger needs {head}: run `paper-ledger db upgrade`"
    )


def ensure_schema(engine: Engine) -> str:
    """Create or upgrade the schema to head; refuse a newer database untouched. Returns the revision.

    The common case (already at head) costs one SELECT. Upgrading happens inside one write transaction
    holding the database lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL advisory lock), and the revision is
    read again under that lock, so of several processes opening an old database exactly one migrates.
    """
    head = head_revision()
    with translate_db_errors(engine), engine.connect() as conn:
        with conn.begin():
            revision = current_revision(conn)
            if revision is not None and revision != head:
                _check_known(revision, conn)  # a newer schema is refused before any lock is taken
        if revision == head:
            return head
        # "No version but tables" is only judged under the lock: on PostgreSQL each statement of a READ
        # COMMITTED transaction sees a new snapshot, so another process's migration committing between
        # the version read and the table listing would look like a foreign database.
        if is_sqlite(conn):
            conn.info["ledger_begin"] = "BEGIN IMMEDIATE"
        with foreign_keys_suspended(conn), conn.begin():
            if not is_sqlite(conn):
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            revision = current_revision(conn)
            if revision != head:
                _check_known(revision, conn)
                run_alembic(conn, "upgrade", "head")
                check_foreign_keys(conn)
        return head


@contextmanager
def foreign_keys_suspended(conn: Connection) -> Iterator[None]:
    """SQLite: foreign keys off around a migration (outside its transaction), as SQLite's ALTER TABLE guide asks.

    A batch migration rebuilds a table (create new, copy, drop old, rename). With foreign keys on, dropping a
    table that other rows reference fails or leaves deferred violations that rename does not clear. The
    migration calls ``check_foreign_keys`` before it commits, so nothing dangling is ever committed.
    No-op on PostgreSQL, which alters tables in place.
    """
    if not is_sqlite(conn):
        yield
        return
    driver = conn.connection.driver_connection  # the driver itself: SQLAlchemy would BEGIN first, and the
    driver.execute("PRAGMA foreign_keys = OFF")  # pragma is a no-op inside a transaction
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def check_foreign_keys(conn: Connection) -> None:
    """SQLite: refuse to commit a migration that left a row referencing a missing one."""
    if not is_sqlite(conn):
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise DatabaseError(f"the migration left {len(broken)} rows with dangling references, e.g. {tuple(broken[0])}; "
                            "it was rolled back")


def migrate(engine: Engine, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade REVISION`` in a transaction of its own (tools and tests; opening uses
    ``ensure_schema``)."""
    with translate_db_errors(engine), engine.connect() as conn, foreign_keys_suspended(conn), conn.begin():
        run_alembic(conn, action, revision)
        check_foreign_keys(conn)


def run_alembic(conn: Connection, action: str, revision: str) -> None:
    """Run ``alembic upgrade|downgrade REVISION`` on an open connection (inside the caller's transaction)."""
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    getattr(command, action)(cfg, revision)
