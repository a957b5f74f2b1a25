"""The routes that need issue 9's order engine (time in force, stops, notional, replace, close positions,
cancel all, account configuration, equity marks). They fail until that engine is merged: the service does not
imitate the library's behaviour."""

from __future__ import annotations

import httpx
import pytest
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopOrderRequest,
)

from tests.service_support import Server, engine_name, ledger_verified, service  # noqa: F401

pytestmark = pytest.mark.usefixtures("ledger_verified")


def test_a_day_limit_order_keeps_its_time_in_force(service: Server):
    service.set_quotes("alice", {"symbol": "DAY1", "bid": "10", "ask": "10.1"})
    order = service.trading("alice").submit_order(LimitOrderRequest(
        symbol="DAY1", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=9))
    assert order.time_in_force == TimeInForce.DAY and order.expires_at is not None


def test_a_stop_order_rests_with_its_stop_price(service: Server):
    service.set_quotes("alice", {"symbol": "STP1", "bid": "10", "ask": "10.1"})
    order = service.trading("alice").submit_order(StopOrderRequest(
        symbol="STP1", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, stop_price=11))
    assert order.status == OrderStatus.NEW and order.stop_price == "11"


def test_a_notional_market_order_fills_a_fractional_quantity(service: Server):
    service.set_quotes("alice", {"symbol": "NOT1", "bid": "40", "ask": "40"})
    order = service.trading("alice").submit_order(MarketOrderRequest(
        symbol="NOT1", notional=100, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    assert order.status == OrderStatus.FILLED and order.filled_qty == "2.5" and order.notional == "100"


def test_replace_links_the_old_and_new_orders(service: Server):
    service.set_quotes("alice", {"symbol": "RPL1", "bid": "10", "ask": "10.1"})
    client = service.trading("alice")
    old = client.submit_order(LimitOrderRequest(symbol="RPL1", qty=1, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.GTC, limit_price=9))
    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=9.5, qty=2))
    assert new.replaces == old.id and new.limit_price == "9.5"
    assert client.get_order_by_id(old.id).status == OrderStatus.REPLACED


def test_close_a_position_by_percentage_and_all_positions_with_cancel(service: Server):
    service.set_quotes("alice", {"symbol": "CLS1", "bid": "5", "ask": "5"})
    client = service.trading("alice")
    client.submit_order(MarketOrderRequest(symbol="CLS1", qty=4, side=OrderSide.BUY, time_in_force=TimeInForce.GTC))
    half = client.close_position("CLS1", ClosePositionRequest(percentage="50"))
    assert half.side == OrderSide.SELL and half.qty == "2"
    results = client.close_all_positions(cancel_orders=True)
    assert all(result.status == 200 for result in results)
    assert client.get_all_positions() == []


def test_cancel_all_orders_answers_207_per_order(service: Server):
    service.set_quotes("alice", {"symbol": "CAL1", "bid": "5", "ask": "5"})
    client = service.trading("alice")
    resting = client.submit_order(LimitOrderRequest(symbol="CAL1", qty=1, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.GTC, limit_price=4))
    results = client.cancel_orders()
    assert [(r.id, r.status) for r in results if r.id == resting.id] == [(resting.id, 200)]


def test_account_configuration_maps_onto_the_account_settings_and_a_margin_account_sells_short(service: Server):
    from alpaca.common.exceptions import APIError

    client = service.trading("bob")
    current = client.get_account_configurations()
    assert (current.no_shorting, current.max_margin_multiplier) == (True, "1")  # a cash account
    configured = client.set_account_configurations(current.model_copy(update={"no_shorting": True}))
    assert configured.no_shorting is True
    # A cash account cannot sell short: refused with Alpaca's error shape, nothing changed.
    with pytest.raises(APIError) as refused:
        client.set_account_configurations(current.model_copy(update={"no_shorting": False}))
    assert refused.value.status_code == 422 and "short selling needs a margin account" in refused.value.message
    assert client.get_account_configurations().no_shorting is True

    margin = client.set_account_configurations(
        current.model_copy(update={"no_shorting": False, "max_margin_multiplier": "2"}))
    assert (margin.no_shorting, margin.max_margin_multiplier) == (False, "2")
    service.set_quotes("bob", {"symbol": "SHRT", "bid": "20", "ask": "20"})
    sale = client.submit_order(MarketOrderRequest(symbol="SHRT", qty=100, side=OrderSide.SELL,
                                                  time_in_force=TimeInForce.GTC))
    assert sale.status == OrderStatus.FILLED
    position = client.get_open_position("SHRT")
    assert (position.side, position.qty, position.market_value, position.cost_basis) == ("short", "-100", "-2000", "-2000")
    account = client.get_account()
    # 10,000 cash + 2,000 proceeds; equity 10,000; buying power 2 x 10,000 - 2,000.
    assert (account.cash, account.equity, account.short_market_value) == ("12000", "10000", "-2000")
    assert (account.buying_power, account.multiplier, account.shorting_enabled) == ("18000", "2", True)
    assert (account.initial_margin, account.maintenance_margin) == ("1000", "600")
    with pytest.raises(APIError) as reversing:  # a buy may cover the short, not turn it into a long
        client.submit_order(MarketOrderRequest(symbol="SHRT", qty=150, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.GTC))
    assert "cannot also open a long" in reversing.value.message
    covered = client.close_position("SHRT")
    assert (covered.side, covered.qty) == (OrderSide.BUY, "100")
    client.set_account_configurations(current.model_copy(update={"no_shorting": True, "max_margin_multiplier": "1"}))


def test_portfolio_history_comes_from_the_equity_marks(service: Server):
    history = service.trading("alice").get_portfolio_history(GetPortfolioHistoryRequest(period="1W", timeframe="1D"))
    assert history.timeframe == "1D" and len(history.timestamp) == len(history.equity)


def test_amounts_beyond_float_precision_render_exactly_in_positions_closes_and_cancels(service: Server):
    # 17 significant digits: a float turns 12345678901.234567 into ...568 and 12345678900.000001 into ...002.
    service.set_quotes("alice", {"symbol": "BIG1", "bid": "12345678901.234567", "ask": "12345678901.234569"})
    client = service.trading("alice")
    client.submit_order(MarketOrderRequest(symbol="BIG1", qty="0.000002", side=OrderSide.BUY,
                                           time_in_force=TimeInForce.GTC))
    position = client.get_open_position("BIG1")
    assert (position.qty, position.current_price) == ("0.000002", "12345678901.234568")
    resting = httpx.post(service.url + "/v2/orders", headers=service.headers("alice"), json={
        "symbol": "BIG1", "qty": "0.000001", "side": "buy", "type": "limit", "time_in_force": "gtc",
        "limit_price": "12345678900.000001"}).json()
    assert resting["limit_price"] == "12345678900.000001"

    closed = client.close_position("BIG1")
    assert (closed.filled_qty, closed.filled_avg_price) == ("0.000002", "12345678901.234567")
    canceled = httpx.delete(service.url + "/v2/orders", headers=service.headers("alice")).json()
    assert [result["body"]["limit_price"] for result in canceled if result["id"] == resting["id"]] == [
        "12345678900.000001"]
