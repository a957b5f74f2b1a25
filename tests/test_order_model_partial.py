"""The ``displayed_size`` fill model: a fill takes at most the quote's displayed size, the rest fills later (issue 9).

Buys take the ask size, sells the bid size; each quote's size is consumed once across the account's orders,
oldest order first; a size of 0 means "unknown": fill fully. Costs: 5 bp slippage (buy at ask * 1.0005, sell at
bid * 0.9995) and a 1 bp fee. ``displayed_broker`` starts with AAPL quoted 150.00 / 150.10, size 100 x 100.
"""

from __future__ import annotations

import pytest

from ledger.exceptions import OrderRejectedError
from tests.conftest import utc


def test_the_fill_model_is_a_persisted_account_setting(make_broker, displayed_broker):
    assert displayed_broker.settings()["fill_model"] == "displayed_size"
    assert make_broker().settings()["fill_model"] == "displayed_size"


def test_default_full_model_ignores_the_displayed_size(broker):
    broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=1, ask_size=1)

    result = broker.submit_order("AAPL", "BUY", 500)

    assert (broker.settings()["fill_model"], result["status"], result["filled_qty"]) == ("full", "filled", 500.0)


def test_limit_buy_beyond_the_ask_size_fills_across_quotes_with_a_volume_weighted_average(
    displayed_broker, clock, order_events
):
    order = displayed_broker.submit_order("AAPL", "BUY", 300, "limit", 151.0)

    assert (order["status"], order["filled_qty"], order["filled_avg_price"]) == ("partially_filled", 100.0, 150.17505)
    assert (order["fill_price"], order["filled_at"]) == (150.17505, None)
    assert displayed_broker.get_account()["reserved_cash"] == 30_203.02  # 200 x 151 + fee

    clock.advance(seconds=10)
    [second] = displayed_broker.set_quote("AAPL", bid=150.2, ask=150.3, bid_size=100, ask_size=150)
    assert (second["qty"], second["fill_price"]) == (150.0, 150.37515)
    middle = displayed_broker.get_order(order["order_id"])
    assert (middle["status"], middle["filled_qty"], middle["filled_avg_price"]) == ("partially_filled", 250.0, 150.29511)
    assert displayed_broker.get_account()["reserved_cash"] == 7550.755  # 50 x 151 + fee

    clock.advance(seconds=10)
    [last] = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=0)  # size unknown

    assert last["qty"] == 50.0
    done = displayed_broker.get_order(order["order_id"])
    assert (done["status"], done["filled_qty"], done["filled_avg_price"]) == ("filled", 300.0, 150.2751)
    assert done["filled_at"] == utc(2024, 1, 2, 14, 30, 20)
    assert displayed_broker.get_account()["reserved_cash"] == 0.0
    assert displayed_broker.get_positions() == {"AAPL": 300.0}
    assert [event[:2] for event in order_events(order["order_id"])] == [
        (None, "new"), ("new", "partially_filled"), ("partially_filled", "partially_filled"),
        ("partially_filled", "filled"),
    ]


def test_average_fill_price_is_rounded_half_even_to_six_decimals(displayed_broker):
    displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=3)
    order = displayed_broker.submit_order("AAPL", "BUY", 7, "limit", 151.0)

    displayed_broker.set_quote("AAPL", bid=150.2, ask=150.3, ask_size=4)

    # (3 x 150.17505 + 4 x 150.37515) / 7 = 150.2893928...
    assert displayed_broker.get_order(order["order_id"])["filled_avg_price"] == 150.289393


def test_resting_orders_share_one_quote_oldest_first(displayed_broker, clock):
    displayed_broker.set_quote("AAPL", bid=151.9, ask=152.0)
    older = displayed_broker.submit_order("AAPL", "BUY", 100, "limit", 151.0)
    clock.advance(seconds=1)
    newer = displayed_broker.submit_order("AAPL", "BUY", 100, "limit", 151.0)

    clock.advance(seconds=1)
    fills = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=150)

    assert [(fill["order_id"], fill["qty"]) for fill in fills] == [(older["order_id"], 100.0), (newer["order_id"], 50.0)]
    assert displayed_broker.get_order(older["order_id"])["status"] == "filled"
    assert (displayed_broker.get_order(newer["order_id"])["status"],
            displayed_broker.get_order(newer["order_id"])["filled_qty"]) == ("partially_filled", 50.0)

    [fill] = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=30)

    assert (fill["order_id"], fill["qty"]) == (newer["order_id"], 30.0)
    assert displayed_broker.get_order(newer["order_id"])["filled_qty"] == 80.0


def test_a_quote_size_already_taken_is_not_taken_again_by_the_next_order(displayed_broker):
    first = displayed_broker.submit_order("AAPL", "BUY", 60)
    second = displayed_broker.submit_order("AAPL", "BUY", 60)  # only 40 of the quote's 100 are left

    assert (first["status"], first["filled_qty"]) == ("filled", 60.0)
    assert (second["status"], second["filled_qty"]) == ("partially_filled", 40.0)

    [fill] = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=100)

    assert (fill["order_id"], fill["qty"]) == (second["order_id"], 20.0)
    assert displayed_broker.get_positions() == {"AAPL": 120.0}


def test_market_remainder_fills_at_the_later_quotes_price(displayed_broker):
    order = displayed_broker.submit_order("AAPL", "BUY", 300)
    assert (order["status"], order["filled_qty"]) == ("partially_filled", 100.0)

    [fill] = displayed_broker.set_quote("AAPL", bid=150.2, ask=150.3, ask_size=500)

    assert (fill["qty"], fill["fill_price"]) == (200.0, 150.37515)
    done = displayed_broker.get_order(order["order_id"])
    assert (done["status"], done["filled_avg_price"]) == ("filled", 150.30845)  # (100 x 150.17505 + 200 x 150.37515) / 300


def test_sells_take_the_bid_size_and_their_share_reservation_shrinks_as_they_fill(displayed_broker):
    displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=0)
    displayed_broker.submit_order("AAPL", "BUY", 300)
    order = displayed_broker.submit_order("AAPL", "SELL", 300, "limit", 149.0)

    assert (order["status"], order["filled_qty"], order["fill_price"]) == ("partially_filled", 100.0, 149.925)
    assert displayed_broker.get_positions() == {"AAPL": 200.0}
    with pytest.raises(OrderRejectedError):
        displayed_broker.submit_order("AAPL", "SELL", 1)  # the 200 left are reserved by the open sell

    [fill] = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=250, ask_size=0)

    assert fill["qty"] == 200.0
    assert displayed_broker.get_order(order["order_id"])["status"] == "filled"
    assert displayed_broker.get_positions() == {}


def test_buys_and_sells_take_their_own_side_of_one_quote(displayed_broker):
    displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=0)
    displayed_broker.submit_order("AAPL", "BUY", 100)
    displayed_broker.set_quote("AAPL", bid=148.0, ask=152.0)  # crosses neither order below
    buy = displayed_broker.submit_order("AAPL", "BUY", 100, "limit", 151.0)
    sell = displayed_broker.submit_order("AAPL", "SELL", 100, "limit", 149.0)

    fills = displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=100)

    assert [(fill["order_id"], fill["qty"]) for fill in fills] == [(buy["order_id"], 100.0), (sell["order_id"], 100.0)]
    assert displayed_broker.get_positions() == {"AAPL": 100.0}


def test_a_quote_with_size_zero_fills_fully(displayed_broker):
    displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=0, ask_size=0)

    result = displayed_broker.submit_order("AAPL", "BUY", 500)

    assert (result["status"], result["filled_qty"]) == ("filled", 500.0)


def test_ioc_keeps_what_the_displayed_size_filled_and_cancels_the_rest(displayed_broker, order_events):
    result = displayed_broker.submit_order("AAPL", "BUY", 300, time_in_force="ioc")

    assert (result["status"], result["filled_qty"], result["filled_avg_price"]) == ("canceled", 100.0, 150.17505)
    assert result["canceled_at"] == utc(2024, 1, 2, 14, 30)
    assert displayed_broker.get_positions() == {"AAPL": 100.0}
    assert order_events(result["order_id"])[-1][1] == "canceled"
    assert displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=500) == []


def test_fok_beyond_the_displayed_size_is_canceled_with_nothing_filled(displayed_broker):
    result = displayed_broker.submit_order("AAPL", "BUY", 300, "limit", 151.0, time_in_force="fok")

    assert (result["status"], result["filled_qty"]) == ("canceled", 0.0)
    assert displayed_broker.get_fills() == []
    assert displayed_broker.get_account()["reserved_cash"] == 0.0
    assert displayed_broker.get_positions() == {}


def test_fok_within_the_displayed_size_fills_completely(displayed_broker):
    displayed_broker.set_quote("AAPL", bid=150.0, ask=150.10, ask_size=300)

    result = displayed_broker.submit_order("AAPL", "BUY", 300, "limit", 151.0, time_in_force="fok")

    assert (result["status"], result["filled_qty"], result["fill_price"]) == ("filled", 300.0, 150.17505)


def test_triggered_stop_fills_only_the_displayed_size_then_the_rest_later(displayed_broker):
    order = displayed_broker.submit_order("AAPL", "BUY", 300, "stop", stop_price=155.0)

    [first] = displayed_broker.set_quote("AAPL", bid=155.0, ask=155.05, ask_size=100)
    assert (first["qty"], first["fill_price"]) == (100.0, 155.127525)
    assert displayed_broker.get_order(order["order_id"])["status"] == "partially_filled"

    [rest] = displayed_broker.set_quote("AAPL", bid=155.0, ask=155.05, ask_size=0)

    assert rest["qty"] == 200.0
    assert displayed_broker.get_order(order["order_id"])["status"] == "filled"
    assert displayed_broker.get_account()["reserved_cash"] == 0.0
