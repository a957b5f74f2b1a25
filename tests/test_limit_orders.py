"""Limit orders: marketable ones fill never worse than the limit; others rest, reserve, and fill on a crossing quote."""

from __future__ import annotations

import pytest

from ledger.exceptions import InsufficientFundsError, OrderRejectedError


def test_marketable_limit_buy_fills_capped_at_its_limit(broker):
    # ask*(1+5bp) = 150.17505 > limit 150.12 -> the fill is capped at the limit
    result = broker.submit_order("AAPL", "BUY", 10, "limit", 150.12)
    assert result["status"] == "filled"
    assert result["fill_price"] == 150.12


def test_marketable_limit_sell_fills_never_below_its_limit(broker):
    broker.submit_order("AAPL", "BUY", 10)
    result = broker.submit_order("AAPL", "SELL", 10, "limit", 149.99)
    assert result["status"] == "filled"
    assert result["fill_price"] == 149.99


def test_limit_buy_rests_until_ask_crosses_then_fills_at_most_the_limit(broker):
    order = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)
    assert order["status"] == "new"
    assert broker.get_positions() == {}
    reserved = broker.get_account()["reserved_cash"]
    assert reserved == pytest.approx(100 * 140.0 * 1.0001)
    assert broker.get_account()["available_cash"] == pytest.approx(100_000 - reserved)

    assert broker.set_quote("AAPL", bid=140.5, ask=140.6) == []  # not crossed yet
    assert broker.get_order(order["order_id"])["status"] == "new"

    fills = broker.set_quote("AAPL", bid=139.8, ask=139.9)
    assert [f["order_id"] for f in fills] == [order["order_id"]]
    assert fills[0]["fill_price"] == pytest.approx(139.9 * 1.0005)
    assert fills[0]["fill_price"] <= 140.0
    assert broker.get_order(order["order_id"])["status"] == "filled"
    assert broker.get_positions() == {"AAPL": 100.0}
    assert broker.get_account()["reserved_cash"] == 0.0


def test_resting_limit_buy_gaps_through_is_capped_at_limit(make_broker):
    b = make_broker(slippage_bps=50, fee_bps=0)
    b.set_quote("AAPL", bid=150.0, ask=150.10)
    order = b.submit_order("AAPL", "BUY", 1, "limit", 140.0)
    [fill] = b.set_quote("AAPL", bid=139.9, ask=139.95)  # 139.95 * 1.005 = 140.649... > limit
    assert fill["fill_price"] == 140.0
    assert b.get_order(order["order_id"])["status"] == "filled"


def test_resting_sell_reserves_shares(broker):
    broker.submit_order("AAPL", "BUY", 10)
    broker.submit_order("AAPL", "SELL", 8, "limit", 200.0)
    with pytest.raises(OrderRejectedError, match="Insufficient shares: need 3, have 2"):
        broker.submit_order("AAPL", "SELL", 3)
    fills = broker.set_quote("AAPL", bid=201.0, ask=201.2)
    assert len(fills) == 1 and fills[0]["qty"] == 8.0
    assert broker.get_positions() == {"AAPL": 2.0}


def test_reservation_blocks_overspending(broker):
    broker.submit_order("AAPL", "BUY", 600, "limit", 140.0)  # reserves ~84,008
    with pytest.raises(InsufficientFundsError):
        broker.submit_order("AAPL", "BUY", 120)  # ~18,021 > ~15,992 available


def test_cancel_releases_reservation(broker):
    order = broker.submit_order("AAPL", "BUY", 100, "limit", 140.0)
    result = broker.cancel_order(order["order_id"])
    assert result["status"] == "canceled"
    assert broker.get_account()["reserved_cash"] == 0.0
    assert broker.get_cash() == 100_000
    assert broker.set_quote("AAPL", bid=130.0, ask=130.1) == []  # canceled order no longer fills
    assert broker.cancel_order(order["order_id"])["status"] == "canceled"


def test_limit_without_quote_rests_and_fills_on_first_quote(make_broker):
    b = make_broker()
    order = b.submit_order("MSFT", "BUY", 1, "limit", 300.0)
    assert order["status"] == "new"
    [fill] = b.set_quote("MSFT", bid=299.0, ask=299.5)
    assert fill["order_id"] == order["order_id"]
    assert b.verify() == []


def test_crossing_quote_fills_resting_orders_oldest_first_in_one_transaction(broker):
    first = broker.submit_order("AAPL", "BUY", 1, "limit", 140.0)
    second = broker.submit_order("AAPL", "BUY", 2, "limit", 145.0)
    untouched = broker.submit_order("AAPL", "BUY", 3, "limit", 100.0)
    fills = broker.set_quote("AAPL", bid=139.0, ask=139.5)
    assert [f["order_id"] for f in fills] == [first["order_id"], second["order_id"]]
    assert broker.get_order(untouched["order_id"])["status"] == "new"
    assert [o["order_id"] for o in broker.get_orders(status="new")] == [untouched["order_id"]]


@pytest.mark.parametrize(
    ("bid", "ask", "message"),
    [
        (float("nan"), 1.0, "finite"),
        (1.0, float("inf"), "finite"),
        (0.0, 1.0, "must be > 0"),
        (-1.0, 1.0, "must be > 0"),
        (2.0, 1.0, "above ask"),
        ("1", 2.0, "must be a number"),
    ],
)
def test_set_quote_rejects_bad_prices_and_keeps_the_last_quote(broker, bid, ask, message):
    from ledger.exceptions import InvalidQuoteError

    with pytest.raises(InvalidQuoteError, match=message):
        broker.set_quote("AAPL", bid=bid, ask=ask)
    quote = broker.get_quote("AAPL")
    assert (quote["bid"], quote["ask"]) == (150.0, 150.10)
