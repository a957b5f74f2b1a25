"""Accounts, runs and reset: created on first use, resumed on reopen, reset without destroying history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.book.store import fills, orders, runs
from ledger.db.engine import get_engine
from ledger.exceptions import AccountMismatchError, LedgerError


def count(db_url: str, table, *where) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_reopening_resumes_the_account(make_broker, broker):
    broker.submit_order("AAPL", "BUY", 10)
    cash = broker.get_cash()
    broker.close()
    reopened = make_broker(initial_cash=None)
    assert reopened.get_cash() == cash
    assert reopened.get_positions() == {"AAPL": 10.0}
    assert reopened.get_quote("AAPL")["ask"] == 150.10  # quotes survive restarts too


def test_initial_cash_that_differs_from_the_stored_one_raises(make_broker, broker):
    with pytest.raises(AccountMismatchError, match="initial cash 100000"):
        make_broker(initial_cash=50_000)


def test_each_broker_opens_a_run_and_orders_record_it(make_broker, broker, db_url):
    broker.submit_order("AAPL", "BUY", 1)
    second = make_broker()
    second.submit_order("AAPL", "BUY", 1)
    assert broker.run_id != second.run_id
    assert count(db_url, orders, orders.c.run_id == broker.run_id) == 1
    assert count(db_url, fills, fills.c.run_id == second.run_id) == 1


def test_close_ends_the_run_and_run_id_resumes_it(make_broker, db_url, clock):
    with make_broker(slippage_bps=7, fee_bps=2) as b:
        run_id = b.run_id
        b.set_quote("AAPL", bid=150.0, ask=150.1)
        b.submit_order("AAPL", "BUY", 1)  # the run's row is written with its first order
        clock.advance(minutes=5)
    with get_engine(db_url).connect() as conn:
        ended = conn.execute(select(runs.c.ended_at).where(runs.c.id == run_id)).scalar_one()
    assert ended == clock()
    resumed = make_broker(run_id=run_id)
    assert (resumed.slippage_bps, resumed.fee_bps) == (7.0, 2.0)  # the run's settings stay in force
    with get_engine(db_url).connect() as conn:
        assert conn.execute(select(runs.c.ended_at).where(runs.c.id == run_id)).scalar_one() is None
    with pytest.raises(AccountMismatchError, match="slippage_bps"):
        make_broker(run_id=run_id, slippage_bps=1)


def test_unknown_run_id_raises(make_broker, broker):
    with pytest.raises(LedgerError, match="does not exist"):
        make_broker(run_id="nope")


def test_closed_broker_refuses_calls(make_broker):
    b = make_broker()
    b.close()
    b.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        b.get_cash()


def test_reset_starts_afresh_but_keeps_history(broker, db_url):
    buy = broker.submit_order("AAPL", "BUY", 10)
    resting = broker.submit_order("AAPL", "BUY", 1, "limit", 100.0)
    broker.reset()
    assert broker.get_cash() == 100_000
    assert broker.get_positions() == {}
    assert broker.get_fills() == [] and broker.get_orders() == []
    assert broker.get_account()["epoch"] == 2 and broker.get_account()["reserved_cash"] == 0.0
    # history is still there, under epoch 1
    assert broker.get_order(buy["order_id"])["epoch"] == 1
    assert broker.get_order(resting["order_id"])["status"] == "canceled"
    assert count(db_url, fills) == 1
    assert broker.verify() == []


def test_reset_with_new_initial_cash(make_broker, broker):
    broker.reset(initial_cash=250_000)
    assert broker.get_cash() == 250_000
    assert broker.get_account()["initial_cash"] == 250_000
    with pytest.raises(AccountMismatchError):
        make_broker(initial_cash=100_000)
    assert make_broker(initial_cash=250_000).get_cash() == 250_000


def test_reset_of_a_resting_sell_releases_the_shares(broker):
    broker.submit_order("AAPL", "BUY", 10)
    broker.submit_order("AAPL", "SELL", 10, "limit", 500.0)
    broker.reset()
    assert broker.verify() == []


def test_accounts_are_independent(make_broker, broker):
    other = make_broker(account="other", initial_cash=5_000)
    broker.submit_order("AAPL", "BUY", 10)
    assert other.get_cash() == 5_000
    assert other.get_positions() == {}
    with pytest.raises(Exception, match="No quote"):
        other.submit_order("AAPL", "BUY", 1)  # quotes are per account


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, 5, None])
def test_bad_account_names_are_refused(make_broker, bad):
    with pytest.raises(ValueError, match="account name"):
        make_broker(account=bad)


def _run_ids(db_url: str) -> set[str]:
    with get_engine(db_url).connect() as conn:
        return set(conn.execute(select(runs.c.id)).scalars())


def test_calls_that_fail_or_write_no_order_fill_or_cash_leave_no_run(make_broker, db_url):
    from ledger.exceptions import InvalidQuoteError, OrderNotFoundError

    b = make_broker()
    b.set_quote("AAPL", bid=150.0, ask=150.1)  # a quote without fills refers to no run
    with pytest.raises(InvalidQuoteError):
        b.set_quote("BAD SYMBOL!", bid=1, ask=1)
    with pytest.raises(OrderNotFoundError):
        b.cancel_order("0" * 32)
    with pytest.raises(ValueError):
        b.reset(initial_cash=-1)
    b.close()
    assert _run_ids(db_url) == set()


def test_the_run_is_written_with_its_first_order_and_its_id_is_stable(make_broker, db_url):
    from ledger.exceptions import ClientOrderIdConflictError, OrderNotFoundError

    b = make_broker()
    run_id = b.run_id
    b.set_quote("AAPL", bid=150.0, ask=150.1)
    resting = b.submit_order("AAPL", "BUY", 1, "limit", 100.0, client_order_id="x")
    assert _run_ids(db_url) == {run_id} and b.run_id == run_id
    b.cancel_order(resting["order_id"])
    with pytest.raises(ClientOrderIdConflictError):  # a conflict with a live id writes nothing: no second run
        other = make_broker(initial_cash=None)
        other.submit_order("AAPL", "BUY", 1, "limit", 100.0, client_order_id="y")
        other.submit_order("AAPL", "BUY", 2, "limit", 100.0, client_order_id="y")
    third = make_broker(initial_cash=None)
    with pytest.raises(OrderNotFoundError):
        third.cancel_order(resting["order_id"][::-1])
    third.cancel_order(resting["order_id"])  # already canceled: reports, writes nothing
    third.close()
    assert third.run_id not in _run_ids(db_url)


def test_a_reset_writes_the_run_and_close_ends_it(make_broker, db_url, clock):
    b = make_broker()
    b.reset()
    clock.advance(seconds=1)
    b.close()
    with get_engine(db_url).connect() as conn:
        row = conn.execute(select(runs.c.started_at, runs.c.ended_at).where(runs.c.id == b.run_id)).one()
    assert row.ended_at > row.started_at
