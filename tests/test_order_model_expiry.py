"""Day orders expire at the close of their XNYS session, by broker time, inside the first write past it (issue 9).

The broker clock starts at 2024-01-02 14:30 UTC (09:30 New York), so a day order placed then expires at
21:00 UTC (16:00 EST). Costs: 5 bp slippage, 1 bp fee; a limit buy of 100 at 140 reserves 14,001.40.
"""

from __future__ import annotations

import pytest

from tests.conftest import utc

CLOSE = utc(2024, 1, 2, 21)


@pytest.fixture
def day_buy(broker):
    """A resting day limit buy, 100 AAPL at 140, placed at 14:30 UTC."""
    return broker.submit_order("AAPL", "BUY", 100, "limit", 140.0, time_in_force="day")


def test_day_order_expires_at_the_first_quote_at_its_sessions_close(broker, clock, day_buy, order_events):
    clock.current = utc(2024, 1, 2, 20, 59, 59)
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    assert broker.get_order(day_buy["order_id"])["status"] == "new"
    assert broker.get_account()["reserved_cash"] == 14_001.4

    clock.current = CLOSE
    broker.set_quote("AAPL", bid=150.0, ask=150.10)

    expired = broker.get_order(day_buy["order_id"])
    assert (expired["status"], expired["expires_at"], expired["expired_at"]) == ("expired", CLOSE, CLOSE)
    assert broker.get_account()["reserved_cash"] == 0.0
    assert broker.get_account()["available_cash"] == 100_000.0
    assert order_events(day_buy["order_id"])[-1][:2] + order_events(day_buy["order_id"])[-1][3:] == (
        "new", "expired", CLOSE)


def test_a_quote_that_crosses_an_expired_day_order_does_not_fill_it(broker, clock, day_buy):
    clock.current = CLOSE

    assert broker.set_quote("AAPL", bid=130.0, ask=130.1) == []

    assert broker.get_order(day_buy["order_id"])["status"] == "expired"
    assert broker.get_positions() == {}


def test_day_order_expires_inside_the_next_submit(broker, clock, day_buy):
    clock.current = CLOSE

    later = broker.submit_order("AAPL", "BUY", 100, "limit", 130.0)

    assert later["status"] == "new"
    assert broker.get_order(day_buy["order_id"])["status"] == "expired"
    assert broker.get_account()["reserved_cash"] == 13_001.3  # only the new order's 100 x 130 + fee


def test_day_order_expires_inside_a_cancel_of_another_order(broker, clock, day_buy):
    other = broker.submit_order("AAPL", "BUY", 10, "limit", 130.0)
    clock.current = CLOSE

    assert broker.cancel_order(other["order_id"])["status"] == "canceled"

    assert broker.get_order(day_buy["order_id"])["status"] == "expired"
    assert broker.get_account()["reserved_cash"] == 0.0


def test_canceling_a_day_order_after_its_close_finds_it_expired(broker, clock, day_buy):
    clock.current = CLOSE

    assert broker.cancel_order(day_buy["order_id"])["status"] == "expired"

    assert broker.get_order(day_buy["order_id"])["canceled_at"] is None


def test_expire_orders_expires_only_what_is_due(broker, clock, day_buy):
    gtc = broker.submit_order("AAPL", "BUY", 10, "limit", 130.0)
    clock.current = utc(2024, 1, 2, 20, 59, 59)
    assert broker.expire_orders() == []

    clock.current = CLOSE
    expired = broker.expire_orders()

    assert [(order["order_id"], order["status"]) for order in expired] == [(day_buy["order_id"], "expired")]
    assert broker.get_order(gtc["order_id"])["status"] == "new"
    assert broker.get_account()["reserved_cash"] == 1300.13


def test_gtc_orders_live_across_the_close(broker, clock):
    gtc = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)
    clock.current = utc(2024, 1, 5, 21)

    broker.set_quote("AAPL", bid=150.0, ask=150.10)

    assert (broker.get_order(gtc["order_id"])["status"], gtc["expires_at"]) == ("new", None)


@pytest.mark.parametrize(
    ("placed_at", "expires_at"),
    [
        pytest.param(utc(2024, 1, 2, 22), utc(2024, 1, 3, 21), id="after the close: next session"),
        pytest.param(utc(2024, 1, 3, 13), utc(2024, 1, 3, 21), id="before the open: that day's session"),
        pytest.param(utc(2024, 1, 6, 15), utc(2024, 1, 8, 21), id="saturday: monday's session"),
        pytest.param(utc(2024, 1, 1, 15), utc(2024, 1, 2, 21), id="new year holiday: next session"),
        pytest.param(utc(2024, 3, 11, 14), utc(2024, 3, 11, 20), id="first day of EDT: 16:00 is 20:00 UTC"),
        pytest.param(utc(2024, 3, 8, 22), utc(2024, 3, 11, 20), id="friday EST evening: monday EDT close"),
        pytest.param(utc(2024, 11, 4, 15), utc(2024, 11, 4, 21), id="first day back on EST"),
        pytest.param(utc(2024, 7, 3, 14), utc(2024, 7, 3, 17), id="early close before July 4th"),
        pytest.param(utc(2024, 11, 28, 15), utc(2024, 11, 29, 18), id="thanksgiving: early close next day"),
        pytest.param(utc(2024, 12, 24, 15), utc(2024, 12, 24, 18), id="christmas eve early close"),
    ],
)
def test_day_order_expiry_is_its_xnys_sessions_close(make_broker, clock, placed_at, expires_at):
    clock.current = placed_at
    b = make_broker()

    order = b.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force="day")

    assert order["expires_at"] == expires_at


def test_day_order_expires_at_the_dst_close_not_at_the_winter_hour(make_broker, clock):
    clock.current = utc(2024, 3, 11, 14)
    b = make_broker()
    order = b.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force="day")

    clock.current = utc(2024, 3, 11, 19, 59, 59)
    b.set_quote("AAPL", bid=150.0, ask=150.10)
    assert b.get_order(order["order_id"])["status"] == "new"
    clock.current = utc(2024, 3, 11, 20)
    b.set_quote("AAPL", bid=150.0, ask=150.10)

    assert b.get_order(order["order_id"])["status"] == "expired"


def test_day_order_expires_at_an_early_close(make_broker, clock):
    clock.current = utc(2024, 7, 3, 14)
    b = make_broker()
    order = b.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force="day")

    clock.current = utc(2024, 7, 3, 17)
    expired = b.expire_orders()

    assert [o["order_id"] for o in expired] == [order["order_id"]]
    assert b.get_order(order["order_id"])["expired_at"] == utc(2024, 7, 3, 17)


def test_a_24_7_account_expires_day_orders_at_the_end_of_the_utc_day(make_broker, clock):
    clock.current = utc(2024, 1, 6, 10)  # a Saturday: XNYS is closed, a 24/7 calendar is not
    b = make_broker()
    assert b.configure(calendar="24/7")["calendar"] == "24/7"
    order = b.submit_order("BTC-USD", "BUY", 1, "limit", 30_000.0, time_in_force="day")
    assert order["expires_at"] == utc(2024, 1, 7)

    clock.current = utc(2024, 1, 6, 23, 59, 59)
    b.set_quote("BTC-USD", bid=40_000.0, ask=40_010.0)
    assert b.get_order(order["order_id"])["status"] == "new"
    clock.current = utc(2024, 1, 7)
    b.set_quote("BTC-USD", bid=40_000.0, ask=40_010.0)

    assert b.get_order(order["order_id"])["status"] == "expired"
    assert b.get_account()["reserved_cash"] == 0.0


def test_a_day_order_expires_in_the_first_write_of_a_later_broker(broker, make_broker, clock, day_buy, order_events):
    broker.close()
    clock.current = utc(2024, 1, 3, 14, 30)

    reopened = make_broker()
    reopened.set_quote("AAPL", bid=150.0, ask=150.10)

    expired = reopened.get_order(day_buy["order_id"])
    assert (expired["status"], expired["expired_at"]) == ("expired", utc(2024, 1, 3, 14, 30))
    assert order_events(day_buy["order_id"])[-1][3] == utc(2024, 1, 3, 14, 30)
    assert reopened.get_account()["reserved_cash"] == 0.0


def test_expire_orders_from_a_later_broker(broker, make_broker, clock, day_buy):
    broker.close()
    clock.current = utc(2024, 1, 3, 9)

    expired = make_broker().expire_orders()

    assert [(order["order_id"], order["status"]) for order in expired] == [(day_buy["order_id"], "expired")]


def test_a_partially_filled_day_order_expires_keeping_its_fills(displayed_broker, clock):
    order = displayed_broker.submit_order("AAPL", "BUY", 300, "limit", 151.0, time_in_force="day")
    clock.current = CLOSE

    displayed_broker.expire_orders()

    expired = displayed_broker.get_order(order["order_id"])
    assert (expired["status"], expired["filled_qty"], expired["filled_avg_price"]) == ("expired", 100.0, 150.17505)
    assert displayed_broker.get_account()["reserved_cash"] == 0.0
    assert displayed_broker.get_positions() == {"AAPL": 100.0}


def test_an_untriggered_day_stop_expires_and_frees_its_shares(long_broker, clock):
    stop = long_broker.submit_order("AAPL", "SELL", 10, "stop", stop_price=145.0, time_in_force="day")
    clock.current = CLOSE

    long_broker.set_quote("AAPL", bid=150.0, ask=150.10)

    assert long_broker.get_order(stop["order_id"])["status"] == "expired"
    assert long_broker.submit_order("AAPL", "SELL", 10)["status"] == "filled"


def test_cancel_all_orders_after_the_close_finds_the_day_order_already_expired(broker, clock, day_buy):
    clock.current = CLOSE

    assert broker.cancel_all_orders() == []

    assert broker.get_order(day_buy["order_id"])["status"] == "expired"
    assert broker.get_account()["reserved_cash"] == 0.0


def test_a_quote_that_moves_an_expired_trailing_stop_leaves_it_expired(long_broker, clock):
    trailing = long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_price=2.0, time_in_force="day")
    clock.current = CLOSE

    long_broker.set_quote("AAPL", bid=155.0, ask=155.1)  # would raise the mark of a live trailing stop

    after = long_broker.get_order(trailing["order_id"])
    assert (after["status"], after["hwm"], after["stop_price"]) == ("expired", 150.0, 148.0)
    assert long_broker.submit_order("AAPL", "SELL", 10)["status"] == "filled"
