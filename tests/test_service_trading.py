"""alpaca-py 0.44 runs unmodified against `paper-ledger serve`: account, orders, positions, activities, errors.

Every call goes over real HTTP to a server subprocess; the ledger is verified after each scenario.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from tests.service_support import Server, engine_name, ledger_verified, service  # noqa: F401

pytestmark = pytest.mark.usefixtures("ledger_verified")


def market(symbol: str, qty: float, side: OrderSide = OrderSide.BUY, **extra: object) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.GTC, **extra)


def test_account_reads_as_a_trade_account_with_exact_decimal_strings(service: Server):
    account = service.trading("bob").get_account()
    assert account.status == "ACTIVE" and account.cash == "10000" and account.equity == "10000"
    assert isinstance(account.id, uuid.UUID)
    assert service.trading("bob").get_account().id == account.id  # stable


def test_market_buy_fills_at_the_ask_and_shows_as_position_order_and_fill_activity(service: Server):
    service.set_quotes("alice", {"symbol": "MKT1", "bid": "99.9", "ask": "100.1"})
    client = service.trading("alice")
    before = client.get_account()
    order = client.submit_order(market("MKT1", 3))
    assert order.status == OrderStatus.FILLED and order.filled_qty == "3" and order.symbol == "MKT1"
    assert client.get_order_by_id(order.id) == order
    assert client.get_order_by_client_id(order.client_order_id).id == order.id
    position = client.get_open_position("MKT1")
    assert (position.qty, position.side, position.cost_basis, position.avg_entry_price) == ("3", "long", "300.3", "100.1")
    assert position.current_price == "100" and position.market_value == "300"
    after = client.get_account()
    assert float(after.cash) == pytest.approx(float(before.cash) - 300.3)
    fills = client.get("/account/activities/FILL", {"direction": "asc"})
    mine = [fill for fill in fills if fill["order_id"] == str(order.id)]
    assert mine and mine[0]["price"] == "100.1" and mine[0]["qty"] == "3" and mine[0]["type"] == "fill"


def test_a_limit_order_rests_is_listed_open_and_fills_when_a_quote_from_another_process_crosses_it(service: Server):
    from ledger.brokers.paper import PaperBroker

    service.set_quotes("alice", {"symbol": "LIM1", "bid": "50", "ask": "50.2"})
    client = service.trading("alice")
    order = client.submit_order(LimitOrderRequest(symbol="LIM1", qty=2, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.GTC, limit_price=49.5))
    assert order.status == OrderStatus.NEW and order.limit_price == "49.5"
    listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=["LIM1"]))
    assert [o.id for o in listed] == [order.id]
    with PaperBroker(account="alice", db_url=service.db_url, slippage_bps=0, fee_bps=0) as other_process:
        other_process.set_quote("LIM1", bid=49.0, ask=49.4)
    assert client.get_order_by_id(order.id).status == OrderStatus.FILLED
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, symbols=["LIM1"]))
    assert [o.id for o in closed] == [order.id]


def test_cancel_a_resting_order_then_canceling_a_filled_one_is_unprocessable(service: Server):
    service.set_quotes("alice", {"symbol": "CXL1", "bid": "10", "ask": "10.1"})
    client = service.trading("alice")
    resting = client.submit_order(LimitOrderRequest(symbol="CXL1", qty=1, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.GTC, limit_price=9))
    assert client.cancel_order_by_id(resting.id) is None
    assert client.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    filled = client.submit_order(market("CXL1", 1))
    with pytest.raises(APIError) as refused:
        client.cancel_order_by_id(filled.id)
    assert refused.value.status_code == 422 and refused.value.code == 42210000


def test_client_order_id_is_idempotent_and_a_conflicting_reuse_is_refused(service: Server):
    service.set_quotes("alice", {"symbol": "IDEM", "bid": "20", "ask": "20"})
    client = service.trading("alice")
    first = client.submit_order(market("IDEM", 1, client_order_id="idem-1"))
    again = client.submit_order(market("IDEM", 1, client_order_id="idem-1"))
    assert again.id == first.id and client.get_open_position("IDEM").qty == "1"
    with pytest.raises(APIError) as conflict:
        client.submit_order(market("IDEM", 2, client_order_id="idem-1"))
    assert conflict.value.status_code == 422 and conflict.value.code == 40010001


def test_refusals_carry_alpaca_codes(service: Server):
    service.set_quotes("bob", {"symbol": "BIG", "bid": "1000", "ask": "1000"})
    client = service.trading("bob")
    with pytest.raises(APIError) as poor:
        client.submit_order(market("BIG", 1000))
    assert poor.value.status_code == 403 and poor.value.code == 40310000
    with pytest.raises(APIError) as short:
        client.submit_order(market("BIG", 1, OrderSide.SELL))
    assert short.value.status_code == 403 and short.value.code == 40310000
    with pytest.raises(APIError) as unquoted:
        client.submit_order(market("NOQUOTE", 1))
    assert unquoted.value.status_code == 422 and unquoted.value.code == 42210000
    with pytest.raises(APIError) as unknown:
        client.get_order_by_id(uuid.uuid4())
    assert unknown.value.status_code == 404 and unknown.value.code == 40410000
    with pytest.raises(APIError) as no_position:
        client.get_open_position("NOPE")
    assert no_position.value.status_code == 404 and no_position.value.code == 40410000


def test_wrong_or_missing_credentials_answer_401_in_every_scheme(service: Server):
    key_id, secret = service.keys["alice"]
    for headers in ({}, {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret + "x"},
                    {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!!"}):
        response = httpx.get(service.url + "/v2/account", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == 40110000
    basic = httpx.get(service.url + "/v2/account", auth=(key_id, secret))
    bearer = httpx.get(service.url + "/v2/account", headers={"Authorization": f"Bearer {key_id}:{secret}"})
    assert basic.status_code == bearer.status_code == 200


def test_an_admin_key_is_refused_by_the_api_with_its_own_code(service: Server):
    from ledger.book.keys import create_admin_key
    from ledger.db.engine import dispose_engines, get_engine

    key_id, secret = create_admin_key(get_engine(service.db_url))
    dispose_engines()
    response = httpx.get(service.url + "/v2/account", headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret})
    assert response.status_code == 403
    assert response.json() == {"code": 40310001, "message": response.json()["message"]}
    assert "dashboard only" in response.json()["message"]


def test_http_edges_no_redirects_double_slashes_json_errors_and_body_limit(service: Server):
    headers = service.headers("alice")
    trailing = service.trading("alice", url_suffix="/")  # the SDK then sends //v2/...
    assert trailing.get_account().status == "ACTIVE"
    for method, path in (("GET", "/v2/account/"), ("GET", "/v2/nothing"), ("PUT", "/v2/orders")):
        response = httpx.request(method, service.url + path, headers=headers)
        assert response.status_code in (404, 405) and set(response.json()) == {"code", "message"}
    malformed = httpx.post(service.url + "/v2/orders", content=b"{not json", headers=headers)
    assert malformed.status_code == 422 and malformed.json()["code"] == 40010001
    invalid = httpx.post(service.url + "/v2/orders", json={"symbol": "X", "qty": "abc", "side": "buy"}, headers=headers)
    assert invalid.status_code == 422 and invalid.json()["code"] == 40010001
    huge = httpx.post(service.url + "/v1/ledger/quotes", content=b"[" + b" " * (2 << 20) + b"]", headers=headers)
    assert huge.status_code == 413 and set(huge.json()) == {"code", "message"}
    # A quote list is one transaction: a repeated symbol or one bad quote stores none of them.
    for batch in ([{"symbol": "QB1", "bid": "1", "ask": "1"}, {"symbol": "QB1", "bid": "2", "ask": "2"}],
                  [{"symbol": "QB1", "bid": "1", "ask": "1"}, {"symbol": "QB2", "bid": "3", "ask": "2"}]):
        refused = httpx.post(service.url + "/v1/ledger/quotes", json=batch, headers=headers)
        assert refused.status_code == 422 and set(refused.json()) == {"code", "message"}, refused.text
    stored = httpx.get(service.url + "/v2/stocks/quotes/latest", params={"symbols": "QB1,QB2"}, headers=headers)
    assert stored.json()["quotes"] == {}, "nothing of a refused quote list is stored"
    assert httpx.get(service.url + "/healthz").json()["status"] == "ok"


def test_one_accounts_key_sees_and_changes_nothing_of_another_account(service: Server):
    service.set_quotes("alice", {"symbol": "ISO1", "bid": "5", "ask": "5"})
    alice, bob = service.trading("alice"), service.trading("bob")
    resting = alice.submit_order(LimitOrderRequest(symbol="ISO1", qty=1, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.GTC, limit_price=4, client_order_id="iso-1"))
    alice.submit_order(market("ISO1", 1))
    for call in (lambda: bob.get_order_by_id(resting.id), lambda: bob.cancel_order_by_id(resting.id),
                 lambda: bob.get_order_by_client_id("iso-1"), lambda: bob.get_open_position("ISO1")):
        with pytest.raises(APIError) as hidden:
            call()
        assert hidden.value.status_code == 404 and hidden.value.code == 40410000
    assert "ISO1" not in {o.symbol for o in bob.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))}
    assert "ISO1" not in {p.symbol for p in bob.get_all_positions()}
    bob_fills = bob.get("/account/activities/FILL")
    assert all(fill.get("symbol") != "ISO1" for fill in bob_fills)
    quotes = httpx.get(service.url + "/v2/stocks/quotes/latest", params={"symbols": "ISO1"}, headers=service.headers("bob"))
    assert quotes.json() == {"quotes": {}}
    assert alice.get_order_by_id(resting.id).status == OrderStatus.NEW
    alice.cancel_order_by_id(resting.id)


def test_order_listing_filters_and_pages_by_time(service: Server):
    service.set_quotes("alice", {"symbol": "LST1", "bid": "1", "ask": "1"}, {"symbol": "LST2", "bid": "1", "ask": "1"})
    client = service.trading("alice")
    placed = [client.submit_order(market(symbol, 1)) for symbol in ("LST1", "LST2", "LST1")]
    newest_first = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["LST1", "LST2"]))
    assert [o.id for o in newest_first] == [o.id for o in reversed(placed)]
    oldest_first = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["LST1"], direction="asc",
                                                      limit=1))
    assert [o.id for o in oldest_first] == [placed[0].id]
    after_first = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["LST1", "LST2"],
                                                     after=placed[0].submitted_at, direction="asc"))
    assert [o.id for o in after_first] == [o.id for o in placed[1:]]
    sells = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["LST1"], side=OrderSide.SELL))
    assert sells == []


def test_activities_page_with_the_last_ids_token(service: Server):
    service.set_quotes("alice", {"symbol": "ACT1", "bid": "2", "ask": "2"})
    client = service.trading("alice")
    for _ in range(3):
        client.submit_order(market("ACT1", 1))
    first = client.get("/account/activities/FILL", {"page_size": 2})
    second = client.get("/account/activities/FILL", {"page_size": 2, "page_token": first[-1]["id"]})
    assert len(first) == 2 and second and second[0]["id"] < first[-1]["id"]
    deposits = client.get("/account/activities", {"activity_types": "CSD"})
    assert deposits and deposits[-1]["net_amount"] == "100000"
