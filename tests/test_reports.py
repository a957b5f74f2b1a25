"""ledger.reports: fills, orders, positions and equity frames with fixed dtypes and the ledger's numbers."""

from __future__ import annotations

import math
from decimal import Decimal
from datetime import datetime

import pandas as pd
import pytest

from ledger import reports
from ledger.db.engine import get_engine, read_transaction
from ledger.exceptions import LedgerError
from tests.test_views import DAY1, DAY2, DAY3, populate_ledger


@pytest.fixture
def scenario(make_broker, clock):
    return populate_ledger(make_broker, clock)


def assert_utc_times(frame: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        assert frame[column].dtype == "datetime64[us, UTC]", column


def assert_floats(frame: pd.DataFrame, *columns: str) -> None:
    for column in columns:
        assert frame[column].dtype == "float64", column


def test_fills_frame_has_the_brokers_fills_with_fixed_dtypes(scenario, db_url):
    frame = reports.fills_frame(db_url, "alice")
    fills = scenario.alice.get_fills()

    assert list(frame["order_id"]) == [fill["order_id"] for fill in fills]
    assert list(frame["price"]) == [fill["fill_price"] for fill in fills]
    assert list(frame["fee"]) == [fill["fee"] for fill in fills]
    assert list(frame["realized_pnl"]) == [0.0, 0.0, 38.935622, 0.0]
    assert list(frame["filled_at"]) == [pd.Timestamp(day) for day in (DAY1, DAY1, DAY2, DAY3)]
    assert_utc_times(frame, "filled_at", "quote_at")
    assert_floats(frame, "qty", "price", "notional", "fee", "realized_pnl", "quote_bid", "quote_ask")
    assert_floats(frame, "slippage_bps", "fee_bps")
    assert isinstance(frame["symbol"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["side"].dtype, pd.CategoricalDtype)
    assert frame["order_id"].dtype == "string" and frame["run_id"].dtype == "string"
    assert frame["epoch"].dtype == "int64"


def test_fills_frame_filters_by_time_and_symbol_and_keeps_dtypes_when_empty(scenario, db_url):
    since = reports.fills_frame(db_url, "alice", since=DAY2)
    assert list(since["side"]) == ["SELL", "BUY"]
    assert list(reports.fills_frame(db_url, "alice", symbol="MSFT")["qty"]) == [4.0]
    empty = reports.fills_frame(db_url, "alice", symbol="TSLA")
    full = reports.fills_frame(db_url, "alice")
    assert empty.empty and list(empty.columns) == list(full.columns)
    for column in full.columns:
        assert type(empty[column].dtype) is type(full[column].dtype), column
    with pytest.raises(ValueError, match="timezone-aware"):
        reports.fills_frame(db_url, "alice", since=datetime(2024, 1, 3))


def test_frames_cover_the_current_epoch_only(scenario, db_url):
    bob = reports.fills_frame(db_url, "bob")
    assert list(bob["symbol"]) == ["AAPL"] and list(bob["epoch"]) == [2]


def test_orders_frame_includes_rejections_with_their_reason(scenario, db_url):
    frame = reports.orders_frame(db_url, "alice")

    assert list(frame["status"]) == ["filled", "filled", "filled", "rejected", "rejected", "filled", "new"]
    rejected = reports.orders_frame(db_url, "alice", status="rejected")
    reasons = list(rejected["reject_reason"])
    assert reasons[0].startswith("Insufficient shares") and reasons[1].startswith("Insufficient cash")
    assert math.isnan(frame["limit_price"][0]) and frame["limit_price"][2] == 95.0
    assert frame["client_order_id"][2] == "dip-buy-1" and frame["client_order_id"].isna()[0]
    assert_utc_times(frame, "submitted_at", "updated_at")
    assert_floats(frame, "qty", "limit_price", "filled_qty", "reserved_cash", "reserved_qty")
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="unknown order status"):
        reports.orders_frame(db_url, "alice", status="open")


def test_positions_frame_values_positions_at_the_mid_of_the_last_quote(scenario, db_url):
    frame = reports.positions_frame(db_url, "alice").set_index("symbol")

    aapl = frame.loc["AAPL"]
    assert (aapl["qty"], aapl["cost_basis"], aapl["last_price"], aapl["market_value"]) == (
        11.0, 1074.646072, 94.25, 1036.75,
    )
    assert aapl["avg_cost"] == 1074.646072 / 11
    assert aapl["unrealized_pnl"] == pytest.approx(-37.896072, abs=1e-12)
    assert aapl["realized_pnl"] == 38.935622
    msft = frame.loc["MSFT"]
    assert (msft["qty"], msft["reserved_qty"], msft["market_value"]) == (4.0, 2.0, 999.0)
    account = scenario.alice.get_account()
    assert account["cash"] + frame["market_value"].sum() == pytest.approx(account["equity"], abs=1e-9)


def test_positions_frame_keeps_closed_positions_for_their_realized_pnl(broker, db_url):
    broker.submit_order("AAPL", "BUY", 10)
    broker.submit_order("AAPL", "SELL", 10)

    (row,) = reports.positions_frame(db_url, "default").to_dict("records")

    assert row["qty"] == 0.0 and row["market_value"] == 0.0 and math.isnan(row["avg_cost"])
    realized = sum(fill["realized_pnl"] for fill in broker.get_fills())
    assert row["realized_pnl"] == pytest.approx(realized, abs=1e-9)
    assert row["realized_pnl"] < 0  # the round trip paid the spread, slippage and fees


def _drop_equity_marks(db_url: str) -> None:
    """Make the ledger look like one written before equity marks existed (migration 0005)."""
    from ledger.db.models import EquityMark

    with get_engine(db_url).begin() as conn:
        conn.execute(EquityMark.__table__.delete())


def test_without_equity_marks_the_curve_marks_holdings_at_the_last_fill_prices(scenario, db_url):
    _drop_equity_marks(db_url)
    curve = reports.equity_curve(db_url, "alice")

    assert list(curve["timestamp"]) == [pd.Timestamp(t) for t in (DAY1, DAY1, DAY2, DAY3)]
    assert list(curve["cash"]) == pytest.approx([100_000, 97_995.998, 98_435.734022, 97_962.28855], abs=1e-9)
    # After day 3: 11 AAPL at 94.5945 (the dip buy) + 4 MSFT at 250.25.
    positions_value = [0, 2002.0, 6 * 109.945 + 1001.0, 11 * 94.5945 + 1001.0]
    assert list(curve["positions_value"]) == pytest.approx(positions_value)
    assert (curve["equity"] == curve["cash"] + curve["positions_value"]).all()
    assert_utc_times(curve, "timestamp")
    assert_floats(curve, "cash", "positions_value", "equity")


def test_without_equity_marks_the_curve_starts_at_the_epochs_deposit(scenario, db_url):
    _drop_equity_marks(db_url)
    curve = reports.equity_curve(db_url, "bob")
    # Bob reset on day 2 and bought once the same day.
    assert list(curve["timestamp"]) == [pd.Timestamp(DAY2), pd.Timestamp(DAY2)]
    assert list(curve["equity"]) == pytest.approx([10_000.0, 9_449.0 + 5 * 110.2])


def test_the_equity_curve_is_marked_to_the_quote_mid_at_fills_and_quote_intervals(make_broker, clock, db_url):
    broker = make_broker(initial_cash=10_000, slippage_bps=0, fee_bps=0)
    start = clock.current
    broker.set_quote("AAPL", bid=99, ask=101)  # first quote: a mark (no position yet)
    broker.submit_order("AAPL", "BUY", 10)  # fills at 101: cash 8,990, 10 x mid 100
    clock.advance(seconds=30)
    broker.set_quote("AAPL", bid=109, ask=111)  # 30 s after the last mark: no mark (interval 60 s)
    clock.advance(seconds=30)
    broker.set_quote("AAPL", bid=119, ask=121)  # 60 s: marked at mid 120
    curve = reports.equity_curve(db_url, broker.account)

    assert list(curve["timestamp"]) == [pd.Timestamp(start), pd.Timestamp(start), pd.Timestamp(clock.current)]
    assert list(curve["cash"]) == [10_000, 8_990, 8_990]
    assert list(curve["positions_value"]) == [0, 1_000, 1_200]
    assert list(curve["equity"]) == [10_000, 9_990, 10_190]
    # Marked at 100 then 120, not at the fill price of 101: the drawdown sees the quote, not the last trade.
    assert reports.account_max_drawdown(db_url, broker.account) == Decimal(10) / Decimal(10_000)


def test_a_connection_an_engine_and_a_url_give_the_same_frames(scenario, db_url):
    from_url = reports.orders_frame(db_url, "alice")
    engine = get_engine(db_url)
    pd.testing.assert_frame_equal(reports.orders_frame(engine, "alice"), from_url)
    with engine.connect() as conn:
        pd.testing.assert_frame_equal(reports.orders_frame(conn, "alice"), from_url)
        with read_transaction(conn):  # the caller's own transaction is used, not nested
            inside = reports.positions_frame(conn, "alice")
        pd.testing.assert_frame_equal(inside, reports.positions_frame(db_url, "alice"))


def test_an_unknown_account_is_a_ledger_error(scenario, db_url):
    with pytest.raises(LedgerError, match="no account named 'carol'"):
        reports.fills_frame(db_url, "carol")


def test_a_ledger_without_equity_marks_charts_one_point_per_day_at_its_last_fill_prices(make_broker, clock, db_url):
    """A ledger made before equity marks existed: the chart's points are the epoch's start and each UTC day's
    last fill, cash after that day's fills plus each symbol held valued at its last fill price up to then."""
    from sqlalchemy import delete

    from ledger.db.models import EquityMark

    broker = make_broker(account="old", initial_cash=10_000, slippage_bps=0, fee_bps=10)
    trades = [  # (day offset, hour, symbol, side, qty, price)
        (0, 15, "AAA", "BUY", 10, 100), (0, 16, "BBB", "BUY", 5, 50), (0, 17, "AAA", "BUY", 2, 101),
        (1, 14, "AAA", "SELL", 4, 104), (1, 18, "BBB", "BUY", 1, 52),
        (3, 15, "BBB", "SELL", 6, 49),
    ]
    start = clock()
    for day, hour, symbol, side, qty, price in trades:
        clock.current = start.replace(hour=hour) + pd.Timedelta(days=day).to_pytimedelta()
        broker.set_quote(symbol, bid=price, ask=price)
        broker.submit_order(symbol, side, qty)
    with get_engine(db_url).begin() as conn:
        conn.execute(delete(EquityMark.__table__))

    fills = [{**fill, "timestamp": datetime.fromisoformat(fill["timestamp"])} for fill in broker.get_fills()]
    expected, cash, held, last = [], Decimal(10_000), {}, {}
    for day in sorted({fill["timestamp"].date() for fill in fills}):
        todays = [fill for fill in fills if fill["timestamp"].date() == day]
        for fill in todays:
            notional, fee = Decimal(str(fill["notional"])), Decimal(str(fill["fee"]))
            buy = fill["side"] == "BUY"
            cash += -(notional + fee) if buy else notional - fee
            qty = Decimal(str(fill["qty"]))
            held[fill["symbol"]] = held.get(fill["symbol"], Decimal(0)) + (qty if buy else -qty)
            last[fill["symbol"]] = Decimal(str(fill["fill_price"]))
        value = sum((qty * last[symbol] for symbol, qty in held.items()), Decimal(0))
        expected.append((todays[-1]["timestamp"], cash + value))

    points = reports.equity_chart_points(db_url, "old", None, 400)
    assert [(point["timestamp"], point["equity"]) for point in points[1:]] == expected
    assert points[0]["equity"] == Decimal(10_000)
    week = reports.equity_chart_points(db_url, "old", pd.Timedelta(days=2).to_pytimedelta(), 400)
    assert [point["timestamp"] for point in week] == [at for at, _ in expected[-2:]]
