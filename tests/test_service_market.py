"""Clock, calendar, assets, market data (StockHistoricalDataClient) and the trade_updates stream (TradingStream)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import GetCalendarRequest, LimitOrderRequest
from alpaca.trading.stream import TradingStream

from tests.service_support import Server, engine_name, ledger_verified, service  # noqa: F401

pytestmark = pytest.mark.usefixtures("ledger_verified")


def data_client(service: Server, account: str) -> StockHistoricalDataClient:
    key_id, secret = service.keys[account]
    return StockHistoricalDataClient(key_id, secret, url_override=service.url)


def test_clock_and_calendar_follow_the_nyse(service: Server):
    client = service.trading("alice")
    clock = client.get_clock()
    assert clock.next_open > clock.timestamp and clock.next_close > clock.timestamp
    days = client.get_calendar(GetCalendarRequest(start=date(2024, 11, 25), end=date(2024, 11, 29)))
    assert [day.date for day in days] == [date(2024, 11, d) for d in (25, 26, 27, 29)]  # Thanksgiving closed
    assert days[-1].close.hour == 13  # the day after closes early


def test_assets_are_the_symbols_the_ledger_knows(service: Server):
    service.set_quotes("alice", {"symbol": "AST1", "bid": "3", "ask": "3"})
    client = service.trading("alice")
    asset = client.get_asset("AST1")
    assert asset.symbol == "AST1" and asset.tradable
    assert "AST1" in {a.symbol for a in client.get_all_assets()}
    assert client.get_asset(asset.id).symbol == "AST1"


def test_latest_quotes_and_bars_through_the_data_client(service: Server):
    from ledger.bars import DatabaseBarCache
    import pandas as pd

    service.set_quotes("alice", {"symbol": "DQ1", "bid": "10.5", "ask": "10.75", "bid_size": 3, "ask_size": 4})
    quote = data_client(service, "alice").get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["DQ1", "NONE"]))
    assert set(quote) == {"DQ1"} and (quote["DQ1"].bid_price, quote["DQ1"].ask_price, quote["DQ1"].ask_size) == (10.5, 10.75, 4)
    index = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    frame = pd.DataFrame({"open": [1.0, 2, 3, 4, 5], "high": [2.0] * 5, "low": [0.5] * 5, "close": [1.5] * 5,
                          "volume": [100] * 5}, index=index)
    DatabaseBarCache(service.db_url).put_bars("DBAR", "1d", frame)
    response = data_client(service, "alice").get("/stocks/bars", {"symbols": "DBAR", "timeframe": "1Day", "limit": 2})
    assert len(response["bars"]["DBAR"]) == 2 and response["next_page_token"]
    bars = data_client(service, "alice").get_stock_bars(StockBarsRequest(
        symbol_or_symbols="DBAR", timeframe=TimeFrame.Day, start=datetime(2024, 1, 1, tzinfo=UTC), limit=4))
    assert [bar.open for bar in bars["DBAR"]] == [1.0, 2.0, 3.0, 4.0]


def test_trade_updates_stream_carries_the_accounts_events_only(service: Server):
    service.set_quotes("alice", {"symbol": "STR1", "bid": "7", "ask": "7.1"})
    key_id, secret = service.keys["alice"]
    received: list[object] = []
    stream = TradingStream(key_id, secret, paper=True, url_override=service.url.replace("http", "ws") + "/stream")

    async def on_update(update: object) -> None:
        received.append(update)

    stream.subscribe_trade_updates(on_update)
    runner = threading.Thread(target=stream.run, daemon=True)
    runner.start()
    time.sleep(1.5)  # connect, authenticate, listen
    bob = service.trading("bob")
    service.set_quotes("bob", {"symbol": "STR1", "bid": "7", "ask": "7.1"})
    bob.submit_order(LimitOrderRequest(symbol="STR1", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1))
    alice = service.trading("alice")
    order = alice.submit_order(LimitOrderRequest(symbol="STR1", qty=1, side=OrderSide.BUY,
                                                 time_in_force=TimeInForce.GTC, limit_price=6))
    service.set_quotes("alice", {"symbol": "STR1", "bid": "5.9", "ask": "6"})
    deadline_at = time.monotonic() + 10
    while time.monotonic() < deadline_at and len(received) < 2:
        time.sleep(0.1)
    stream.stop()
    runner.join(timeout=10)
    events = [(update.event, update.order.id) for update in received]  # type: ignore[attr-defined]
    assert events == [("new", order.id), ("fill", order.id)]
    fill = received[1]
    assert fill.price == 6 and fill.qty == 1 and fill.position_qty == 1  # type: ignore[attr-defined]
    for update in received:
        assert update.order.symbol == "STR1" and update.order.limit_price == "6"  # type: ignore[attr-defined]
