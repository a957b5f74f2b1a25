"""Shared fixtures: every test runs against a fresh ledger on SQLite and on a real PostgreSQL server.

Engines come from ``LEDGER_TEST_ENGINES`` (default ``sqlite,postgresql``). Without PostgreSQL binaries the
PostgreSQL half is skipped with a reason, except when ``LEDGER_REQUIRE_POSTGRES=1`` (set by .ci/run), where
it fails instead. The fixture also points ``LEDGER_DATABASE_URL`` at the test's database and runs the test
in its own temporary working directory, so code that uses the defaults (like the seed tests) is isolated.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.pg_server import PostgresServer, find_pg_bin

ENGINES = [name.strip() for name in os.environ.get("LEDGER_TEST_ENGINES", "sqlite,postgresql").split(",") if name.strip()]
REQUIRE_POSTGRES = os.environ.get("LEDGER_REQUIRE_POSTGRES") == "1"
# Test-harness switches that must reach child processes; the library itself reads none of them.
# LEDGER_UNSAFE_DEFERRED_BEGIN=1 makes tests/workers/concurrent_trader.py drop the up-front write lock
# (to show by hand that tests/test_concurrency.py fails without it).
_KEPT_ENVIRONMENT = (
    "LEDGER_TEST_ENGINES", "LEDGER_REQUIRE_POSTGRES", "LEDGER_PG_BIN", "LEDGER_UNSAFE_DEFERRED_BEGIN",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines(*names): run the test only on these database engines")
    config.addinivalue_line(
        "markers", "empty_database: db_url is an empty database (no schema), not a copy of the migrated template")
    if REQUIRE_POSTGRES and "postgresql" not in ENGINES:
        # CI must not be able to drop the PostgreSQL half by narrowing the engine list.
        raise pytest.UsageError(f"LEDGER_REQUIRE_POSTGRES=1 but LEDGER_TEST_ENGINES={','.join(ENGINES)!r}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect engine-specific tests (``@pytest.mark.engines("sqlite")``) on the other engines."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("engines")
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine_name") if callspec else None
        (dropped if marker and engine and engine not in marker.args else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        message = "no PostgreSQL binaries (initdb, pg_ctl) found: PostgreSQL tests not run"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " but LEDGER_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def ledger_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Per engine, a database migrated to head once per session (filled in on first use), which each test's
    database is copied from: the migrations then run once, not once per test (they are tested on their own,
    in tests/test_migrations.py, from empty databases)."""
    return {}


def _migrated(url: str) -> None:
    from ledger.db.engine import dispose_engines, get_engine
    from ledger.db.migrate import ensure_schema

    ensure_schema(get_engine(url))
    dispose_engines()


@pytest.fixture
def db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh ledger database URL for this test on this engine: a copy of a database migrated to the head
    revision and holding no account, or an empty one (no schema) for tests marked ``empty_database``."""
    from ledger.db.engine import dispose_engines

    empty = request.node.get_closest_marker("empty_database") is not None
    templates: dict[str, str] = request.getfixturevalue("ledger_templates")
    if engine_name == "sqlite":
        path = tmp_path / "ledger.db"
        if not empty:
            if "sqlite" not in templates:
                template = request.getfixturevalue("tmp_path_factory").mktemp("template") / "ledger.db"
                _migrated(f"sqlite:///{template}")
                templates["sqlite"] = str(template)
            shutil.copyfile(templates["sqlite"], path)  # closed, checkpointed: no -wal file to carry
        yield f"sqlite:///{path}"
        dispose_engines()
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    if not empty and "postgresql" not in templates:
        template_name = server.create_database()
        _migrated(server.url(template_name))
        templates["postgresql"] = template_name
    name = server.create_database(template=None if empty else templates["postgresql"])
    yield server.url(name)
    dispose_engines()
    server.drop_database(name)


@pytest.fixture(autouse=True)
def isolated_ledger(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """No LEDGER_* setting leaks in from the machine; the defaults resolve to this test's database."""
    for key in list(os.environ):
        if key.startswith("LEDGER_") and key not in _KEPT_ENVIRONMENT:
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEDGER_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    return db_url


class FakeClock:
    """A controllable broker clock: starts at a fixed UTC instant, moves only when told."""

    def __init__(self, start: datetime = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> datetime:
        self.current += timedelta(**kwargs)
        return self.current


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_broker(
    db_url: str, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[Callable[..., object]]:
    """Open PaperBrokers on this test's database; defaults: 100k cash, 5 bps, 1 bp.

    At teardown the brokers are closed and verify() must be empty for every account, unless the test is
    marked ``corrupts_ledger`` (tests that damage rows on purpose to see verify() catch it).
    """
    from ledger.brokers.paper import PaperBroker

    opened: list[PaperBroker] = []

    def factory(**kwargs: object) -> PaperBroker:
        settings: dict[str, object] = {"db_url": db_url, "clock": clock}
        if "run_id" not in kwargs:
            settings.update(initial_cash=100_000, slippage_bps=5, fee_bps=1)
        settings.update(kwargs)
        broker = PaperBroker(**settings)  # type: ignore[arg-type]
        opened.append(broker)
        return broker

    yield factory
    for broker in opened:
        broker.close()
    if opened and request.node.get_closest_marker("corrupts_ledger") is None:
        assert ledger_problems(db_url) == [], "the ledger's invariants must hold after every scenario"


@pytest.fixture
def broker(make_broker: Callable[..., object]) -> Iterator[object]:
    """A broker with an AAPL quote (bid 150.00 / ask 150.10); its ledger must verify clean at the end."""
    b = make_broker()
    b.set_quote("AAPL", bid=150.0, ask=150.10)  # type: ignore[attr-defined]
    yield b
    assert ledger_problems(b.db_url) == []  # type: ignore[attr-defined]


def ledger_problems(db_url: str) -> list[str]:
    """verify() over every account of the database, on a fresh connection (works after brokers closed)."""
    from ledger.book.verify import verify_ledger
    from ledger.db.engine import get_engine, read_transaction

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        return verify_ledger(conn)


def table_snapshot(db_url: str, metadata: object | None = None) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (alembic_version included), read on a fresh connection, in a stable order.

    ``metadata``: an already reflected ``MetaData`` of the database, to skip reflecting it again.
    """
    from sqlalchemy import MetaData, select

    from ledger.db.engine import get_engine, read_transaction

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        if metadata is None:
            metadata = MetaData()
            metadata.reflect(conn)
        return {
            name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for name, table in sorted(metadata.tables.items())  # type: ignore[attr-defined]
        }


def utc(*parts: int) -> datetime:
    """A UTC instant: ``utc(2024, 1, 2, 21)``."""
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def order_events(db_url: str) -> Callable[[str], list[tuple[object, ...]]]:
    """Read one order's ``order_events`` rows (by its public order_id), oldest first, on a fresh connection.

    Each row is ``(from_status, to_status, reason, at)``.
    """
    from sqlalchemy import select

    from ledger.db.engine import get_engine, read_transaction
    from ledger.db.models import Order, OrderEvent

    def read(order_id: str) -> list[tuple[object, ...]]:
        stmt = (
            select(OrderEvent.from_status, OrderEvent.to_status, OrderEvent.reason, OrderEvent.at)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(Order.order_id == order_id)
            .order_by(OrderEvent.id)
        )
        with get_engine(db_url).connect() as conn, read_transaction(conn):
            return [tuple(row) for row in conn.execute(stmt)]

    return read


@pytest.fixture
def equity_marks(db_url: str) -> Callable[[], list[tuple[object, ...]]]:
    """Read every ``equity_marks`` row, oldest first, on a fresh connection.

    Each row is ``(at, cash, long_value, short_value, equity)``, amounts as Decimal.
    """
    from sqlalchemy import select

    from ledger.db.engine import get_engine, read_transaction
    from ledger.db.models import EquityMark

    def read() -> list[tuple[object, ...]]:
        stmt = select(
            EquityMark.at, EquityMark.cash_e6, EquityMark.long_value_e6, EquityMark.short_value_e6,
            EquityMark.equity_e6,
        ).order_by(EquityMark.id)
        with get_engine(db_url).connect() as conn, read_transaction(conn):
            return [tuple(row) for row in conn.execute(stmt)]

    return read


@pytest.fixture
def long_broker(broker: object) -> object:
    """The ``broker`` holding 10 AAPL, bought at market (150.10 * 1.0005 = 150.17505, fee 0.150175)."""
    broker.submit_order("AAPL", "BUY", 10)  # type: ignore[attr-defined]
    return broker


@pytest.fixture
def displayed_broker(make_broker: Callable[..., object]) -> object:
    """A broker whose account fills at most the quote's displayed size; AAPL quoted 150.00 / 150.10, size 100 x 100."""
    b = make_broker()
    b.configure(fill_model="displayed_size")  # type: ignore[attr-defined]
    b.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=100)  # type: ignore[attr-defined]
    return b
