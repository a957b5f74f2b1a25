"""Read commands never write: an old, empty, newer or read-only ledger is reported, never migrated or created.

The read-only file cases are honest about permissions: the tests run as root, which ignores them, so each
command runs (through click's CliRunner) in a forked child that drops to the unprivileged ``nobody`` user,
as tests/test_bad_environment.py does for the library.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from ledger.cli import cli
from ledger.db.engine import dispose_engines, get_engine, read_transaction
from ledger.db.migrate import current_revision, head_revision, migrate
from tests.conftest import table_snapshot

NOBODY = 65534
READ_COMMANDS = [
    ("accounts",),
    ("account", "show", "alice"),
    ("orders", "alice"),
    ("fills", "alice"),
    ("runs", "alice"),
    ("report", "alice"),
    ("verify",),
    ("sql", "SELECT count(*) FROM accounts"),
    ("export", "alice", "--out", "exported"),
    ("db", "check"),
]
READ_COMMAND_IDS = [" ".join(args[:2]) for args in READ_COMMANDS]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def revision(db_url: str) -> str | None:
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        return current_revision(conn)


def file_state(db_url: str) -> tuple[bytes, int] | None:
    """The SQLite file's bytes and mtime (None on PostgreSQL)."""
    if not db_url.startswith("sqlite"):
        return None
    path = Path(db_url.removeprefix("sqlite:///"))
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
def traded_ledger(db_url: str) -> str:
    """Account alice with a fill and a resting order; every engine connection closed (no -wal left)."""
    for args in (
        ("account", "create", "alice", "--cash", "100000"),
        ("quote", "set", "AAPL", "--bid", "150", "--ask", "150.10", "--account", "alice"),
        ("order", "alice", "buy", "AAPL", "10"),
        ("order", "alice", "buy", "AAPL", "5", "--limit", "140"),
    ):
        assert invoke(*args, "--db", db_url).exit_code == 0
    dispose_engines()
    return db_url


@pytest.mark.parametrize("args", READ_COMMANDS, ids=READ_COMMAND_IDS)
def test_a_read_command_refuses_an_older_schema_and_leaves_it_untouched(traded_ledger, args):
    migrate(get_engine(traded_ledger), "downgrade", "0001")
    dispose_engines()
    before_rows, before_file = table_snapshot(traded_ledger), file_state(traded_ledger)
    dispose_engines()

    result = invoke(*args, "--db", traded_ledger)

    assert result.exit_code != 0, result.output
    if args[0] == "db":
        assert "schema revision is 0001" in result.stderr and "paper-ledger db upgrade" in result.stderr
    else:
        assert (f"the ledger's schema is at revision 0001, this paper-ledger needs {head_revision()}: run "
                "`paper-ledger db upgrade`") in result.stderr
    dispose_engines()
    assert file_state(traded_ledger) == before_file, "a read must leave the ledger file byte for byte, mtime too"
    assert table_snapshot(traded_ledger) == before_rows and revision(traded_ledger) == "0001"


def test_write_commands_still_migrate_an_older_schema(traded_ledger):
    migrate(get_engine(traded_ledger), "downgrade", "0001")
    dispose_engines()
    assert invoke("order", "alice", "buy", "AAPL", "1", "--db", traded_ledger).exit_code == 0
    assert revision(traded_ledger) == head_revision()


@pytest.mark.empty_database
@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("args", READ_COMMANDS, ids=READ_COMMAND_IDS)
def test_a_read_command_on_an_empty_file_says_no_ledger_here_and_writes_nothing(tmp_path, args):
    empty = tmp_path / "empty.db"
    empty.touch()
    mtime = empty.stat().st_mtime_ns

    result = invoke(*args, "--db", str(empty))

    assert result.exit_code != 0
    message = result.stderr if args[0] != "db" else result.stderr + result.stdout
    assert ("no ledger here" in message) if args[0] != "db" else ("schema revision is none" in message), message
    assert empty.read_bytes() == b"" and empty.stat().st_mtime_ns == mtime
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.db"]  # no -wal, -shm, or export dir


@pytest.mark.empty_database
@pytest.mark.engines("sqlite")
def test_a_read_command_on_a_missing_file_says_no_ledger_here_and_creates_nothing(tmp_path):
    result = invoke("accounts", "--db", str(tmp_path / "absent.db"))
    assert result.exit_code != 0 and "no ledger here" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_db_current_and_check_on_a_newer_database_say_upgrade_paper_ledger(traded_ledger):
    with get_engine(traded_ledger).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    dispose_engines()
    expected = f"made by a newer paper-ledger (revision 9999_future, this one knows up to {head_revision()}); " \
               "upgrade paper-ledger"
    for args in (("db", "current"), ("db", "check"), ("accounts",)):
        result = invoke(*args, "--db", traded_ledger)
        assert result.exit_code != 0 and expected in result.stderr, (args, result.output)
        assert "db upgrade" not in result.stderr
    assert revision(traded_ledger) == "9999_future"


@pytest.mark.engines("sqlite")
def test_sql_names_a_refused_pragma_as_refused_not_as_a_disk_error(traded_ledger):
    result = invoke("sql", "PRAGMA journal_mode=delete", "--db", traded_ledger)
    assert result.exit_code != 0
    assert "refused" in result.stderr and "read-only" in result.stderr and "disk I/O" not in result.stderr
    listed = invoke("sql", "PRAGMA table_info(fills)", "--db", traded_ledger)  # a reading pragma still works
    assert listed.exit_code == 0 and "order_id" in listed.stdout


# -- read-only files and directories --------------------------------------------------------------------------
@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path sits under a root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix="ledger-cli-ro-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)  # as root: whatever the permissions left inside


def invoke_as_unprivileged_user(args: list[str], cwd: Path) -> dict[str, object]:
    """Fork; the child drops to ``nobody`` (when we are root) and runs the CLI; returns exit code and output."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on, always leave through os._exit
        try:
            os.close(read_end)
            os.chdir(cwd)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            result = CliRunner().invoke(cli, args)
            outcome = {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which judges it
            outcome = {"exit_code": -1, "stdout": "", "stderr": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.engines("sqlite")
@pytest.mark.parametrize("directory_writable", [True, False], ids=["writable-dir", "read-only-dir"])
def test_read_commands_work_on_a_read_only_ledger_file(traded_ledger, shared_dir, directory_writable):
    target = shared_dir / "ledger.db"
    target.write_bytes(Path(traded_ledger.removeprefix("sqlite:///")).read_bytes())
    commands = [
        ["accounts"], ["verify"], ["report", "alice"], ["sql", "SELECT count(*) AS n FROM fills"],
        ["fills", "alice"], ["orders", "alice"], ["db", "current"],
    ]
    for args in commands:  # as root first: the child cannot import modules from root's Python installation
        assert invoke(*args, "--db", str(target)).exit_code == 0
    dispose_engines()
    for leftover in shared_dir.glob("ledger.db-*"):  # this root run's WAL index: not the case under test
        leftover.unlink()
    target.chmod(0o444)
    shared_dir.chmod(0o777 if directory_writable else 0o555)
    before = target.read_bytes(), target.stat().st_mtime_ns

    for args in commands:
        outcome = invoke_as_unprivileged_user([*args, "--db", str(target)], shared_dir)
        assert outcome["exit_code"] == 0, (args, outcome)
        assert "readonly" not in str(outcome["stderr"])
    sql = invoke_as_unprivileged_user(["sql", "SELECT count(*) AS n FROM fills", "--format", "csv", "--db",
                                       str(target)], shared_dir)
    assert sql["stdout"] == "n\n1\n"
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before


@pytest.mark.engines("sqlite")
def test_db_backup_into_an_unwritable_directory_names_the_destination(traded_ledger, shared_dir, tmp_path):
    source = shared_dir / "ledger.db"
    source.write_bytes(Path(traded_ledger.removeprefix("sqlite:///")).read_bytes())
    assert invoke("db", "backup", str(tmp_path / "warm.db"), "--db", str(source)).exit_code == 0  # imports, as root
    dispose_engines()
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)

    outcome = invoke_as_unprivileged_user(["db", "backup", str(locked / "copy.db"), "--db", str(source)], shared_dir)

    assert outcome["exit_code"] != 0
    assert f"cannot write the backup to {locked / 'copy.db'}: Permission denied" in str(outcome["stderr"]), outcome
    assert f"backup of {source}" not in str(outcome["stderr"]) and list(locked.iterdir()) == []
