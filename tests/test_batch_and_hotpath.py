"""submit_orders(): a batch in one transaction, all or nothing, on the same code path as single submits;
and the benchmark harness still runs end to end (quick mode; timings are never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import event, text

from ledger.db.engine import get_engine
from ledger.exceptions import ClientOrderIdConflictError, InsufficientFundsError, OrderRejectedError

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("orders", "order_events", "fills", "cash_movements", "positions")


def row_counts(db_url: str) -> dict[str, int]:
    with get_engine(db_url).connect() as conn:
        return {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one() for table in TABLES}


def count_commits(db_url: str) -> list[int]:
    """A counter of the engine's COMMITs from now on (the list's single item)."""
    commits = [0]

    def on_commit(_conn: object) -> None:
        commits[0] += 1

    event.listen(get_engine(db_url), "commit", on_commit)
    return commits


def test_batch_fills_every_order_in_one_transaction_each_seeing_the_orders_before_it(broker):
    broker.set_quote("MSFT", bid=400.0, ask=400.2)
    commits = count_commits(broker.db_url)
    results = broker.submit_orders([
        {"symbol": "AAPL", "side": "BUY", "qty": 100},
        {"symbol": "AAPL", "side": "SELL", "qty": 40},  # only possible with the shares bought just before
        {"symbol": "msft", "side": "buy", "qty": 10},
        {"symbol": "AAPL", "side": "BUY", "qty": 5, "order_type": "limit", "limit_price": 140.0},
    ])
    assert commits == [1]
    assert [r["status"] for r in results] == ["filled", "filled", "filled", "new"]
    assert broker.get_positions() == {"AAPL": 60.0, "MSFT": 10.0}
    fills = broker.get_fills()
    assert [f["order_id"] for f in fills] == [r["order_id"] for r in results[:3]]
    assert [f["fill_price"] for f in fills] == [r["fill_price"] for r in results[:3]]
    assert broker.get_account()["reserved_cash"] == pytest.approx(5 * 140.0 * 1.0001)
    assert broker.verify() == []


def test_batch_prices_exactly_like_the_same_orders_submitted_one_by_one(make_broker, broker):
    orders = [
        {"symbol": "AAPL", "side": "BUY", "qty": 33},
        {"symbol": "AAPL", "side": "SELL", "qty": 7},
        {"symbol": "AAPL", "side": "BUY", "qty": 1.5, "order_type": "limit", "limit_price": 151.0},
    ]
    batched = broker.submit_orders(orders)
    single = make_broker(account="one-by-one")
    single.set_quote("AAPL", bid=150.0, ask=150.10)
    one_by_one = [single.submit_order(**order) for order in orders]
    keys = ("status", "qty", "fill_price", "notional", "fee", "filled_qty")
    assert [[r[k] for k in keys] for r in batched] == [[r[k] for k in keys] for r in one_by_one]
    assert broker.get_cash() == single.get_cash()
    assert broker.get_positions() == single.get_positions()
    assert broker.verify() == [] and single.verify() == []


@pytest.mark.parametrize(
    ("last_order", "error", "reason"),
    [
        ({"symbol": "AAPL", "side": "SELL", "qty": 500}, OrderRejectedError, "Insufficient shares"),
        ({"symbol": "AAPL", "side": "BUY", "qty": 500}, InsufficientFundsError, "Insufficient cash"),
        ({"symbol": "NOQUOTE", "side": "BUY", "qty": 1}, OrderRejectedError, "No quote"),
        ({"symbol": "AAPL", "side": "BUY", "qty": -3}, OrderRejectedError, "Invalid quantity"),
        ({"symbol": "AAPL", "side": "HOLD", "qty": 3}, OrderRejectedError, "Invalid side"),
        ({"symbol": "AAPL", "side": "BUY", "qty": 3, "limt_price": 1.0}, OrderRejectedError, "limt_price"),
    ],
)
def test_a_bad_order_at_the_end_of_a_batch_rejects_the_whole_batch_and_writes_nothing(
    broker, last_order, error, reason
):
    broker.submit_order("AAPL", "BUY", 100)
    before = row_counts(broker.db_url)
    cash, positions = broker.get_cash(), broker.get_positions()
    batch = [{"symbol": "AAPL", "side": "BUY", "qty": 200}, {"symbol": "AAPL", "side": "SELL", "qty": 100}, last_order]
    with pytest.raises(error, match=reason) as raised:
        broker.submit_orders(batch)
    assert "batch order #2" in str(raised.value)
    assert raised.value.index == 2
    assert row_counts(broker.db_url) == before
    assert (broker.get_cash(), broker.get_positions()) == (cash, positions)
    assert broker.verify() == []


def test_a_client_order_id_repeated_inside_a_batch_replays_the_first_and_fills_once(broker):
    results = broker.submit_orders([
        {"symbol": "AAPL", "side": "BUY", "qty": 10, "client_order_id": "rebal-1-AAPL"},
        {"symbol": "AAPL", "side": "BUY", "qty": 10, "client_order_id": "rebal-1-AAPL"},
    ])
    assert results[1]["order_id"] == results[0]["order_id"]
    assert [r["replayed"] for r in results] == [False, True]
    assert results[1]["fill_price"] == results[0]["fill_price"]
    assert len(broker.get_fills()) == 1 and broker.get_positions() == {"AAPL": 10.0}

    again = broker.submit_orders([{"symbol": "AAPL", "side": "BUY", "qty": 10, "client_order_id": "rebal-1-AAPL"}])
    assert again[0]["order_id"] == results[0]["order_id"] and again[0]["replayed"] is True
    before = row_counts(broker.db_url)
    with pytest.raises(ClientOrderIdConflictError, match="batch order #1"):
        broker.submit_orders([
            {"symbol": "AAPL", "side": "BUY", "qty": 1},
            {"symbol": "AAPL", "side": "BUY", "qty": 11, "client_order_id": "rebal-1-AAPL"},
        ])
    assert row_counts(broker.db_url) == before
    assert broker.verify() == []


def test_an_empty_batch_does_nothing(broker):
    before = row_counts(broker.db_url)
    assert broker.submit_orders([]) == []
    assert row_counts(broker.db_url) == before


def test_resting_orders_from_a_batch_fill_in_the_quote_update_that_crosses_them(broker):
    broker.submit_orders([{"symbol": "AAPL", "side": "BUY", "qty": 10}])
    resting = broker.submit_orders(
        [{"symbol": "AAPL", "side": "BUY", "qty": 2, "order_type": "limit", "limit_price": 149.0}] * 3
        + [{"symbol": "AAPL", "side": "SELL", "qty": 4, "order_type": "limit", "limit_price": 160.0}]
    )
    assert [r["status"] for r in resting] == ["new"] * 4
    commits = count_commits(broker.db_url)
    fills = broker.set_quote("AAPL", bid=148.5, ask=148.9)
    assert commits == [1]
    assert [f["order_id"] for f in fills] == [r["order_id"] for r in resting[:3]]  # oldest first
    assert all(f["fill_price"] <= 149.0 for f in fills)
    assert broker.get_positions() == {"AAPL": 16.0}
    assert broker.get_account()["reserved_cash"] == 0
    assert broker.verify() == []


@pytest.mark.engines("sqlite")  # once is enough: the harness measures both engines itself (its own PG server)
def test_benchmark_smoke():
    """The harness's quick mode runs end to end and prints every row of its table (numbers not checked)."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    expected = [
        "| market order, 1 tx each, SQLite", "| submit_orders():", "| quote update filling",
        "| open a ledger of", "| audit on", "| export", "| market order, 1 tx each, PostgreSQL",
        "| service load, sqlite, 1 worker(s)",
        "| quote, set_quote:", "| quote, set_quotes:", "| replay 5 x 60 daily bars",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in table), f"no row {start!r} in:\n" + "\n".join(table)
    assert sum(line.startswith("| audit on") for line in table) == 3
    market = [line for line in table if line.startswith("| market order, 1 tx each, SQLite")]
    assert [row.split(" | ")[0].rsplit(" vs ", 1)[1] for row in market] == ["floor (same schema)", "minimal floor", "seed"]
    assert all("/order" in row.split(" | ")[1] and "WAL" in row for row in market[:2]), "WAL bytes per order beside the time"
    assert "QUERY PLAN" in completed.stdout
