"""Order types x time in force against scripted quote sequences (issue 9).

Costs are the fixtures' 5 bp slippage and 1 bp fee: a market buy fills at ask * 1.0005, a sell at bid * 0.9995,
and the fee is 0.0001 of the notional, each rounded half-even to 6 decimals. The broker clock starts at
2024-01-02 14:30 UTC (the XNYS open), so a ``day`` order placed then expires at 21:00 UTC.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.brokers.paper import PaperBroker
from ledger.exceptions import OrderRejectedError
from tests.conftest import utc

OPEN = utc(2024, 1, 2, 14, 30)
CLOSE = utc(2024, 1, 2, 21)


def stop_trigger_events(events: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [event for event in events if str(event[2] or "").startswith("stop triggered")]


# -- market --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("time_in_force", "expires_at"), [("gtc", None), ("day", CLOSE), ("ioc", None), ("fok", None)])
def test_market_buy_fills_at_the_slipped_ask_in_every_time_in_force(broker, order_events, time_in_force, expires_at):
    result = broker.submit_order("AAPL", "BUY", 10, time_in_force=time_in_force)

    assert result["status"] == "filled"
    assert result["time_in_force"] == time_in_force
    assert result["expires_at"] == expires_at
    assert (result["fill_price"], result["notional"], result["fee"]) == (150.17505, 1501.7505, 0.150175)
    assert (result["filled_qty"], result["filled_avg_price"], result["filled_at"]) == (10.0, 150.17505, OPEN)
    assert broker.get_cash() == 98_498.099325
    assert [event[:2] for event in order_events(result["order_id"])] == [(None, "new"), ("new", "filled")]


def test_market_sell_fills_at_the_slipped_bid(long_broker):
    result = long_broker.submit_order("AAPL", "SELL", 10)

    assert (result["status"], result["fill_price"], result["notional"], result["fee"]) == (
        "filled", 149.925, 1499.25, 0.149925)
    assert long_broker.get_positions() == {}


def test_notional_market_buy_rounds_the_quantity_down_and_keeps_the_requested_amount(broker):
    # 1000 / 150.17505 = 6.6588953... -> 6.658895; notional 6.658895 * 150.17505 = 999.99989 (fee 0.1)
    result = broker.submit_order("AAPL", "BUY", notional=1000)

    assert result["status"] == "filled"
    assert result["qty"] == 6.658895
    assert result["filled_qty"] == 6.658895
    assert result["requested_notional"] == 1000.0
    assert (result["fill_price"], result["notional"], result["fee"]) == (150.17505, 999.99989, 0.1)
    assert broker.get_order(result["order_id"])["requested_notional"] == 1000.0
    assert broker.get_positions() == {"AAPL": 6.658895}
    assert broker.get_cash() == 98_999.90011  # 100,000 - 999.99989 - fee 0.1


def test_notional_is_refused_on_a_limit_order_and_recorded_as_rejected(broker):
    with pytest.raises(OrderRejectedError):
        broker.submit_order("AAPL", "BUY", None, "limit", 140.0, notional=1000)

    [order] = broker.get_orders()
    assert order["status"] == "rejected"
    assert broker.get_account()["reserved_cash"] == 0.0


# -- limit -----------------------------------------------------------------------------------------------------
def test_limit_day_buy_rests_reserving_cash_until_its_session_closes(broker):
    order = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0, time_in_force="day")

    assert order["status"] == "new"
    assert order["expires_at"] == CLOSE
    assert broker.get_account()["reserved_cash"] == 14_001.4  # 100 x 140 + 1 bp fee


@pytest.mark.parametrize("time_in_force", ["ioc", "fok"])
def test_unmarketable_limit_ioc_or_fok_is_canceled_at_once_with_nothing_filled(broker, order_events, time_in_force):
    result = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0, time_in_force=time_in_force)

    assert result["status"] == "canceled"
    assert result["filled_qty"] == 0.0
    assert result["canceled_at"] == OPEN
    assert broker.get_account()["reserved_cash"] == 0.0
    assert broker.get_fills() == []
    assert order_events(result["order_id"])[-1][1] == "canceled"
    assert broker.set_quote("AAPL", bid=139.0, ask=139.1) == []  # nothing rests to be crossed later


@pytest.mark.parametrize("time_in_force", ["ioc", "fok"])
def test_marketable_limit_ioc_or_fok_fills_capped_at_its_limit(broker, time_in_force):
    result = broker.submit_order("AAPL", "BUY", 10, "limit", 150.12, time_in_force=time_in_force)

    assert (result["status"], result["fill_price"], result["filled_qty"]) == ("filled", 150.12, 10.0)


# -- stop ------------------------------------------------------------------------------------------------------
def test_stop_sell_rests_reserving_shares_and_triggers_on_the_bid_reaching_it(long_broker, clock, order_events):
    order = long_broker.submit_order("AAPL", "SELL", 10, "stop", stop_price=145.0)
    assert (order["status"], order["stop_price"], order["triggered_at"]) == ("new", 145.0, None)
    with pytest.raises(OrderRejectedError):
        long_broker.submit_order("AAPL", "SELL", 1)  # all 10 shares are reserved by the stop

    clock.advance(seconds=10)
    assert long_broker.set_quote("AAPL", bid=145.01, ask=145.11) == []  # bid above the stop: nothing
    assert long_broker.get_order(order["order_id"])["triggered_at"] is None

    clock.advance(seconds=10)
    [fill] = long_broker.set_quote("AAPL", bid=145.0, ask=145.1)

    assert fill["order_id"] == order["order_id"]
    assert fill["fill_price"] == 144.9275  # works as a market order: 145 * 0.9995
    after = long_broker.get_order(order["order_id"])
    assert (after["status"], after["filled_qty"], after["filled_avg_price"]) == ("filled", 10.0, 144.9275)
    assert after["triggered_at"] == after["filled_at"] == utc(2024, 1, 2, 14, 30, 20)
    [trigger] = stop_trigger_events(order_events(order["order_id"]))
    assert trigger[3] == utc(2024, 1, 2, 14, 30, 20)
    assert long_broker.get_positions() == {}


def test_stop_buy_reserves_at_the_stop_plus_slippage_and_fills_at_the_market_once_ask_reaches_it(broker):
    order = broker.submit_order("AAPL", "BUY", 10, "stop", stop_price=155.0)
    # 10 x 155 x 1.0005 = 1550.775, fee 0.155078
    assert broker.get_account()["reserved_cash"] == 1550.930078
    assert broker.set_quote("AAPL", bid=154.8, ask=154.99) == []

    [fill] = broker.set_quote("AAPL", bid=155.0, ask=155.05)

    assert fill["fill_price"] == 155.127525  # 155.05 * 1.0005: a gap past the stop fills at the market
    assert broker.get_order(order["order_id"])["status"] == "filled"
    assert broker.get_account()["reserved_cash"] == 0.0
    assert broker.get_positions() == {"AAPL": 10.0}


@pytest.mark.parametrize("time_in_force", ["ioc", "fok"])
def test_untriggered_stop_ioc_or_fok_cannot_fill_now_so_it_is_canceled(long_broker, time_in_force):
    result = long_broker.submit_order("AAPL", "SELL", 10, "stop", stop_price=145.0, time_in_force=time_in_force)

    assert (result["status"], result["filled_qty"]) == ("canceled", 0.0)
    assert long_broker.set_quote("AAPL", bid=140.0, ask=140.1) == []
    assert long_broker.get_positions() == {"AAPL": 10.0}


def test_stop_day_order_carries_its_session_close(long_broker):
    order = long_broker.submit_order("AAPL", "SELL", 10, "stop", stop_price=145.0, time_in_force="day")

    assert (order["status"], order["expires_at"]) == ("new", CLOSE)


# -- stop limit ------------------------------------------------------------------------------------------------
def test_stop_limit_sell_triggers_then_fills_as_a_limit(long_broker, order_events):
    order = long_broker.submit_order("AAPL", "SELL", 10, "stop_limit", 144.5, stop_price=145.0)

    [fill] = long_broker.set_quote("AAPL", bid=144.9, ask=145.0)

    assert fill["fill_price"] == 144.82755  # 144.9 * 0.9995, above the 144.5 limit
    assert long_broker.get_order(order["order_id"])["status"] == "filled"
    assert len(stop_trigger_events(order_events(order["order_id"]))) == 1


def test_stop_limit_sell_that_gaps_below_its_limit_triggers_and_rests_as_a_limit(long_broker, clock):
    order = long_broker.submit_order("AAPL", "SELL", 10, "stop_limit", 144.5, stop_price=145.0)

    clock.advance(seconds=5)
    assert long_broker.set_quote("AAPL", bid=144.0, ask=144.1) == []
    triggered = long_broker.get_order(order["order_id"])
    assert (triggered["status"], triggered["triggered_at"]) == ("new", utc(2024, 1, 2, 14, 30, 5))

    clock.advance(seconds=5)
    assert long_broker.set_quote("AAPL", bid=144.4, ask=144.5) == []  # 144.4 * 0.9995 < limit
    [fill] = long_broker.set_quote("AAPL", bid=144.6, ask=144.7)

    assert fill["fill_price"] == 144.5277  # 144.6 * 0.9995
    assert long_broker.get_order(order["order_id"])["status"] == "filled"


def test_stop_limit_buy_reserves_qty_times_limit_plus_fee_and_fills_no_worse_than_the_limit(broker):
    order = broker.submit_order("AAPL", "BUY", 10, "stop_limit", 155.5, stop_price=155.0)
    assert broker.get_account()["reserved_cash"] == 1555.1555

    [fill] = broker.set_quote("AAPL", bid=155.0, ask=155.2)

    assert fill["fill_price"] == 155.2776  # 155.2 * 1.0005 <= 155.5
    assert broker.get_order(order["order_id"])["status"] == "filled"
    assert broker.get_account()["reserved_cash"] == 0.0


# -- trailing stop ---------------------------------------------------------------------------------------------
def test_trailing_sell_by_price_follows_the_highest_bid_and_triggers_trail_below_it(long_broker, order_events):
    order = long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_price=2.0)
    assert (order["hwm"], order["stop_price"], order["trail_price"]) == (150.0, 148.0, 2.0)

    long_broker.set_quote("AAPL", bid=152.0, ask=152.1)
    assert (long_broker.get_order(order["order_id"])["hwm"], long_broker.get_order(order["order_id"])["stop_price"]) == (
        152.0, 150.0)
    long_broker.set_quote("AAPL", bid=151.0, ask=151.1)  # a lower bid never lowers the mark
    assert long_broker.get_order(order["order_id"])["stop_price"] == 150.0
    assert long_broker.set_quote("AAPL", bid=150.01, ask=150.11) == []

    [fill] = long_broker.set_quote("AAPL", bid=150.0, ask=150.1)

    assert fill["fill_price"] == 149.925
    assert long_broker.get_order(order["order_id"])["status"] == "filled"
    assert len(stop_trigger_events(order_events(order["order_id"]))) == 1


def test_trailing_sell_by_percent_rounds_its_stop_half_even_to_six_decimals(long_broker):
    order = long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_percent=1.5)
    assert (order["hwm"], order["stop_price"], order["trail_percent"]) == (150.0, 147.75, 1.5)

    long_broker.set_quote("AAPL", bid=151.111111, ask=151.2)

    moved = long_broker.get_order(order["order_id"])
    assert (moved["hwm"], moved["stop_price"]) == (151.111111, 148.844444)  # 148.844444335 rounded


def test_trailing_buy_follows_the_lowest_ask_and_reserves_at_its_stop(broker):
    order = broker.submit_order("AAPL", "BUY", 10, "trailing_stop", trail_price=1.0)
    assert (order["hwm"], order["stop_price"]) == (150.1, 151.1)
    # 10 x 151.10 x 1.0005 = 1511.7555, fee 0.151176
    assert broker.get_account()["reserved_cash"] == 1511.906676

    assert broker.set_quote("AAPL", bid=147.9, ask=148.0) == []
    assert (broker.get_order(order["order_id"])["hwm"], broker.get_order(order["order_id"])["stop_price"]) == (
        148.0, 149.0)

    [fill] = broker.set_quote("AAPL", bid=148.9, ask=149.0)

    assert fill["fill_price"] == 149.0745
    assert broker.get_order(order["order_id"])["status"] == "filled"
    assert broker.get_account()["reserved_cash"] == 0.0


def test_trailing_stop_mark_survives_a_new_broker_on_the_same_ledger(long_broker, make_broker, clock):
    order = long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_price=2.0)
    long_broker.set_quote("AAPL", bid=160.0, ask=160.1)
    long_broker.close()

    clock.advance(minutes=1)
    reopened = make_broker()
    assert (reopened.get_order(order["order_id"])["hwm"], reopened.get_order(order["order_id"])["stop_price"]) == (
        160.0, 158.0)
    [fill] = reopened.set_quote("AAPL", bid=158.0, ask=158.1)

    assert fill["order_id"] == order["order_id"]
    assert fill["fill_price"] == 157.921  # 158 * 0.9995


@pytest.mark.parametrize("trail", [{}, {"trail_price": 2.0, "trail_percent": 1.0}])
def test_trailing_stop_needs_exactly_one_of_trail_price_or_trail_percent(long_broker, trail):
    with pytest.raises(OrderRejectedError):
        long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", **trail)

    assert long_broker.get_orders("rejected")[-1]["order_type"] == "trailing_stop"
    assert long_broker.get_orders("open") == []


# -- time in force refused -------------------------------------------------------------------------------------
@pytest.mark.parametrize("time_in_force", ["opg", "cls"])
def test_auction_time_in_force_is_refused_and_recorded_as_rejected(broker, time_in_force):
    with pytest.raises(OrderRejectedError, match="auction"):
        broker.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force=time_in_force)

    [order] = broker.get_orders()
    assert order["status"] == "rejected"
    assert "auction" in order["reject_reason"]
    assert broker.get_account()["reserved_cash"] == 0.0


# -- equity marks ----------------------------------------------------------------------------------------------
def test_every_fill_writes_an_equity_mark_at_its_time(broker, clock, equity_marks):
    clock.advance(seconds=1)
    broker.submit_order("AAPL", "BUY", 10)

    at, cash, long_value, short_value, equity = equity_marks()[-1]
    assert at == utc(2024, 1, 2, 14, 30, 1)
    assert cash == Decimal("98498.099325")
    assert short_value == 0
    assert equity == cash + long_value
    assert float(equity) == broker.get_account()["equity"]


def test_quotes_write_at_most_one_mark_per_interval_of_broker_time(broker, clock, equity_marks):
    for seconds in (30, 29, 1, 59, 1):  # 14:30:30, :59, 14:31:00, :59, 14:32:00
        clock.advance(seconds=seconds)
        broker.set_quote("AAPL", bid=150.0, ask=150.10)

    assert [mark[0] for mark in equity_marks()] == [OPEN, utc(2024, 1, 2, 14, 31), utc(2024, 1, 2, 14, 32)]


def test_mark_equity_writes_a_mark_now_inside_the_interval(broker, clock, equity_marks):
    clock.advance(seconds=5)

    broker.mark_equity()

    assert [mark[0] for mark in equity_marks()] == [OPEN, utc(2024, 1, 2, 14, 30, 5)]
    assert equity_marks()[-1][1:] == (Decimal(100_000), 0, 0, Decimal(100_000))


def test_equity_marks_store_integer_millionths(long_broker, db_url):
    from sqlalchemy import text

    from ledger.db.engine import get_engine

    with get_engine(db_url).connect() as conn:
        cash_e6 = conn.execute(text("SELECT cash_e6 FROM equity_marks ORDER BY id DESC LIMIT 1")).scalar_one()

    assert int(cash_e6) == cash_e6 == 98_498_099_325


def test_new_submit_parameters_are_keyword_only_and_default_to_gtc():
    assert PaperBroker.submit_order.__kwdefaults__ == {
        "time_in_force": "gtc", "stop_price": None, "trail_price": None, "trail_percent": None, "notional": None,
    }
