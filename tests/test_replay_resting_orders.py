"""The replay with resting orders (``sma-stops``: a gtc stop-loss after each entry, canceled by the crossover's
exit): killed at random points and resumed, it ends exactly where an uninterrupted run ends, resting orders
(their statuses, triggers and fills) included."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from ledger.book.store import find_account
from ledger.db.engine import get_engine, read_transaction
from ledger.queries import fills_stmt, orders_stmt, position_rows
from tests.conftest import ledger_problems
from tests.test_replay import (  # noqa: F401 - fixtures
    ROOT,
    Interrupted,
    bars,
    bars_file,
    interrupt_on_call,
    reference_db_url,
    replay_arguments,
    replay_in_process,
    run_until_bar_then_kill,
)

STRATEGY = "sma-stops"
KILLS = 3


def ledger_book(db_url: str) -> dict:
    """Every order with its status, type, stop, fill and times; every fill; cash; positions (exact Decimals)."""
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        state = find_account(conn, "kill")
        assert state is not None
        return {
            "cash": state.cash,
            "reserved_cash": state.reserved_cash,
            "positions": {
                row.symbol: (row.qty_e6, row.reserved_qty_e6, row.cost_basis_e6, row.realized_pnl_e6)
                for row in position_rows(conn, state.id, include_flat=True)
            },
            "orders": sorted(
                (row.client_order_id, row.order_type, row.status, row.qty_e6, row.stop_price_e6, row.filled_qty_e6,
                 row.filled_avg_price_e6, row.triggered_at, row.filled_at, row.canceled_at)
                for row in conn.execute(orders_stmt(state.id))
            ),
            "fills": [
                (row.filled_at, row.symbol, row.side, row.qty_e6, row.price_e6, row.fee_e6, row.realized_pnl_e6)
                for row in conn.execute(fills_stmt(state.id))
            ],
        }


def test_sma_stops_leaves_stop_losses_that_rest_fill_and_get_canceled(db_url, bars):
    replay_in_process(db_url, bars, STRATEGY)
    orders = ledger_book(db_url)["orders"]
    outcomes = {(order_type, status) for _, order_type, status, *_ in orders}
    assert {("stop", "filled"), ("stop", "canceled"), ("market", "filled")} <= outcomes, outcomes
    assert all(client_id.endswith((":BUY", ":SELL")) for client_id, *_ in orders)
    assert ledger_problems(db_url) == []


def test_sma_stops_killed_at_random_points_resumes_to_the_state_of_an_uninterrupted_run(
    db_url, reference_db_url, bars_file, bars, tmp_path, engine_name
):
    rng = random.Random(f"replay-stops-{engine_name}")
    arguments = [*replay_arguments(db_url, bars_file), "--strategy", STRATEGY]
    for kill_at in sorted(rng.sample(range(32, 148), KILLS)):
        run_until_bar_then_kill(arguments, kill_at, tmp_path)
        assert ledger_problems(db_url) == []
    finished = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert "resuming at bar" in finished.stdout

    replay_in_process(reference_db_url, bars, STRATEGY)
    assert ledger_book(db_url) == ledger_book(reference_db_url)
    assert ledger_problems(db_url) == [] and ledger_problems(reference_db_url) == []


@pytest.mark.parametrize(
    ("method", "call", "after"),
    [
        ("cancel_order", 1, True),  # the exit's stop canceled in its bar's transaction, dies before the exit's sell
        ("cancel_order", 3, False),  # dies just before canceling a stop
        ("set_quotes", 44, True),  # a bar's quotes stored (maybe filling a stop), its orders not decided yet
        ("set_quotes", 84, True),
        ("transaction", 44, True),  # a bar committed, the process dies before the next
        ("transaction", 84, True),
    ],
)
def test_sma_stops_interrupted_at_a_precise_point_resumes_exactly(
    db_url, reference_db_url, bars, monkeypatch, method, call, after
):
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, method, call, after)
        with pytest.raises(Interrupted):
            replay_in_process(db_url, bars, STRATEGY)
    replay_in_process(db_url, bars, STRATEGY)
    replay_in_process(reference_db_url, bars, STRATEGY)
    assert ledger_book(db_url) == ledger_book(reference_db_url)
    assert ledger_problems(db_url) == []
