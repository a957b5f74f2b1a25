"""Deposits and withdrawals: cash movements of their own kinds, counted by the cash law and by returns."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ledger.book.store import cash_movements
from ledger.cli import cli
from ledger.db.engine import get_engine, read_transaction
from ledger.exceptions import CashMovementError
from ledger.queries import capital, portfolio_value, total_return


def _movements(db_url: str) -> list[tuple[str, Decimal]]:
    with get_engine(db_url).connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(cash_movements.c.kind, cash_movements.c.amount_e6).order_by(cash_movements.c.id))]


def test_deposit_and_withdrawal_are_recorded_as_signed_cash_movements(broker, db_url):
    assert broker.deposit(2_500.5)["cash"] == 102_500.5
    assert broker.withdraw(Decimal("500.25"))["cash"] == 102_000.25
    assert _movements(db_url)[-2:] == [("deposit", Decimal("2500.5")), ("withdrawal", Decimal("-500.25"))]
    assert broker.verify() == []


def test_a_withdrawal_beyond_available_cash_is_refused_and_changes_nothing(broker):
    broker.submit_order("AAPL", "BUY", 100, "limit", 100.0)  # reserves 10,001 of the 100,000
    with pytest.raises(CashMovementError, match="withdrawal of 90000 refused: .* 89999 available"):
        broker.withdraw(90_000)
    assert broker.get_cash() == 100_000
    broker.withdraw(89_999)
    assert broker.get_account()["available_cash"] == 0


@pytest.mark.parametrize("amount", [0, -1, 0.0000001, 10**12, float("nan"), "10", True])
@pytest.mark.parametrize("method", ["deposit", "withdraw"])
def test_amounts_must_be_positive_exact_and_within_bounds(broker, method, amount):
    with pytest.raises(ValueError):
        getattr(broker, method)(amount)
    assert broker.get_cash() == 100_000


def test_a_deposit_that_would_take_cash_past_the_bound_is_refused(broker):
    with pytest.raises(CashMovementError, match="10\\^12"):
        broker.deposit(999_999_999_999)
    assert broker.get_cash() == 100_000


def test_returns_are_measured_on_initial_cash_plus_net_deposits(broker, db_url):
    broker.deposit(100_000)
    broker.withdraw(50_000)
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        invested = capital(conn, broker.account_id)
        equity = portfolio_value(conn, broker.account_id)
    assert invested == 150_000 and equity == 150_000
    assert total_return(equity, invested) == 0  # moving cash in and out is not a gain


def test_cli_deposit_withdraw_and_account_show_return(db_url, clock):
    runner = CliRunner()
    assert runner.invoke(cli, ["account", "create", "carol", "--cash", "1000", "--db", db_url]).exit_code == 0
    deposit = runner.invoke(cli, ["account", "deposit", "carol", "500", "--db", db_url])
    assert deposit.exit_code == 0, deposit.output
    refused = runner.invoke(cli, ["account", "withdraw", "carol", "2000", "--db", db_url])
    assert refused.exit_code != 0 and "refused" in refused.output
    assert runner.invoke(cli, ["account", "withdraw", "carol", "100", "--db", db_url]).exit_code == 0
    shown = runner.invoke(cli, ["account", "show", "carol", "--db", db_url]).output
    assert "1,400" in shown and "+0.00%" in shown.replace(" 0.00%", " +0.00%")


def test_report_return_and_drawdown_count_deposits_and_withdrawals_as_capital_not_gains(make_broker, db_url, clock):
    from ledger.reports import account_max_drawdown, equity_curve

    broker = make_broker(initial_cash=10_000, slippage_bps=0, fee_bps=0)
    broker.set_quote("AAPL", bid=100, ask=100)
    broker.submit_order("AAPL", "BUY", 10)
    clock.advance(seconds=60)
    broker.withdraw(5_000)  # not a loss
    clock.advance(seconds=60)
    broker.set_quote("AAPL", bid=90, ask=90)
    broker.submit_order("AAPL", "SELL", 10)  # a real loss of 100 on 10,000 of capital
    clock.advance(seconds=60)
    broker.deposit(20_000)  # not a gain

    curve = equity_curve(db_url, broker.account)
    assert [float(value) for value in curve["equity"]] == [10_000, 10_000, 5_000, 4_900, 24_900]
    # Net of flows the account went 25,000 -> 24,900: a 0.4% drawdown, not the 51% the raw curve shows.
    assert account_max_drawdown(db_url, broker.account) == Decimal("0.004")
    shown = CliRunner().invoke(cli, ["report", broker.account, "--db", db_url]).output
    assert "net deposits" in shown and "15,000.00" in shown
    assert "-0.40%" in shown  # return on 25,000 of capital: 24,900 / 25,000 - 1
