"""The paper-ledger command line in-process (click's CliRunner): every command, its output, its errors."""

from __future__ import annotations

import csv
import io
import json
import sys
from decimal import Decimal

import click
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text

from ledger.book.store import accounts, fills
from ledger.cli import cli
from ledger.db.engine import get_engine, read_transaction, write_transaction
from tests.conftest import ledger_problems


@pytest.fixture
def run(db_url):
    """Invoke the CLI on this test's ledger; asserts success unless ``ok=False``."""

    def invoke(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, [*args, "--db", db_url])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def traded(run):
    """Account alice: 100k, AAPL quoted 150.00/150.10, bought 10 at market, a resting limit buy of 5 at 140."""
    run("account", "create", "alice", "--cash", "100000")
    run("quote", "set", "AAPL", "--bid", "150", "--ask", "150.10", "--account", "alice")
    run("order", "alice", "buy", "AAPL", "10", "--client-order-id", "first")
    resting = run("order", "alice", "buy", "AAPL", "5", "--limit", "140")
    return resting.stdout.split("order_id=")[1].split()[0]


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def scalar(db_url: str, statement) -> object:
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        return conn.execute(statement).scalar()


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    context = click.Context(group)
    for name in sorted(group.list_commands(context)):  # the top-level group loads its commands lazily
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_is_documented_and_takes_db():
    commands = dict(leaf_commands(cli))
    assert {"replay", "db upgrade", "db current", "db check", "db backup", "accounts", "account create",
            "account show", "account reset", "order", "orders", "cancel", "quote set", "quote fetch", "fills",
            "export", "runs", "sql", "verify", "report"} <= {" ".join(path) for path in commands}
    for path, command in commands.items():
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "--db URL" in result.stdout, path
        assert command.help and len(command.help) > 30, path


def test_commands_on_a_missing_account_fail_and_create_nothing(run, db_url):
    run("db", "upgrade")
    for args in (
        ("account", "show", "NOPE"),
        ("order", "NOPE", "buy", "AAPL", "1"),
        ("orders", "NOPE"),
        ("cancel", "NOPE", "abc"),
        ("account", "reset", "NOPE"),
        ("quote", "set", "AAPL", "--bid", "1", "--ask", "2"),  # the default account does not exist either
        ("fills", "NOPE"),
        ("verify", "NOPE"),
    ):
        assert_one_line_error(run(*args, ok=False), "no such account")
    assert scalar(db_url, select(func.count()).select_from(accounts)) == 0


@pytest.mark.engines("sqlite")
def test_a_read_command_on_a_missing_sqlite_file_does_not_create_it(tmp_path):
    target = tmp_path / "absent.db"
    result = CliRunner().invoke(cli, ["accounts", "--db", f"sqlite:///{target}"])
    assert_one_line_error(result, "no ledger database at")
    assert not target.exists()


def test_account_create_show_and_reset(run, traded):
    assert_one_line_error(run("account", "create", "alice", "--cash", "5", ok=False), "already exists")
    shown = run("account", "show", "alice").stdout
    assert "available cash  97,798.029325" in shown  # 100000 - 1501.900675 paid - 700.07 reserved
    assert "AAPL" in shown and "150.190068" in shown  # average cost, fee included
    assert "1,500.50" in shown  # market value at the mid
    listed = run("accounts").stdout
    assert "alice" in listed and "99,998.599325" in listed
    reset = run("account", "reset", "alice", "--cash", "5000").stdout
    assert "epoch 2, cash 5,000.00" in reset
    assert "no positions" in run("account", "show", "alice").stdout


def test_orders_cancel_and_a_crossing_quote(run, traded, db_url):
    listed = run("orders", "alice", "--status", "new").stdout
    assert traded in listed and "140.00" in listed and "market" not in listed
    assert "first" in run("orders", "alice").stdout  # the client_order_id of the market order
    again = run("order", "alice", "buy", "AAPL", "10", "--client-order-id", "first").stdout
    assert "nothing new was placed" in again
    assert f"canceled: order_id={traded}" in run("cancel", "alice", traded).stdout
    assert "no orders with status new" in run("orders", "alice", "--status", "new").stdout
    resting = run("order", "alice", "sell", "AAPL", "4", "--limit", "160").stdout
    crossed = run("quote", "set", "AAPL", "--bid", "161", "--ask", "161.2", "-a", "alice").stdout
    assert "filled resting SELL 4 @ 160" in crossed and resting.split("order_id=")[1].split()[0] in crossed
    assert_one_line_error(run("cancel", "alice", "no-such-order", ok=False), "Order not found")
    assert ledger_problems(db_url) == []


def test_fills_in_every_format(run, traded, tmp_path):
    table = run("fills", "alice").stdout
    assert "150.17505" in table and "1,501.7505" in table
    rows = list(csv.DictReader(io.StringIO(run("fills", "alice", "--format", "csv").stdout)))
    assert [(r["symbol"], r["side"], float(r["price"]), float(r["qty"])) for r in rows] == [("AAPL", "BUY", 150.17505, 10)]
    assert rows[0]["filled_at"].endswith("Z")
    [line] = run("fills", "alice", "--format", "jsonl").stdout.strip().splitlines()
    assert json.loads(line)["fee"] == 0.150175
    out = tmp_path / "fills.parquet"
    run("fills", "alice", "--format", "parquet", "--out", str(out))
    frame = pd.read_parquet(out)
    assert list(frame["price"]) == [150.17505] and str(frame["filled_at"].dtype) == "datetime64[us, UTC]"
    assert "no fills" in run("fills", "alice", "--since", "2999-01-01").stdout
    assert "no fills" in run("fills", "alice", "--symbol", "MSFT").stdout
    assert_one_line_error(run("fills", "alice", "--format", "parquet", ok=False), "needs --out")


def test_export_and_runs(run, traded, tmp_path):
    out = tmp_path / "logs"
    exported = run("export", "alice", "--out", str(out)).stdout
    [day_file] = sorted(out.glob("*.jsonl"))
    assert str(day_file) in exported
    record = json.loads(day_file.read_text().splitlines()[0])
    assert (record["symbol"], record["qty"], record["fill_price"]) == ("AAPL", 10.0, 150.17505)
    runs_table = run("runs", "alice").stdout
    assert runs_table.count("\n│ ") == 2  # the two orders: a run is written with its first order, fill or cash


def test_sql_reads_the_audit_views_in_every_format(run, traded):
    statement = "SELECT account, symbol, side, qty_exact, price_exact FROM v_fills ORDER BY fill_id"
    table = run("sql", statement).stdout
    assert "150.175050" in table and "(1 row)" in table
    assert list(csv.reader(io.StringIO(run("sql", statement, "--format", "csv").stdout))) == [
        ["account", "symbol", "side", "qty_exact", "price_exact"],
        ["alice", "AAPL", "BUY", "10.000000", "150.175050"],
    ]
    [record] = json.loads(run("sql", "SELECT symbol, qty FROM v_positions", "--format", "json").stdout)
    assert record == {"symbol": "AAPL", "qty": 10.0}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET cash_e6 = 0",
        "DELETE FROM fills",
        "DROP TABLE fills",
        "INSERT INTO quotes SELECT * FROM quotes",
        "SELECT 1; DELETE FROM fills",
        "CREATE TABLE notes (x INTEGER)",
    ],
)
def test_sql_refuses_writes_and_changes_nothing(run, traded, db_url, statement):
    cash_before = scalar(db_url, select(accounts.c.cash_e6))
    result = run("sql", statement, ok=False)
    assert_one_line_error(result)
    assert scalar(db_url, select(accounts.c.cash_e6)) == cash_before
    assert scalar(db_url, select(func.count()).select_from(fills)) == 1
    assert scalar(db_url, text("SELECT COUNT(*) FROM accounts")) == 1
    assert ledger_problems(db_url) == []


def test_sql_names_a_write_as_refused(run, traded):
    assert_one_line_error(run("sql", "DELETE FROM fills", ok=False), "refused", "read-only")
    assert_one_line_error(run("sql", "SELECT * FROM no_such_table", ok=False), "refused the statement")


def test_verify_passes_then_lists_a_corrupted_row(run, traded, db_url):
    assert "ok: every invariant holds for every account" in run("verify").stdout
    assert "ok" in run("verify", "alice").stdout
    engine = get_engine(db_url)
    with engine.connect() as conn, write_transaction(conn):
        conn.execute(accounts.update().values(cash_e6=accounts.c.cash_e6 + Decimal("0.01")))
    for args in (("verify",), ("verify", "alice")):
        result = run(*args, ok=False)
        assert "cash differs from the sum of its cash movements" in result.stdout
        assert_one_line_error(result, "1 problem(s) found")


def test_report_prints_figures_and_plots_the_equity_curve(run, traded, tmp_path):
    out = tmp_path / "equity.png"
    result = run("report", "alice", "--plot", str(out)).stdout
    assert "equity (at last quotes)" in result and "99,998.599325" in result and "fees" in result
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_plot_without_matplotlib_says_how_to_install_it(run, traded, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = run("report", "alice", "--plot", str(tmp_path / "x.png"), ok=False)
    assert_one_line_error(result, "pip install 'paper-ledger[plot]'")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.empty_database
def test_db_upgrade_current_and_check(run, engine_name):
    if engine_name == "sqlite":
        assert_one_line_error(run("db", "current", ok=False), "no ledger database")
    else:
        assert "no ledger schema yet" in run("db", "current").stdout
    assert "upgraded from an empty database to head revision" in run("db", "upgrade").stdout
    assert "already at head revision" in run("db", "upgrade").stdout
    assert "(head)" in run("db", "current").stdout
    assert "tables match the models" in run("db", "check").stdout


def test_db_check_fails_on_a_database_behind_head(run, db_url):
    from ledger.db.migrate import migrate

    run("db", "upgrade")
    migrate(get_engine(db_url), "downgrade", "0001")
    assert_one_line_error(run("db", "check", ok=False), "schema revision is 0001", "db upgrade")


def test_db_check_fails_when_the_tables_drift_from_the_models(run, db_url):
    run("db", "upgrade")
    with get_engine(db_url).connect() as conn, write_transaction(conn):
        conn.execute(text("DROP INDEX ix_fills_account_id_filled_at"))
    assert_one_line_error(run("db", "check", ok=False), "differs from the models", "ix_fills_account_id_filled_at")


@pytest.mark.engines("sqlite")
def test_db_backup_copies_a_sqlite_ledger_that_verifies(run, traded, tmp_path):
    copy = tmp_path / "copy.db"
    assert "backed up to" in run("db", "backup", str(copy)).stdout
    restored = CliRunner().invoke(cli, ["account", "show", "alice", "--db", f"sqlite:///{copy}"])
    assert restored.exit_code == 0 and "99,998.599325" in restored.stdout
    assert ledger_problems(f"sqlite:///{copy}") == []
    assert_one_line_error(run("db", "backup", str(copy), ok=False), "already exists")


@pytest.mark.engines("postgresql")
def test_db_backup_of_postgresql_points_to_pg_dump(run, tmp_path):
    run("db", "upgrade")
    assert_one_line_error(run("db", "backup", str(tmp_path / "x.db"), ok=False), "pg_dump")


def test_quote_fetch_stores_provider_quotes_for_the_account(run, monkeypatch):
    class FakeProvider:
        def get_multiple_quotes(self, symbols):
            assert symbols == ["msft", "nope"]
            return {"MSFT": {"bid": 410.0, "ask": 410.4, "bid_size": 100.0, "ask_size": 200.0, "spread_bps": 9.7}}

    monkeypatch.setattr("ledger.brokers.data_provider.get_data_provider", lambda backend: FakeProvider())
    run("account", "create", "bob", "--cash", "1000")
    result = run("quote", "fetch", "msft", "nope", "--account", "bob")
    assert "410.40" in result.stdout and "not priced: NOPE" in result.stderr
    bought = run("order", "bob", "buy", "MSFT", "1").stdout
    assert "filled: BUY 1 MSFT @ 410.6052" in bought  # 410.4 ask + 5 bps slippage


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("order", "alice", "buy", "AAPL", "abc"), "not a finite number"),
        (("order", "alice", "hold", "AAPL", "1"), "'hold' is not one of"),
        (("order", "alice", "buy", "AAPL", "0"), "Invalid quantity"),
        (("order", "alice", "buy", "AAPL", "1000000"), "Insufficient cash"),
        (("order", "alice", "buy", "AAPL", "1", "--limit", "nan"), "not a finite number"),
        (("account", "create", "carol", "--cash", "-1"), "is negative"),
        (("orders", "alice", "--status", "bogus"), "'bogus' is not one of"),
        (("fills", "alice", "--since", "yesterday"), "not an ISO date"),
        (("quote", "set", "AAPL", "--bid", "10", "--ask", "9", "-a", "alice"), "bid 10.000000 is above ask"),
        (("order", "alice"), "Missing argument"),
        (("no-such-command",), "No such command"),
        (("sql", " "), "empty"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_nonzero_exit(run, traded, args, needle):
    assert_one_line_error(run(*args, ok=False), needle)


def test_a_bad_database_url_is_one_line(tmp_path):
    for url in ("nosuchdriver://x", f"sqlite:///{tmp_path}/missing-dir/x.db"):
        result = CliRunner().invoke(cli, ["db", "upgrade", "--db", url])
        assert_one_line_error(result)
