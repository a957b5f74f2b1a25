"""The v_* audit views: human units that equal the broker's own numbers, every epoch shown, on both engines.

Also home of ``populate_ledger``, the two-account scenario that the audit-query and report tests share
(described in docs/schema.md, "Ten audit queries").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from ledger.book.store import fills
from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine
from ledger.db.migrate import head_revision, migrate
from ledger.exceptions import InsufficientFundsError, OrderRejectedError

DAY1 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
DAY2 = datetime(2024, 1, 3, 15, 0, tzinfo=UTC)
DAY3 = datetime(2024, 1, 4, 16, 0, tzinfo=UTC)
VIEWS = {
    "v_accounts", "v_runs", "v_orders", "v_order_events", "v_fills", "v_positions", "v_cash_movements",
    "v_quotes", "v_daily_pnl",
}


@dataclass
class Scenario:
    alice: PaperBroker  # in its second run
    bob: PaperBroker
    alice_first_run: str


def populate_ledger(make_broker: Callable[..., Any], clock: Any) -> Scenario:
    """Alice trades over three days in two runs; Bob trades, resets, and trades again (see docs/schema.md)."""
    clock.current = DAY1
    alice = make_broker(account="alice", slippage_bps=10, fee_bps=10)
    alice.set_quote("AAPL", bid=99.90, ask=100.00)
    alice.set_quote("MSFT", bid=249.50, ask=250.00)
    alice.submit_order("AAPL", "BUY", 10)  # 100.10 x 10 = 1001, fee 1.001
    alice.submit_order("MSFT", "BUY", 4)  # 250.25 x 4 = 1001, fee 1.001
    alice.submit_order("AAPL", "BUY", 5, order_type="limit", limit_price=95, client_order_id="dip-buy-1")
    with pytest.raises(OrderRejectedError):
        alice.submit_order("AAPL", "SELL", 20)
    with pytest.raises(InsufficientFundsError):
        alice.submit_order("MSFT", "BUY", 10_000)
    bob = make_broker(account="bob", initial_cash=10_000, slippage_bps=0, fee_bps=0)
    bob.set_quote("MSFT", bid=249.50, ask=250.00)
    bob.submit_order("MSFT", "BUY", 10)  # 2500
    alice_first_run = alice.run_id
    alice.close()

    clock.current = DAY2
    alice = make_broker(account="alice", slippage_bps=5, fee_bps=1)
    alice.set_quote("AAPL", bid=110.00, ask=110.20)
    alice.submit_order("AAPL", "SELL", 4)  # 109.945 x 4 = 439.78, fee 0.043978, realized 38.935622
    bob.reset()
    bob.set_quote("AAPL", bid=110.00, ask=110.20)
    bob.submit_order("AAPL", "BUY", 5)  # 551
    bob.submit_order("AAPL", "BUY", 1, order_type="limit", limit_price=100, client_order_id="bob-dip")

    clock.current = DAY3
    alice.set_quote("AAPL", bid=94.00, ask=94.50)  # fills dip-buy-1 at 94.5945 with its own 10 bps fee
    alice.submit_order(
        "MSFT", "SELL", 2, order_type="limit", limit_price=300, client_order_id="msft-take-profit"
    )
    assert alice.verify() == [] and bob.verify() == []
    return Scenario(alice, bob, alice_first_run)


@pytest.fixture
def scenario(make_broker: Callable[..., Any], clock: Any) -> Scenario:
    return populate_ledger(make_broker, clock)


def view_rows(db_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    with get_engine(db_url).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def as_utc(value: datetime | str) -> datetime:
    """A view's time: timestamptz on PostgreSQL, ISO-8601 text on SQLite."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def six(value: Decimal) -> str:
    return f"{value:.6f}"


def test_upgrade_creates_every_view_and_downgrade_drops_them(db_url, broker):
    engine = get_engine(db_url)
    assert VIEWS <= set(inspect(engine).get_view_names())
    migrate(engine, "downgrade", "0001")
    assert set(inspect(engine).get_view_names()) & VIEWS == set()
    migrate(engine, "upgrade", head_revision())
    assert VIEWS <= set(inspect(engine).get_view_names())


def test_v_fills_equal_the_brokers_fills_in_human_units(scenario, db_url):
    broker_fills = scenario.alice.get_fills()
    rows = view_rows(db_url, "SELECT * FROM v_fills WHERE account = 'alice' ORDER BY fill_id")
    with get_engine(db_url).connect() as conn:
        stored = conn.execute(
            select(fills).where(fills.c.account_id == scenario.alice.account_id).order_by(fills.c.id)
        ).all()
    assert len(rows) == len(broker_fills) == len(stored) == 4
    for row, fill, exact in zip(rows, broker_fills, stored):
        assert row["order_id"] == fill["order_id"]  # the public id, not the integer key
        assert row["run_id"] == fill["run_id"]
        assert (row["symbol"], row["side"]) == (fill["symbol"], fill["side"])
        same_names = ("qty", "notional", "fee", "realized_pnl", "quote_bid", "quote_ask")
        for column in (*same_names, "slippage_bps", "fee_bps"):
            assert float(row[column]) == fill[column], column  # the very double the broker returns
        assert float(row["price"]) == fill["fill_price"]
        for column in ("qty", "price", "notional", "fee", "realized_pnl", "quote_bid", "quote_ask"):
            assert row[f"{column}_exact"] == six(getattr(exact, f"{column}_e6")), column
        sign = -1 if fill["side"] == "BUY" else 1
        assert row["cash_delta_exact"] == six(sign * exact.notional_e6 - exact.fee_e6)
        assert as_utc(row["filled_at"]) == datetime.fromisoformat(fill["timestamp"])
    assert [float(row["slippage_cost"]) for row in rows] == [1.0, 1.0, 0.22, 0.4725]


def test_exact_text_keeps_the_sign_of_amounts_between_minus_one_and_zero(broker, db_url):
    broker.submit_order("AAPL", "BUY", 0.003)  # 0.003 x 150.175050 = 0.450525, fee 0.000045
    (movement,) = view_rows(db_url, "SELECT amount, amount_exact FROM v_cash_movements WHERE kind = 'fill'")
    (fill,) = view_rows(db_url, "SELECT qty_exact, cash_delta_exact, fee_exact FROM v_fills")
    assert movement["amount_exact"] == fill["cash_delta_exact"] == "-0.450570"
    assert float(movement["amount"]) == -0.45057
    assert (fill["qty_exact"], fill["fee_exact"]) == ("0.003000", "0.000045")


def test_v_accounts_and_v_positions_equal_the_brokers_balances(scenario, db_url):
    account = scenario.alice.get_account()
    (row,) = view_rows(db_url, "SELECT * FROM v_accounts WHERE account = 'alice'")
    assert (row["cash_exact"], row["reserved_cash_exact"], row["available_cash_exact"]) == (
        "97962.288550", "0.000000", "97962.288550",
    )
    for column in ("cash", "reserved_cash", "available_cash", "initial_cash"):
        assert float(row[column]) == account[column], column
    assert float(row["equity"]) == pytest.approx(account["equity"], abs=1e-9)
    assert (row["epoch"], row["open_positions"], row["resting_orders"]) == (1, 2, 1)

    rows = view_rows(db_url, "SELECT * FROM v_positions WHERE account = 'alice'")
    positions = {r["symbol"]: r for r in rows}
    assert {symbol: float(r["qty"]) for symbol, r in positions.items()} == scenario.alice.get_positions()
    aapl, msft = positions["AAPL"], positions["MSFT"]
    assert (aapl["cost_basis_exact"], aapl["realized_pnl_exact"]) == ("1074.646072", "38.935622")
    assert float(aapl["mark_price"]) == 94.25
    assert float(aapl["market_value"]) == 1036.75  # 11 x 94.25
    assert float(aapl["unrealized_pnl"]) == pytest.approx(1036.75 - 1074.646072, abs=1e-9)
    assert float(aapl["avg_cost"]) == pytest.approx(1074.646072 / 11, rel=1e-12)
    assert (msft["qty_exact"], msft["reserved_qty_exact"], msft["available_qty_exact"]) == (
        "4.000000", "2.000000", "2.000000",
    )
    assert float(row["cash"]) + sum(float(r["market_value"]) for r in positions.values()) == pytest.approx(
        float(row["equity"]), abs=1e-9
    )


def test_v_daily_pnl_sums_each_days_fills_per_symbol(scenario, db_url):
    rows = view_rows(
        db_url,
        "SELECT day, symbol, fill_count, bought_qty_exact, sold_qty_exact, bought_notional_exact, "
        "sold_notional_exact, fees_exact, realized_pnl_exact, net_cash_exact "
        "FROM v_daily_pnl WHERE account = 'alice' ORDER BY day, symbol",
    )
    days = [(str(r.pop("day")), r.pop("symbol")) for r in rows]
    assert days == [
        ("2024-01-02", "AAPL"), ("2024-01-02", "MSFT"), ("2024-01-03", "AAPL"), ("2024-01-04", "AAPL"),
    ]
    assert [tuple(r.values()) for r in rows] == [
        (1, "10.000000", "0.000000", "1001.000000", "0.000000", "1.001000", "0.000000", "-1002.001000"),
        (1, "4.000000", "0.000000", "1001.000000", "0.000000", "1.001000", "0.000000", "-1002.001000"),
        (1, "0.000000", "4.000000", "0.000000", "439.780000", "0.043978", "38.935622", "439.736022"),
        (1, "5.000000", "0.000000", "472.972500", "0.000000", "0.472972", "0.000000", "-473.445472"),
    ]
    # Net cash over all days is the whole change of cash since the deposit.
    total = sum(Decimal(r["net_cash_exact"]) for r in rows)
    assert Decimal(100_000) + total == Decimal(str(scenario.alice.get_cash()))


def test_views_show_every_epoch_and_flag_the_current_one(scenario, db_url):
    fills_by_epoch = view_rows(
        db_url,
        "SELECT epoch, is_current_epoch, symbol, qty_exact FROM v_fills "
        "WHERE account = 'bob' ORDER BY fill_id",
    )
    flagged = [(r["epoch"], bool(r["is_current_epoch"]), r["symbol"], r["qty_exact"]) for r in fills_by_epoch]
    assert flagged == [
        (1, False, "MSFT", "10.000000"),
        (2, True, "AAPL", "5.000000"),
    ]
    current_only = view_rows(
        db_url, "SELECT symbol FROM v_positions WHERE account = 'bob' AND is_current_epoch"
    )
    assert current_only == [{"symbol": "AAPL"}]
    balances = view_rows(
        db_url,
        "SELECT epoch, kind, balance_exact FROM v_cash_movements WHERE account = 'bob' ORDER BY movement_id",
    )
    assert [tuple(r.values()) for r in balances] == [
        (1, "initial", "10000.000000"),
        (1, "fill", "7500.000000"),
        (2, "initial", "10000.000000"),
        (2, "fill", "9449.000000"),
    ]
    assert float(balances[-1]["balance_exact"]) == scenario.bob.get_cash()


def test_view_times_are_utc(scenario, db_url, engine_name):
    (row,) = view_rows(
        db_url, "SELECT filled_at, quote_at FROM v_fills WHERE account = 'alice' AND side = 'SELL'"
    )
    if engine_name == "sqlite":
        assert row["filled_at"] == "2024-01-03T15:00:00.000000Z"
    else:
        assert row["filled_at"].utcoffset().total_seconds() == 0
    assert as_utc(row["filled_at"]) == as_utc(row["quote_at"]) == DAY2
    (day,) = view_rows(
        db_url, "SELECT DISTINCT day FROM v_daily_pnl WHERE account = 'alice' AND sold_qty > 0"
    )
    assert str(day["day"]) == "2024-01-03"


def test_v_orders_and_v_quotes_use_public_ids_and_human_prices(scenario, db_url):
    resting = view_rows(
        db_url, "SELECT order_id, limit_price_exact, reserved_qty_exact FROM v_orders "
        "WHERE account = 'alice' AND status = 'new'"
    )
    (take_profit,) = [o for o in scenario.alice.get_orders(status="new")]
    assert resting == [
        {
            "order_id": take_profit["order_id"],
            "limit_price_exact": "300.000000",
            "reserved_qty_exact": "2.000000",
        }
    ]
    (quote,) = view_rows(
        db_url, "SELECT bid, ask, mid, spread_bps FROM v_quotes WHERE account = 'alice' AND symbol = 'AAPL'"
    )
    expected = scenario.alice.get_quote("AAPL")
    assert (float(quote["bid"]), float(quote["ask"]), float(quote["mid"])) == (94.0, 94.5, 94.25)
    assert float(quote["spread_bps"]) == pytest.approx(expected["spread_bps"], rel=1e-12)
