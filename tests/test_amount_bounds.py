"""Every computed amount stays below the documented 10^12 bound: past it the order is rejected (recorded, with
the reason) before anything is written, so no BIGINT millionths column can overflow and no account is wedged."""

from __future__ import annotations

import pytest

from ledger.exceptions import OrderRejectedError

BIG = 999_999_999_999  # the largest whole price the ledger accepts


def _rejected_reason(broker) -> str:
    rejected = broker.get_orders(status="rejected")
    assert rejected, "the refused order is recorded"
    return rejected[-1]["reject_reason"]


def test_a_sell_at_an_extreme_quote_is_rejected_not_crashed(make_broker):
    broker = make_broker(initial_cash=1_000, slippage_bps=0, fee_bps=0)
    broker.set_quote("AAPL", bid=10, ask=10)
    broker.submit_order("AAPL", "BUY", 10)
    broker.set_quote("AAPL", bid=BIG, ask=BIG)
    with pytest.raises(OrderRejectedError, match="10\\^12"):
        broker.submit_order("AAPL", "SELL", 10)
    assert "notional" in _rejected_reason(broker)
    assert broker.get_positions() == {"AAPL": 10.0} and broker.get_cash() == 900
    assert broker.verify() == []


def test_a_notional_at_or_above_the_limit_is_rejected_even_when_cash_would_cover_it(make_broker):
    broker = make_broker(initial_cash=999_999_999_999, slippage_bps=0, fee_bps=0)
    broker.set_quote("X", bid=500_000_000_000, ask=500_000_000_000)
    with pytest.raises(OrderRejectedError, match="notional would be 1000000000000"):
        broker.submit_order("X", "BUY", 2)
    assert broker.get_positions() == {}


def test_cash_cannot_be_pushed_past_the_bound_by_a_sell(make_broker):
    broker = make_broker(initial_cash=900_000_000_000, slippage_bps=0, fee_bps=0)
    broker.set_quote("X", bid=1_000, ask=1_000)
    broker.submit_order("X", "BUY", 100_000)  # 100,000,000 of stock
    broker.set_quote("X", bid=2_000_000, ask=2_000_000)  # now worth 2 x 10^11: selling all would make cash >= 10^12
    with pytest.raises(OrderRejectedError, match="cash after the fill"):
        broker.submit_order("X", "SELL", 100_000)
    broker.submit_order("X", "SELL", 1_000)  # a smaller sell still works: the account is not wedged
    assert broker.verify() == []


def test_a_resting_buy_whose_reservation_would_pass_the_bound_is_rejected(broker):
    with pytest.raises(OrderRejectedError, match="10\\^12"):
        broker.submit_order("AAPL", "BUY", 900_000_000_000, "limit", 2)
    assert _rejected_reason(broker).startswith("the notional")


def test_position_quantity_and_value_stay_within_the_bound(make_broker):
    broker = make_broker(initial_cash=999_999_999_999, slippage_bps=0, fee_bps=0)
    broker.set_quote("PENNY", bid=0.000001, ask=0.000001)
    broker.submit_order("PENNY", "BUY", 999_999_999_999)
    with pytest.raises(OrderRejectedError, match="position's quantity"):
        broker.submit_order("PENNY", "BUY", 1)
    assert broker.verify() == []


def test_a_resting_sell_crossed_by_an_extreme_quote_is_canceled_with_the_reason(make_broker):
    broker = make_broker(initial_cash=1_000, slippage_bps=0, fee_bps=0)
    broker.set_quote("AAPL", bid=10, ask=10)
    broker.submit_order("AAPL", "BUY", 10)
    resting = broker.submit_order("AAPL", "SELL", 10, "limit", 20)
    assert broker.set_quote("AAPL", bid=BIG, ask=BIG) == []  # the quote is stored; the fill is not made
    assert broker.get_order(resting["order_id"])["status"] == "canceled"
    assert broker.get_positions() == {"AAPL": 10.0}
    assert broker.get_account()["available_cash"] == 900
    assert broker.verify() == []
