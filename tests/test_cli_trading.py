"""Trading commands of the CLI: cancel's exit status, negative quantities, bounds, output formats, fill prices,
reserved shares, stored quotes, account activity and per-command slippage and fees."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ledger.book.store import fills, orders, runs
from ledger.cli import cli
from ledger.db.engine import get_engine
from ledger.money import MAX_AMOUNT
from tests import test_cli
from tests.conftest import ledger_problems
from tests.test_cli import assert_one_line_error, scalar

run = test_cli.run  # the fixtures of tests/test_cli.py: the CLI on this test's ledger, and account alice
traded = test_cli.traded


def order_id_of(result) -> str:
    return result.stdout.split("order_id=")[1].split()[0]


@pytest.mark.parametrize("finished_as", ["filled", "canceled"])
def test_cancel_of_an_order_no_longer_resting_exits_3_naming_its_status(run, traded, db_url, finished_as):
    if finished_as == "filled":
        target = order_id_of(run("order", "alice", "buy", "AAPL", "1"))
    else:
        target = traded
        run("cancel", "alice", traded)
    result = run("cancel", "alice", target, ok=False)
    assert result.exit_code == 3
    assert_one_line_error(result, f"order {target} is {finished_as}, not resting: nothing canceled")
    assert scalar(db_url, select(orders.c.status).where(orders.c.order_id == target)) == finished_as
    assert ledger_problems(db_url) == []


def test_cancel_of_a_resting_order_exits_0_and_help_lists_the_exit_codes(run, traded):
    assert f"canceled: order_id={traded}" in run("cancel", "alice", traded).stdout
    help_text = CliRunner().invoke(cli, ["cancel", "--help"]).stdout
    assert "Exit status: 0 canceled; 3 nothing canceled" in " ".join(help_text.split())


def test_a_negative_quantity_needs_no_double_dash_and_is_recorded_as_rejected(run, traded, db_url):
    result = run("order", "alice", "buy", "AAPL", "-5", ok=False)
    assert_one_line_error(result, "Invalid quantity")
    rejected = scalar(db_url, select(orders.c.reject_reason).where(orders.c.status == "rejected"))
    assert "must be > 0" in rejected
    assert_one_line_error(run("order", "alice", "buy", "AAPL", "1", "--limt", "3", ok=False), "unexpected extra")


def test_a_number_beyond_the_ledger_bound_names_the_bound(run, traded):
    result = run("order", "alice", "buy", "AAPL", "1000000000000", ok=False)
    assert_one_line_error(result, "'1000000000000' is out of range", f"{MAX_AMOUNT:,}")
    assert "finite" not in result.stderr
    assert_one_line_error(run("order", "alice", "buy", "AAPL", "1", "--limit", "-1e13", ok=False), "out of range")


def test_orders_show_the_average_fill_price_in_every_format(run, traded, tmp_path):
    table = run("orders", "alice").stdout
    assert "fill price" in table and "150.17505" in table
    rows = list(csv.DictReader(io.StringIO(run("orders", "alice", "--format", "csv").stdout)))
    assert [(row["status"], row["fill_price"]) for row in rows] == [("filled", "150.175050"), ("new", "")]
    out = tmp_path / "orders.json"
    run("orders", "alice", "--format", "json", "--out", str(out))
    records = json.loads(out.read_text())
    assert [(r["client_order_id"], r["qty"], r["fill_price"]) for r in records] == [("first", 10.0, 150.17505),
                                                                                  (None, 5.0, None)]
    table_file = tmp_path / "orders.txt"
    run("orders", "alice", "--out", str(table_file))  # a table can go to a file too, as `fills` does
    assert "fill price" in table_file.read_text() and "150.17505" in table_file.read_text()


def test_accounts_in_every_format(run, traded):
    assert "99,998.599325" in run("accounts").stdout
    [row] = list(csv.DictReader(io.StringIO(run("accounts", "--format", "csv").stdout)))
    assert (row["account"], Decimal(row["cash"]), Decimal(row["equity"])) == (
        "alice", Decimal("98498.099325"), Decimal("99998.599325"))
    [record] = json.loads(run("accounts", "--format", "json").stdout)
    assert record["positions"] == 1 and record["created"].startswith("20")


def test_account_show_lists_the_shares_reserved_by_resting_sells(run, traded):
    run("order", "alice", "sell", "AAPL", "4", "--limit", "170")
    shown = run("account", "show", "alice").stdout
    [line] = [line for line in shown.splitlines() if "AAPL" in line]
    assert [cell.strip() for cell in line.split("│")[1:4]] == ["AAPL", "10", "4"]


def test_quote_list_shows_the_account_quotes(run, traded):
    run("account", "create", "bob", "--cash", "10")
    run("quote", "set", "MSFT", "--bid", "400", "--ask", "400.4", "-a", "bob")
    listed = run("quote", "list", "--account", "alice").stdout
    assert "AAPL" in listed and "150.05" in listed and "MSFT" not in listed
    [record] = json.loads(run("quote", "list", "-a", "bob", "--format", "json").stdout)
    assert (record["symbol"], record["bid"], record["ask"], record["spread_bps"]) == ("MSFT", 400.0, 400.4, 10.0)
    run("account", "create", "carol", "--cash", "10")
    assert "no quotes stored for account 'carol'" in run("quote", "list", "-a", "carol").stdout
    assert_one_line_error(run("quote", "list", "-a", "nobody", ok=False), "no such account")


def test_activity_lists_cash_movements_and_fills_in_time_order_with_the_balance(run, traded):
    run("order", "alice", "sell", "AAPL", "4")
    rows = list(csv.DictReader(io.StringIO(run("activity", "alice", "--format", "csv").stdout)))
    assert [(row["kind"], row["side"]) for row in rows] == [("initial", ""), ("fill", "BUY"), ("fill", "SELL")]
    assert Decimal(rows[0]["amount"]) == 100_000
    assert Decimal(rows[1]["amount"]) == -(Decimal("1501.7505") + Decimal("0.150175"))
    balance = Decimal(0)
    for row in rows:
        balance += Decimal(row["amount"])
        assert Decimal(row["balance"]) == balance
    cash = run("account", "show", "alice").stdout.split("cash")[2].split()[0]
    assert Decimal(rows[-1]["balance"]) == Decimal(cash.replace(",", ""))
    table = run("activity", "alice").stdout
    assert "initial" in table and "SELL" in table


def test_order_slippage_and_fee_options_reach_the_broker(run, traded, db_url):
    result = run("order", "alice", "buy", "AAPL", "2", "--slippage-bps", "10", "--fee-bps", "2").stdout
    assert "filled: BUY 2 AAPL @ 150.2501" in result  # 150.10 ask + 10 bps
    fill = CliRunner().invoke(cli, ["fills", "alice", "--format", "csv", "--db", db_url]).stdout
    last = list(csv.DictReader(io.StringIO(fill)))[-1]
    assert (float(last["slippage_bps"]), float(last["fee_bps"]), float(last["fee"])) == (10.0, 2.0, 0.060100)
    assert scalar(db_url, select(runs.c.fee_bps_e6).order_by(runs.c.started_at.desc()).limit(1)) == Decimal(2)
    assert_one_line_error(run("order", "alice", "buy", "AAPL", "1", "--fee-bps", "20000", ok=False), "fee_bps")
    assert scalar(db_url, select(fills.c.fee_bps_e6).order_by(fills.c.id.desc()).limit(1)) == Decimal(2)


# -- the order model on the command line ----------------------------------------------------------------------------
def _order_row(db_url: str, order_id: str):
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(orders).where(orders.c.order_id == order_id)).one()


def test_order_options_choose_the_type_and_time_in_force(run, traded, db_url):
    stop = order_id_of(run("order", "alice", "sell", "AAPL", "5", "--stop", "140", "--tif", "day"))
    stop_limit = order_id_of(run("order", "alice", "buy", "AAPL", "1", "--stop", "160", "--limit", "161"))
    trailing = order_id_of(run("order", "alice", "sell", "AAPL", "2", "--trail-percent", "5"))
    notional = run("order", "alice", "buy", "AAPL", "--notional", "1000")

    assert (_order_row(db_url, stop).order_type, _order_row(db_url, stop).time_in_force) == ("stop", "day")
    assert _order_row(db_url, stop).expires_at is not None
    assert (_order_row(db_url, stop_limit).order_type, _order_row(db_url, stop_limit).stop_price_e6) == (
        "stop_limit", Decimal(160))
    row = _order_row(db_url, trailing)
    assert (row.order_type, row.trail_percent_e6, row.hwm_e6, row.stop_price_e6) == (
        "trailing_stop", Decimal(5), Decimal(150), Decimal("142.5"))
    assert "filled:" in notional.stdout
    assert _order_row(db_url, order_id_of(notional)).notional_e6 == Decimal(1000)
    assert_one_line_error(run("order", "alice", "buy", "AAPL", ok=False), "QTY or --notional")
    assert ledger_problems(db_url) == []


def test_replace_close_expire_and_account_config_commands(run, traded, db_url):
    replaced = run("replace", "alice", traded, "--limit", "139", "--qty", "4")
    new_id = order_id_of(replaced)
    assert f"replaced {traded} by: new: BUY 4 AAPL limit 139.00" in replaced.stdout
    assert (_order_row(db_url, traded).status, _order_row(db_url, traded).replaced_by_id) == (
        "replaced", _order_row(db_url, new_id).id)
    assert_one_line_error(run("replace", "alice", traded, "--limit", "138", ok=False), "only an open order")

    closed = run("close", "alice", "AAPL", "--percentage", "50")
    assert "filled: SELL 5 AAPL" in closed.stdout
    assert "filled: SELL 5 AAPL" in run("close", "alice", "--all", "--cancel-orders").stdout
    assert _order_row(db_url, new_id).status == "canceled"
    assert_one_line_error(run("close", "alice", "AAPL", ok=False), "no open position in AAPL")

    shown = run("account", "config", "alice", "--fill-model", "displayed_size", "--calendar", "24/7").stdout
    assert "fill_model" in shown and "displayed_size" in shown and "24/7" in shown
    assert "displayed_size" in run("account", "config", "alice").stdout  # persisted
    assert "0 order(s) expired" in run("expire", "alice").stdout

    assert_one_line_error(run("account", "config", "alice", "--shorting", ok=False), "short selling needs a margin account")
    shown = run("account", "config", "alice", "--margin-multiplier", "2", "--shorting").stdout
    assert re.search(r"shorting_enabled\s+True", shown) and re.search(r"max_margin_multiplier\s+2", shown), shown
    assert "filled: SELL 3 AAPL" in run("order", "alice", "sell", "AAPL", "3").stdout  # flat: a short sale
    account = run("account", "show", "alice").stdout
    assert "-3" in account and "buying power" in account and "maintenance shortfall" in account
    assert ledger_problems(db_url) == []
