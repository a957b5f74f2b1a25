"""Concurrent writers: several real processes trading one ledger at the same moment lose nothing and never fail.

Four ``python`` children (tests/workers/concurrent_trader.py) are released together through their stdin and
each submits 500 orders (market and limit, with quote updates that cross anyone's resting limits, and cancels),
on one shared account and on one account each. Every fill a child's calls produced is reported back; from those
alone this test recomputes cash and positions and requires the ledger to match exactly: a lost update, a fill
written twice or a fill never reported shows up here. Workers let only order rejections pass, so an unhandled
"database is locked" fails the test. Cash must never have been below zero at any commit.

To see these tests fail without the up-front write lock (``BEGIN IMMEDIATE`` / ``SELECT ... FOR UPDATE``):
``LEDGER_UNSAFE_DEFERRED_BEGIN=1 python -m pytest tests/test_concurrency.py`` (the switch lives in the worker).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import text

from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine, read_transaction
from tests.conftest import ledger_problems
from tests.workers.concurrent_trader import INITIAL_CASH, SHARED_CLIENT_IDS, START_MID
from tests.workers.harness import Child, start_together

PROCESSES = 4
ORDERS_PER_PROCESS = 500


def dec(value: float) -> Decimal:
    return Decimal(repr(value))


def run_workers(db_url: str, accounts: list[str], mode: str, *, precreate: bool) -> list[dict]:
    """Start one worker per account name, release them together, return their results (all must exit 0).

    The schema exists before the race (creating it concurrently is tests/test_migrations.py's subject);
    ``precreate`` also creates the accounts and their quotes first, so the race is about trading alone.
    """
    PaperBroker(db_url=db_url, account="setup", initial_cash=1).close()
    for account in set(accounts) if precreate else ():
        with PaperBroker(db_url=db_url, account=account, initial_cash=INITIAL_CASH) as broker:
            for symbol, mid in START_MID.items():
                broker.set_quote(symbol, bid=mid - 0.05, ask=mid + 0.05)
    children = [
        Child("concurrent_trader", db_url, account, str(index), str(ORDERS_PER_PROCESS), str(1000 + index), mode)
        for index, account in enumerate(accounts)
    ]
    try:
        start_together(children)
        if mode == "same-client-id":
            for _ in range(SHARED_CLIENT_IDS):  # release all four for each shared id
                start_together(children)
        return [child.finish() for child in children]
    finally:
        for child in children:
            child.close()


def cash_history(db_url: str, account: str) -> list[Decimal]:
    """The account's cash after each movement, in the order they were written (= commit order under the lock)."""
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        amounts = conn.execute(
            text(
                "SELECT m.amount_e6 FROM cash_movements m JOIN accounts a ON a.id = m.account_id "
                "WHERE a.name = :name AND m.epoch = a.epoch ORDER BY m.id"
            ),
            {"name": account},
        ).scalars()
        running, history = 0, []
        for amount in amounts:
            running += amount
            history.append(Decimal(running).scaleb(-6))
        return history


def assert_account_reconciles(db_url: str, account: str, reported_fills: list[dict], orders_submitted: int) -> None:
    """Cash, positions, fills and order count of ``account`` equal what the workers were told, exactly."""
    reported = Counter(fill["order_id"] for fill in reported_fills)
    assert [order_id for order_id, times in reported.items() if times > 1] == [], "an order was filled twice"
    expected_cash = Decimal(INITIAL_CASH)
    expected_positions: Counter[str] = Counter()
    for fill in reported_fills:
        if fill["side"] == "BUY":
            expected_cash -= dec(fill["notional"]) + dec(fill["fee"])
            expected_positions[fill["symbol"]] += dec(fill["qty"])
        else:
            expected_cash += dec(fill["notional"]) - dec(fill["fee"])
            expected_positions[fill["symbol"]] -= dec(fill["qty"])
    with PaperBroker(db_url=db_url, account=account) as broker:
        stored = {fill["order_id"]: fill for fill in broker.get_fills()}
        assert set(stored) == set(reported), "the ledger's fills differ from the fills the workers were given"
        for fill in reported_fills:
            mine = stored[fill["order_id"]]
            assert (mine["side"], dec(mine["qty"]), dec(mine["notional"]), dec(mine["fee"])) == (
                fill["side"], dec(fill["qty"]), dec(fill["notional"]), dec(fill["fee"])
            )
        assert dec(broker.get_cash()) == expected_cash, "cash differs from initial cash + the reported fills"
        assert {symbol: dec(qty) for symbol, qty in broker.get_positions().items()} == {
            symbol: qty for symbol, qty in expected_positions.items() if qty
        }
        assert len(broker.get_orders()) == orders_submitted, "every submit_order call must be exactly one order row"
        assert broker.verify() == []
    history = cash_history(db_url, account)
    assert history[-1] == expected_cash
    assert min(history) >= 0, "cash was below zero after some commit"


@pytest.mark.slow
def test_four_processes_trading_one_account_lose_no_update(db_url: str) -> None:
    results = run_workers(db_url, ["shared"] * PROCESSES, "mixed", precreate=True)

    fills = [fill for result in results for fill in result["fills"]]
    assert_account_reconciles(db_url, "shared", fills, PROCESSES * ORDERS_PER_PROCESS)
    statuses = sum((Counter(result["statuses"]) for result in results), Counter())
    # The contention is real: all workers traded, and the shared cash ran short for some of them.
    assert statuses["filled"] > 0 and statuses["new"] > 0 and statuses["rejected"] > 0
    assert all(Decimal(result["lowest_cash"]) >= 0 for result in results)
    assert ledger_problems(db_url) == []


@pytest.mark.slow
def test_four_processes_trading_separate_accounts_keep_each_account_exact(db_url: str) -> None:
    accounts = [f"account-{index}" for index in range(PROCESSES)]
    results = run_workers(db_url, accounts, "mixed", precreate=True)

    for account, result in zip(accounts, results, strict=True):
        assert_account_reconciles(db_url, account, result["fills"], ORDERS_PER_PROCESS)
    assert ledger_problems(db_url) == []


def test_same_client_order_id_from_four_processes_at_once_yields_one_order(db_url: str) -> None:
    # The workers also race to create the account and its quotes here.
    results = run_workers(db_url, ["shared"] * PROCESSES, "same-client-id", precreate=False)

    for number in range(SHARED_CLIENT_IDS):
        client_order_id = f"shared-{number}"
        answers = [result["answers"][client_order_id] for result in results]
        assert len({answer["order_id"] for answer in answers}) == 1, f"{client_order_id} became several orders"
        assert sorted(answer["replayed"] for answer in answers) == [False] + [True] * (PROCESSES - 1)
    fills = [fill for result in results for fill in result["fills"]]
    assert len(fills) == SHARED_CLIENT_IDS
    assert_account_reconciles(db_url, "shared", fills, SHARED_CLIENT_IDS)
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        per_client_id = conn.execute(
            text("SELECT client_order_id, COUNT(*) FROM orders GROUP BY client_order_id HAVING COUNT(*) > 1")
        ).all()
    assert per_client_id == []
