"""Replace, cancel all, close positions, refused settings and client_order_id idempotency (issue 9).

Costs: 5 bp slippage (buy at ask * 1.0005, sell at bid * 0.9995) and a 1 bp fee; AAPL is quoted 150.00 / 150.10
and the broker clock starts at 2024-01-02 14:30 UTC (a ``day`` order placed then expires at 21:00 UTC).
"""

from __future__ import annotations

import pytest

from ledger.exceptions import (
    ClientOrderIdConflictError,
    InsufficientFundsError,
    OrderNotReplaceableError,
    OrderRejectedError,
    PositionNotFoundError,
)
from tests.conftest import utc


# -- replace ---------------------------------------------------------------------------------------------------
def test_replace_makes_a_new_order_and_marks_the_old_one_replaced_both_ways(broker, clock, order_events):
    old = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)
    clock.advance(seconds=30)

    new = broker.replace_order(old["order_id"], qty=50, limit_price=141.0)

    assert (new["status"], new["qty"], new["limit_price"], new["replaces"]) == ("new", 50.0, 141.0, old["order_id"])
    assert new["order_id"] != old["order_id"]
    before = broker.get_order(old["order_id"])
    assert (before["status"], before["replaced_by"], before["replaced_at"]) == (
        "replaced", new["order_id"], utc(2024, 1, 2, 14, 30, 30))
    assert broker.get_order(new["order_id"])["replaces"] == old["order_id"]
    assert [order["order_id"] for order in broker.get_orders("open")] == [new["order_id"]]
    assert broker.get_account()["reserved_cash"] == 7050.705  # 50 x 141 + fee: the reservation moved
    assert order_events(old["order_id"])[-1][:2] == ("new", "replaced")
    assert order_events(new["order_id"])[0][:2] == (None, "new")


def test_replace_keeps_every_field_it_is_not_given(broker):
    old = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0, time_in_force="day")

    new = broker.replace_order(old["order_id"], limit_price=139.0)

    assert (new["symbol"], new["side"], new["order_type"]) == ("AAPL", "BUY", "limit")
    assert (new["qty"], new["limit_price"], new["time_in_force"], new["expires_at"]) == (
        100.0, 139.0, "day", utc(2024, 1, 2, 21))


def test_replace_of_a_partially_filled_order_carries_only_its_unfilled_quantity(displayed_broker):
    old = displayed_broker.submit_order("AAPL", "BUY", 300, "limit", 151.0)  # fills 100 of the ask size

    new = displayed_broker.replace_order(old["order_id"], limit_price=149.0)

    assert (new["qty"], new["limit_price"], new["status"]) == (200.0, 149.0, "new")
    assert displayed_broker.get_order(old["order_id"])["filled_qty"] == 100.0
    assert displayed_broker.get_account()["reserved_cash"] == 29_802.98  # 200 x 149 + fee


def test_replace_moves_a_sells_share_reservation(long_broker):
    old = long_broker.submit_order("AAPL", "SELL", 10, "limit", 200.0)

    long_broker.replace_order(old["order_id"], qty=4)
    result = long_broker.submit_order("AAPL", "SELL", 6)

    assert result["status"] == "filled"
    assert long_broker.get_positions() == {"AAPL": 4.0}


def test_replace_a_stop_moves_its_stop_price(long_broker):
    old = long_broker.submit_order("AAPL", "SELL", 10, "stop", stop_price=140.0)

    new = long_broker.replace_order(old["order_id"], stop_price=145.0)

    assert (new["order_type"], new["stop_price"], new["qty"]) == ("stop", 145.0, 10.0)
    [fill] = long_broker.set_quote("AAPL", bid=145.0, ask=145.1)
    assert fill["order_id"] == new["order_id"]


def test_replace_a_trailing_stop_changes_its_trail(long_broker):
    old = long_broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_percent=2.0)

    new = long_broker.replace_order(old["order_id"], trail=1.0)

    assert (new["trail_percent"], new["trail_price"], new["hwm"], new["stop_price"]) == (1.0, None, 150.0, 148.5)


def test_replace_to_day_gives_the_new_order_its_session_close(broker):
    old = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)

    new = broker.replace_order(old["order_id"], time_in_force="day")

    assert (new["time_in_force"], new["expires_at"]) == ("day", utc(2024, 1, 2, 21))


def test_replace_that_would_be_rejected_changes_nothing_and_raises(broker):
    old = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)
    orders_before, account_before = broker.get_orders(), broker.get_account()

    with pytest.raises(InsufficientFundsError):
        broker.replace_order(old["order_id"], qty=1000)  # 140,014 > 100,000

    assert broker.get_orders() == orders_before
    assert broker.get_account() == account_before
    assert broker.get_order(old["order_id"])["status"] == "new"


def test_filled_canceled_and_replaced_orders_cannot_be_replaced(broker):
    filled = broker.submit_order("AAPL", "BUY", 10)
    canceled = broker.submit_order("AAPL", "BUY", 10, "limit", 140.0)
    broker.cancel_order(canceled["order_id"])
    replaced = broker.submit_order("AAPL", "BUY", 10, "limit", 140.0)
    broker.replace_order(replaced["order_id"], limit_price=141.0)
    orders_before = broker.get_orders()

    for order in (filled, canceled, replaced):
        with pytest.raises(OrderNotReplaceableError):
            broker.replace_order(order["order_id"], limit_price=139.0)

    assert broker.get_orders() == orders_before


def test_an_expired_order_cannot_be_replaced(broker, clock):
    order = broker.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force="day")
    clock.current = utc(2024, 1, 2, 21)

    with pytest.raises(OrderNotReplaceableError):
        broker.replace_order(order["order_id"], limit_price=139.0)

    assert broker.get_order(order["order_id"])["status"] == "expired"
    assert broker.get_account()["reserved_cash"] == 0.0


# -- cancel all ------------------------------------------------------------------------------------------------
def test_cancel_all_orders_cancels_every_open_order_and_releases_every_reservation(long_broker, clock):
    buy = long_broker.submit_order("AAPL", "BUY", 10, "limit", 140.0)
    sell = long_broker.submit_order("AAPL", "SELL", 10, "limit", 200.0)
    stop = long_broker.submit_order("AAPL", "BUY", 10, "stop", stop_price=160.0)
    clock.advance(seconds=5)

    canceled = long_broker.cancel_all_orders()

    assert sorted((order["order_id"], order["status"]) for order in canceled) == sorted(
        [(buy["order_id"], "canceled"), (sell["order_id"], "canceled"), (stop["order_id"], "canceled")])
    assert long_broker.get_orders("open") == []
    assert long_broker.get_order(buy["order_id"])["canceled_at"] == utc(2024, 1, 2, 14, 30, 5)
    assert long_broker.get_account()["reserved_cash"] == 0.0
    assert long_broker.submit_order("AAPL", "SELL", 10)["status"] == "filled"  # the shares are free again


def test_cancel_all_orders_with_nothing_open_returns_nothing(long_broker):
    assert long_broker.cancel_all_orders() == []


# -- close positions -------------------------------------------------------------------------------------------
def test_close_position_sells_all_of_it_at_market(long_broker):
    result = long_broker.close_position("AAPL")

    assert (result["side"], result["order_type"], result["qty"], result["status"]) == ("SELL", "market", 10.0, "filled")
    assert result["fill_price"] == 149.925
    assert long_broker.get_positions() == {}


def test_close_position_by_quantity_sells_that_many(long_broker):
    result = long_broker.close_position("AAPL", qty=4)

    assert (result["qty"], result["status"]) == (4.0, "filled")
    assert long_broker.get_positions() == {"AAPL": 6.0}


def test_close_position_by_percentage_rounds_the_quantity_down(long_broker):
    result = long_broker.close_position("AAPL", percentage=66.666667)  # 6.6666667 -> 6.666666

    assert result["qty"] == 6.666666
    assert long_broker.get_positions() == {"AAPL": 3.333334}


def test_close_position_without_a_position_raises(broker):
    with pytest.raises(PositionNotFoundError):
        broker.close_position("AAPL")

    assert broker.get_orders() == []


def test_close_all_positions_sells_every_position(long_broker):
    long_broker.set_quote("MSFT", bid=400.0, ask=400.2)
    long_broker.submit_order("MSFT", "BUY", 5)

    results = long_broker.close_all_positions()

    assert sorted((r["symbol"], r["side"], r["qty"], r["status"]) for r in results) == [
        ("AAPL", "SELL", 10.0, "filled"), ("MSFT", "SELL", 5.0, "filled")]
    assert long_broker.get_positions() == {}


def test_close_all_positions_can_first_cancel_the_orders_holding_the_shares(long_broker):
    resting_sell = long_broker.submit_order("AAPL", "SELL", 10, "limit", 200.0)
    resting_buy = long_broker.submit_order("AAPL", "BUY", 10, "limit", 140.0)

    long_broker.close_all_positions(cancel_orders=True)

    assert long_broker.get_order(resting_sell["order_id"])["status"] == "canceled"
    assert long_broker.get_order(resting_buy["order_id"])["status"] == "canceled"
    assert long_broker.get_positions() == {}
    assert long_broker.get_account()["reserved_cash"] == 0.0


def test_close_all_positions_leaves_open_orders_alone_by_default(long_broker):
    resting_buy = long_broker.submit_order("AAPL", "BUY", 10, "limit", 140.0)

    long_broker.close_all_positions()

    assert long_broker.get_order(resting_buy["order_id"])["status"] == "new"
    assert long_broker.get_positions() == {}


def test_selling_more_than_held_is_still_rejected(long_broker):
    with pytest.raises(OrderRejectedError):
        long_broker.submit_order("AAPL", "SELL", 11)

    assert long_broker.get_positions() == {"AAPL": 10.0}


# -- client_order_id idempotency over the new fields -----------------------------------------------------------
ORIGINALS = {
    "stop": ({"qty": 10, "order_type": "stop", "stop_price": 160.0, "time_in_force": "day"},
             [{"stop_price": 161.0}, {"time_in_force": "gtc"}]),
    "trailing": ({"qty": 10, "order_type": "trailing_stop", "trail_price": 2.0},
                 [{"trail_price": 3.0}, {"trail_price": None, "trail_percent": 2.0}]),
    "notional": ({"notional": 1000}, [{"notional": 1001}]),
    "stop_limit": ({"qty": 10, "order_type": "stop_limit", "stop_price": 160.0, "limit_price": 161.0},
                   [{"limit_price": 162.0}, {"stop_price": 159.0}]),
}


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_same_client_order_id_and_parameters_replays_the_original(broker, name):
    original, _ = ORIGINALS[name]
    first = broker.submit_order("AAPL", "BUY", client_order_id="coid-1", **original)

    again = broker.submit_order("AAPL", "BUY", client_order_id="coid-1", **original)

    assert (again["order_id"], again["replayed"], first["replayed"]) == (first["order_id"], True, False)
    assert len(broker.get_orders()) == 1
    assert len(broker.get_fills()) == (1 if name == "notional" else 0)


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_same_client_order_id_with_a_different_new_field_is_a_conflict(broker, name):
    original, changes = ORIGINALS[name]
    broker.submit_order("AAPL", "BUY", client_order_id="coid-1", **original)

    for change in changes:
        with pytest.raises(ClientOrderIdConflictError):
            broker.submit_order("AAPL", "BUY", client_order_id="coid-1", **{**original, **change})

    assert len(broker.get_orders()) == 1


def test_replace_can_give_the_new_order_a_client_order_id(broker):
    old = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0, client_order_id="first")

    new = broker.replace_order(old["order_id"], limit_price=141.0, client_order_id="second")

    assert new["client_order_id"] == "second"
    assert broker.submit_order("AAPL", "BUY", 100, "limit", 141.0, client_order_id="second")["order_id"] == new["order_id"]
