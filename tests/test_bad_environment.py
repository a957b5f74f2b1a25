"""Bad environments: read-only, missing, corrupt, foreign, too new, full or locked databases.

Each case must end in a clear ``DatabaseError`` (``SchemaTooNewError`` for a newer schema) - never a raw driver
exception - with the transaction rolled back and the database left as it was: byte-identical for SQLite files
that must not be touched, row-identical otherwise, and ``verify()`` empty once the obstacle is gone.

How "read-only" is made honest: the tests run as root, and root ignores file permissions, so the read-only
case runs in a forked child that drops to the unprivileged ``nobody`` user before opening the file (as a user
without write permission would). SQLite's ``?mode=ro`` URI is tested as well. A full disk is SQLite's
``PRAGMA max_page_count``, set on every new connection through the engine's ``connect`` event.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from ledger.brokers.paper import PaperBroker
from ledger.db.engine import dispose_engines, get_engine
from ledger.exceptions import DatabaseError, SchemaTooNewError
from tests.conftest import FakeClock, ledger_problems, table_snapshot

NOBODY = 65534


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_path(db_url: str) -> Path:
    return Path(make_url(db_url).database or "")


@pytest.fixture
def ledger_file(db_url: str, clock: FakeClock) -> Path:
    """A SQLite ledger with some history, closed and checkpointed (no -wal left), as a user would leave it."""
    with PaperBroker(db_url=db_url, initial_cash=100_000, slippage_bps=5, fee_bps=1, clock=clock) as broker:
        broker.set_quote("AAPL", bid=150.0, ask=150.10)
        broker.submit_order("AAPL", "BUY", 20)
        broker.submit_order("AAPL", "SELL", 5, "limit", 160.0)
        assert broker.verify() == []
    dispose_engines()
    path = sqlite_path(db_url)
    assert not Path(f"{path}-wal").exists()
    return path


def open_in_child_as_unprivileged_user(db_url: str) -> dict[str, Any]:
    """Fork; the child drops to ``nobody`` (when we are root), opens the ledger and trades; says what happened."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on, always leave through os._exit
        outcome: dict[str, Any]
        try:
            os.close(read_end)
            os.chdir(Path(make_url(db_url).database or "/").parent)  # a user's working directory is theirs
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            broker = PaperBroker(db_url=db_url)
            broker.submit_order("AAPL", "BUY", 1)
            outcome = {"raised": None}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which judges it
            outcome = {"raised": type(exc).__name__, "message": str(exc)}
        os.write(write_end, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path sits under a root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix="ledger-ro-"))
    path.chmod(0o755)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("directory_writable", [True, False], ids=["writable-dir", "read-only-dir"])
def test_read_only_ledger_file_gives_a_clear_error_and_stays_byte_identical(
    ledger_file: Path, shared_dir: Path, directory_writable: bool
) -> None:
    target = shared_dir / "ledger.db"
    target.write_bytes(ledger_file.read_bytes())
    target.chmod(0o444)
    shared_dir.chmod(0o777 if directory_writable else 0o555)
    before = sha256(target)
    dispose_engines()  # the child must not inherit pooled connections

    outcome = open_in_child_as_unprivileged_user(f"sqlite:///{target}")

    assert outcome["raised"] == "DatabaseError", outcome
    assert "read-only" in outcome["message"] and "\n" not in outcome["message"], outcome
    assert sha256(target) == before
    shared_dir.chmod(0o755)
    target.chmod(0o644)
    assert ledger_problems(f"sqlite:///{target}") == []
    dispose_engines()


@pytest.mark.engines("sqlite")
def test_read_only_uri_gives_a_clear_error_and_writes_nothing(ledger_file: Path) -> None:
    before = sha256(ledger_file)
    with pytest.raises(DatabaseError, match="read-only"):
        # Opening an existing account writes nothing (its run is written lazily): the first write fails.
        with PaperBroker(db_url=f"sqlite:///file:{ledger_file}?mode=ro&uri=true") as broker:
            broker.set_quote("AAPL", bid=150.0, ask=150.1)
    dispose_engines()
    assert sha256(ledger_file) == before


@pytest.mark.engines("postgresql")
def test_read_only_postgres_database_gives_a_clear_error_and_changes_nothing(
    make_broker: Callable[..., Any], db_url: str
) -> None:
    broker = make_broker()
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    broker.close()
    database = make_url(db_url).database
    with get_engine(db_url).connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'))
        conn.commit()
    dispose_engines()  # new sessions pick the setting up
    before = table_snapshot(db_url)

    with pytest.raises(DatabaseError, match="read-only"):
        PaperBroker(db_url=db_url)

    assert table_snapshot(db_url) == before
    assert ledger_problems(db_url) == []


@pytest.mark.engines("sqlite")
def test_path_in_a_missing_directory_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(DatabaseError, match="does not exist") as raised:
        PaperBroker(db_url=f"sqlite:///{missing / 'ledger.db'}")
    assert str(missing) in str(raised.value)
    assert not (tmp_path / "no").exists()


@pytest.mark.engines("sqlite")
def test_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(DatabaseError):
        PaperBroker(db_url=f"sqlite:///{tmp_path / 'adir'}")


@pytest.mark.engines("postgresql")
def test_missing_postgres_database_is_a_clear_error(db_url: str) -> None:
    url = make_url(db_url).set(database="no_such_ledger_database")
    with pytest.raises(DatabaseError, match="does not exist"):
        PaperBroker(db_url=url.render_as_string(hide_password=False))


@pytest.mark.engines("postgresql")
def test_unreachable_postgres_server_is_a_clear_error(db_url: str) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = make_url(db_url).set(port=port)
    with pytest.raises(DatabaseError):
        PaperBroker(db_url=url.render_as_string(hide_password=False))


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("damage", ["text file", "random bytes", "truncated ledger", "foreign sqlite database"])
def test_corrupt_or_foreign_file_is_refused_and_left_byte_identical(ledger_file: Path, damage: str) -> None:
    damaged = ledger_file.with_name("damaged.db")  # a copy: the test's own ledger stays healthy
    if damage == "text file":
        damaged.write_text("these are my trading notes, not a database\n" * 50)
    elif damage == "random bytes":
        damaged.write_bytes(os.urandom(64 * 1024))
    elif damage == "truncated ledger":
        damaged.write_bytes(ledger_file.read_bytes()[: ledger_file.stat().st_size // 2])
    else:
        with sqlite3.connect(damaged) as other_app:
            other_app.execute("CREATE TABLE notes (body TEXT)")
            other_app.execute("INSERT INTO notes VALUES ('keep me')")
        other_app.close()
    before = sha256(damaged)

    with pytest.raises(DatabaseError) as raised:
        PaperBroker(db_url=f"sqlite:///{damaged}", initial_cash=1000)
    dispose_engines()

    message = str(raised.value)
    assert "\n" not in message
    assert any(word in message for word in ("corrupt", "not a SQLite", "not a paper-ledger")), message
    assert sha256(damaged) == before


@pytest.mark.empty_database
@pytest.mark.engines("postgresql")
def test_foreign_postgres_database_is_refused_untouched(db_url: str) -> None:
    with get_engine(db_url).begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT)"))
        conn.execute(text("INSERT INTO notes VALUES ('keep me')"))
    before = table_snapshot(db_url)
    with pytest.raises(DatabaseError, match="not a paper-ledger database"):
        PaperBroker(db_url=db_url)
    assert table_snapshot(db_url) == before


def test_database_from_a_newer_version_is_refused_untouched(make_broker: Callable[..., Any], db_url: str) -> None:
    broker = make_broker()
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    broker.submit_order("AAPL", "BUY", 3)
    broker.close()
    with get_engine(db_url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    dispose_engines()
    before = table_snapshot(db_url)
    file_hash = sha256(sqlite_path(db_url)) if db_url.startswith("sqlite") else None
    dispose_engines()

    with pytest.raises(SchemaTooNewError, match="9999_from_the_future"):
        PaperBroker(db_url=db_url)

    dispose_engines()
    if file_hash is not None:
        assert sha256(sqlite_path(db_url)) == file_hash
    assert table_snapshot(db_url) == before


@pytest.mark.engines("sqlite")
def test_full_disk_rolls_back_the_order_cleanly_and_trading_resumes_when_space_returns(
    ledger_file: Path, db_url: str, clock: FakeClock
) -> None:
    with sqlite3.connect(ledger_file) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    engine = get_engine(db_url)

    def cap_database_size(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 4}")

    event.listen(engine, "connect", cap_database_size)
    broker = PaperBroker(db_url=db_url, clock=clock)
    acknowledged = 0
    with pytest.raises(DatabaseError) as raised:
        for number in range(100_000):
            before = table_snapshot(db_url)
            broker.submit_order("AAPL", "BUY", 1, client_order_id=f"fill-the-disk-{number}")
            acknowledged += 1
    assert "full" in str(raised.value) and "rolled back" in str(raised.value)
    assert acknowledged > 0, "the cap must leave room for some orders first"
    assert table_snapshot(db_url) == before, "the order that hit the full disk left rows behind"
    assert broker.verify() == []
    assert broker.get_positions() == {"AAPL": 20.0 + acknowledged}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"

    broker.close()
    event.remove(engine, "connect", cap_database_size)
    dispose_engines()
    with PaperBroker(db_url=db_url, clock=clock) as resumed:
        assert resumed.submit_order("AAPL", "BUY", 1)["status"] == "filled"
        assert resumed.get_positions() == {"AAPL": 21.0 + acknowledged}
        assert resumed.verify() == []


@pytest.mark.engines("sqlite")
def test_database_locked_longer_than_busy_timeout_is_a_clear_error_then_trading_resumes(
    make_broker: Callable[..., Any], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_SQLITE_BUSY_TIMEOUT_MS", "100")
    dispose_engines()
    broker = make_broker()
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    before = table_snapshot(db_url)
    other_writer = sqlite3.connect(sqlite_path(db_url), isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseError, match="locked"):
            broker.submit_order("AAPL", "BUY", 10)
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    assert table_snapshot(db_url) == before
    assert broker.submit_order("AAPL", "BUY", 10)["status"] == "filled"
    assert broker.verify() == []


@pytest.mark.engines("postgresql")
def test_account_locked_longer_than_lock_timeout_is_a_clear_error_then_trading_resumes(
    make_broker: Callable[..., Any], db_url: str
) -> None:
    url = make_url(db_url).update_query_dict({"options": "-c lock_timeout=100"})
    broker = make_broker(db_url=url.render_as_string(hide_password=False))
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    before = table_snapshot(db_url)
    with get_engine(db_url).connect() as other_session:
        transaction = other_session.begin()
        other_session.execute(text("SELECT id FROM accounts WHERE name = 'default' FOR UPDATE")).all()
        try:
            with pytest.raises(DatabaseError, match="lock"):
                broker.submit_order("AAPL", "BUY", 10)
        finally:
            transaction.rollback()
    assert table_snapshot(db_url) == before
    assert broker.submit_order("AAPL", "BUY", 10)["status"] == "filled"
    assert broker.verify() == []
