"""Migrations: fresh -> head, round trips, no drift, upgrades that keep every row, racing and crashing openers.

Written against whatever ``migrations/versions`` holds: revisions come from Alembic's ``ScriptDirectory``, so
a new revision is covered the day it lands (an upgrade from every earlier revision, a round trip through it,
a race and a crash from it). "Populated" databases are made at head by the broker (several accounts, fills,
resting and canceled orders, a reset, rejections) and then downgraded to the revision under test, which also
checks that downgrades keep the rows of the tables they do not drop.

A database from a newer version (refused untouched) is in tests/test_bad_environment.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select

from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine
from ledger.db.migrate import alembic_config, current_revision, head_revision, migrate
from ledger.db.models import Base
from tests.conftest import FakeClock, ledger_problems
from tests.workers.harness import ROOT, Child, start_together

# Every test here starts from an empty database (not the suite's migrated template): migrating is the subject.
pytestmark = pytest.mark.empty_database

REVISIONS = [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()][::-1]
HEAD = REVISIONS[-1]
EARLIER = REVISIONS[:-1]  # every revision a populated database can be at and still need upgrading
OPENERS = 4


# -- helpers ---------------------------------------------------------------------------------------------------
def alembic_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``alembic`` command line, from the repository root, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"db_url={db_url}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )


def migrate_to(db_url: str, revision: str) -> None:
    """Upgrade or downgrade the database to ``revision`` ("base" for none) from code, in one transaction."""
    current = revision_of(db_url)
    order = ["base", *REVISIONS]
    action = "upgrade" if order.index(revision) > order.index(current or "base") else "downgrade"
    migrate(get_engine(db_url), action, revision)


def revision_of(db_url: str) -> str | None:
    with get_engine(db_url).connect() as conn:
        return current_revision(conn)


def schema_fingerprint(db_url: str) -> dict[str, Any]:
    """Tables (columns, keys, indexes, constraints) and views as the database reports them."""
    with get_engine(db_url).connect() as conn:
        found = inspect(conn)
        tables = {
            name: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)],
                "primary key": found.get_pk_constraint(name)["constrained_columns"],
                "foreign keys": sorted(
                    (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                    for fk in found.get_foreign_keys(name)
                ),
                "indexes": sorted(
                    (ix["name"], repr(ix["column_names"]), bool(ix["unique"]),
                     repr(sorted((key, str(value)) for key, value in ix.get("dialect_options", {}).items())))
                    for ix in found.get_indexes(name)
                ),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(name)),
                "checks": sorted((ck["name"], ck["sqltext"]) for ck in found.get_check_constraints(name)),
            }
            for name in sorted(found.get_table_names())
        }
        views = {name: found.get_view_definition(name) for name in sorted(found.get_view_names())}
    return {"tables": tables, "views": views}


def table_columns(db_url: str, fingerprint: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Column names of every table but alembic_version (of ``fingerprint`` when given, else of the database)."""
    tables = (fingerprint or schema_fingerprint(db_url))["tables"]
    return {name: [column[0] for column in table["columns"]] for name, table in tables.items() if name != "alembic_version"}


def rows_by_table(db_url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table but alembic_version; with ``columns``, only those tables and columns."""
    columns = table_columns(db_url) if columns is None else columns
    metadata = MetaData()
    with get_engine(db_url).connect() as conn:
        metadata.reflect(conn, only=list(columns))
        return {
            name: sorted(
                (tuple(row) for row in conn.execute(select(*(metadata.tables[name].c[c] for c in wanted)))), key=repr
            )
            for name, wanted in sorted(columns.items())
        }


def populate(db_url: str, clock: FakeClock) -> None:
    """A ledger with history in every trading table, made by the broker at head."""
    for account, cash in (("alice", 100_000), ("bob", 25_000)):
        settings = {"initial_cash": cash, "slippage_bps": 5, "fee_bps": 1, "clock": clock}
        with PaperBroker(db_url=db_url, account=account, **settings) as b:
            b.set_quote("AAPL", bid=150.0, ask=150.10)
            b.set_quote("MSFT", bid=400.0, ask=400.20)
            b.submit_order("AAPL", "BUY", 30, client_order_id=f"{account}-1")
            b.submit_order("MSFT", "BUY", 5)
            b.submit_order("AAPL", "SELL", 10)
            resting = b.submit_order("AAPL", "BUY", 10, "limit", 140.0)
            b.submit_order("AAPL", "SELL", 5, "limit", 170.0)
            b.cancel_order(resting["order_id"])
            with pytest.raises(Exception):
                b.submit_order("AAPL", "BUY", 10**6)  # rejected, recorded
            clock.advance(days=1)
            b.set_quote("AAPL", bid=171.0, ask=171.2)  # fills the resting sell
            if account == "bob":
                b.reset()
                b.set_quote("AAPL", bid=160.0, ask=160.2)
                b.submit_order("AAPL", "BUY", 7)
            assert b.verify() == []


def make_old_database(db_url: str, clock: FakeClock, revision: str) -> None:
    """A database at ``revision``: empty for "base", else populated at head and downgraded."""
    if revision != "base":
        populate(db_url, clock)
        migrate_to(db_url, revision)


# -- fresh, round trip, drift ----------------------------------------------------------------------------------
def test_fresh_database_is_created_at_head_with_exactly_the_models_tables(db_url: str, clock: FakeClock) -> None:
    with PaperBroker(db_url=db_url, initial_cash=1000, clock=clock) as broker:
        assert broker.verify() == []
    assert revision_of(db_url) == head_revision() == HEAD
    tables = set(schema_fingerprint(db_url)["tables"])
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_downgrade_to_base_and_upgrade_to_head_with_the_alembic_cli_round_trips_the_schema(
    db_url: str, clock: FakeClock
) -> None:
    PaperBroker(db_url=db_url, initial_cash=1000, clock=clock).close()
    fresh = schema_fingerprint(db_url)

    down = alembic_cli(db_url, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert set(schema_fingerprint(db_url)["tables"]) <= {"alembic_version"}
    assert schema_fingerprint(db_url)["views"] == {}
    assert revision_of(db_url) is None
    up = alembic_cli(db_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr

    assert schema_fingerprint(db_url) == fresh
    assert revision_of(db_url) == HEAD
    with PaperBroker(db_url=db_url, initial_cash=1000, clock=clock) as broker:
        broker.set_quote("AAPL", bid=150.0, ask=150.10)
        assert broker.submit_order("AAPL", "BUY", 1)["status"] == "filled"
        assert broker.verify() == []


def test_alembic_check_reports_no_drift_between_models_and_migrations(db_url: str) -> None:
    up = alembic_cli(db_url, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    check = alembic_cli(db_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


# -- upgrades keep every row -----------------------------------------------------------------------------------
@pytest.mark.parametrize("start", EARLIER)
def test_upgrade_from_an_earlier_revision_keeps_every_row(db_url: str, clock: FakeClock, start: str) -> None:
    populate(db_url, clock)
    at_head = rows_by_table(db_url)
    fingerprint_at_head = schema_fingerprint(db_url)

    migrate_to(db_url, start)
    assert revision_of(db_url) == start
    kept_columns = table_columns(db_url)
    at_start = rows_by_table(db_url, kept_columns)
    columns_at_head = table_columns(db_url, fingerprint_at_head)
    for table, rows in at_start.items():  # the downgrade dropped tables, never rows of the tables it kept
        if columns_at_head.get(table) == kept_columns[table]:
            assert rows == at_head[table], f"downgrade to {start} changed rows of {table}"

    with PaperBroker(db_url=db_url, account="alice", clock=clock) as broker:  # opening upgrades to head
        assert revision_of(db_url) == HEAD
        after = rows_by_table(db_url, kept_columns)
        new_run = [row for row in after["runs"] if row not in at_start["runs"]]
        assert new_run == [], "opening writes no run: it is written with the broker's first order, fill or cash"
        assert after == at_start, f"upgrade from {start} lost or changed rows"
        assert schema_fingerprint(db_url) == fingerprint_at_head
        assert broker.verify() == []
        assert broker.submit_order("AAPL", "BUY", 1)["status"] == "filled"
    assert ledger_problems(db_url) == []


@pytest.mark.parametrize("start", EARLIER)
def test_downgrade_to_an_earlier_revision_and_back_restores_the_same_schema(
    db_url: str, clock: FakeClock, start: str
) -> None:
    populate(db_url, clock)
    fingerprint = schema_fingerprint(db_url)
    migrate_to(db_url, start)
    migrate_to(db_url, HEAD)
    assert schema_fingerprint(db_url) == fingerprint
    assert ledger_problems(db_url) == []


# -- several processes, and a crash, on an old database ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("start", ["base", *EARLIER])
def test_four_processes_opening_an_old_database_at_once_all_succeed_and_exactly_one_migrates(
    db_url: str, clock: FakeClock, start: str
) -> None:
    make_old_database(db_url, clock, start)
    kept_columns = table_columns(db_url)
    kept = rows_by_table(db_url, kept_columns)

    children = [Child("schema_opener", db_url, f"opener-{index}", "race") for index in range(OPENERS)]
    try:
        start_together(children)
        results = [child.finish() for child in children]
    finally:
        for child in children:
            child.close()

    assert [result["problems"] for result in results] == [[]] * OPENERS
    migrators = [result for result in results if result["migrated"]]
    assert len(migrators) == 1, f"expected exactly one process to migrate, got {results}"
    assert migrators[0]["upgrades"] == ["upgrade head"]
    assert revision_of(db_url) == HEAD
    after = rows_by_table(db_url, kept_columns)
    for table, rows in kept.items():  # the openers added their accounts and runs; nothing older changed
        assert set(rows) <= set(after[table]), f"rows of {table} were lost or changed while the openers raced"
    assert ledger_problems(db_url) == []


@pytest.mark.parametrize("start", ["base", *EARLIER])
def test_process_killed_in_the_middle_of_migrating_leaves_the_old_schema_and_the_next_open_migrates(
    db_url: str, clock: FakeClock, start: str
) -> None:
    make_old_database(db_url, clock, start)
    schema_before = schema_fingerprint(db_url)
    rows_before = rows_by_table(db_url)

    child = Child("schema_opener", db_url, "crasher", "stall")
    try:
        child.expect("migrated-uncommitted")  # the upgrade ran; its transaction is open
        child.kill()
        assert child.proc.returncode == -signal.SIGKILL
    finally:
        child.close()

    assert schema_fingerprint(db_url) == schema_before, "a killed migration left part of its schema behind"
    assert rows_by_table(db_url) == rows_before
    assert revision_of(db_url) == (None if start == "base" else start)
    with PaperBroker(db_url=db_url, account="after-crash", initial_cash=1000, clock=clock) as broker:
        assert revision_of(db_url) == HEAD
        assert broker.verify() == []
    assert ledger_problems(db_url) == []
