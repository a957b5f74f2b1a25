"""client_order_id: a resubmission returns the original order and fills nothing twice."""

from __future__ import annotations

import pytest

from ledger.exceptions import ClientOrderIdConflictError, InsufficientFundsError


def test_same_client_order_id_same_parameters_returns_original(broker):
    first = broker.submit_order("AAPL", "BUY", 10, client_order_id="rebalance-2024-01-02-AAPL")
    again = broker.submit_order("AAPL", "BUY", 10, client_order_id="rebalance-2024-01-02-AAPL")
    assert again["order_id"] == first["order_id"]
    assert again["replayed"] is True and first["replayed"] is False
    assert again["fill_price"] == first["fill_price"]
    assert len(broker.get_fills()) == 1
    assert broker.get_positions() == {"AAPL": 10.0}


def test_resubmission_from_a_restarted_broker_is_idempotent(make_broker, broker):
    first = broker.submit_order("AAPL", "BUY", 10, client_order_id="bar-17")
    broker.close()
    restarted = make_broker(run_id=None)
    again = restarted.submit_order("aapl", "buy", 10.0, client_order_id="bar-17")
    assert again["order_id"] == first["order_id"]
    assert len(restarted.get_fills()) == 1


def test_same_client_order_id_different_parameters_conflicts_and_changes_nothing(broker):
    broker.submit_order("AAPL", "BUY", 10, client_order_id="c-1")
    cash = broker.get_cash()
    with pytest.raises(ClientOrderIdConflictError, match="c-1"):
        broker.submit_order("AAPL", "BUY", 11, client_order_id="c-1")
    with pytest.raises(ClientOrderIdConflictError):
        broker.submit_order("AAPL", "BUY", 10, "limit", 150.0, client_order_id="c-1")
    assert broker.get_cash() == cash
    assert len(broker.get_orders()) == 1


def test_client_order_ids_are_per_account(make_broker, broker):
    broker.submit_order("AAPL", "BUY", 1, client_order_id="same")
    other = make_broker(account="other")
    other.set_quote("AAPL", bid=150.0, ask=150.1)
    result = other.submit_order("AAPL", "BUY", 1, client_order_id="same")
    assert result["replayed"] is False
    assert other.verify() == []


def test_rejected_order_does_not_consume_its_client_order_id(broker):
    with pytest.raises(InsufficientFundsError):
        broker.submit_order("AAPL", "BUY", 1000, client_order_id="retry-me")
    broker.set_quote("AAPL", bid=50.0, ask=50.0)
    filled = broker.submit_order("AAPL", "BUY", 1000, client_order_id="retry-me")
    assert filled["status"] == "filled"
    assert [o["status"] for o in broker.get_orders()] == ["rejected", "filled"]


def test_resting_order_resubmitted_is_not_duplicated(broker):
    first = broker.submit_order("AAPL", "BUY", 5, "limit", 140.0, client_order_id="rest-1")
    again = broker.submit_order("AAPL", "BUY", 5, "limit", 140.0, client_order_id="rest-1")
    assert again["order_id"] == first["order_id"] and again["status"] == "new"
    assert len(broker.get_orders(status="new")) == 1
    assert broker.get_account()["reserved_cash"] == pytest.approx(5 * 140 * 1.0001)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "nul\x00", 42])
def test_malformed_client_order_id_is_rejected(broker, bad):
    from ledger.exceptions import OrderRejectedError

    with pytest.raises(OrderRejectedError, match="client_order_id"):
        broker.submit_order("AAPL", "BUY", 1, client_order_id=bad)
    assert broker.get_positions() == {}


def test_resending_an_id_with_only_the_limit_price_changed_conflicts(broker):
    broker.submit_order("AAPL", "BUY", 5, "limit", 140.0, client_order_id="lim-1")
    with pytest.raises(ClientOrderIdConflictError, match="lim-1"):
        broker.submit_order("AAPL", "BUY", 5, "limit", 141.0, client_order_id="lim-1")
    assert len(broker.get_orders()) == 1


def test_resending_an_id_with_only_the_side_changed_conflicts(broker):
    broker.submit_order("AAPL", "BUY", 5, client_order_id="side-1")
    with pytest.raises(ClientOrderIdConflictError, match="side-1"):
        broker.submit_order("AAPL", "SELL", 5, client_order_id="side-1")
    assert broker.get_positions() == {"AAPL": 5.0}


def test_a_batch_reads_its_stored_client_order_ids_ahead_and_answers_each_as_one_lookup_would(broker):
    """A batch looks up all its client_order_ids in one query: a stored filled order and a stored resting one
    are replayed as they stand, an id only a rejected order carried is free, and a new id is placed."""
    filled = broker.submit_order("AAPL", "BUY", 10, client_order_id="b-filled")
    resting = broker.submit_order("AAPL", "BUY", 5, order_type="limit", limit_price=140, client_order_id="b-rest")
    with pytest.raises(InsufficientFundsError):
        broker.submit_order("AAPL", "BUY", 10_000, client_order_id="b-free")
    results = broker.submit_orders([
        {"symbol": "AAPL", "side": "BUY", "qty": 10, "client_order_id": "b-filled"},
        {"symbol": "AAPL", "side": "BUY", "qty": 5, "order_type": "limit", "limit_price": 140,
         "client_order_id": "b-rest"},
        {"symbol": "AAPL", "side": "BUY", "qty": 2, "client_order_id": "b-free"},
        {"symbol": "AAPL", "side": "BUY", "qty": 1, "client_order_id": "b-new"},
    ])
    assert [r["replayed"] for r in results] == [True, True, False, False]
    assert results[0]["order_id"] == filled["order_id"] and results[0]["status"] == "filled"
    assert results[1]["order_id"] == resting["order_id"] and results[1]["status"] == "new"
    assert [r["status"] for r in results[2:]] == ["filled", "filled"]
    assert broker.get_positions() == {"AAPL": 13.0}
    assert len(broker.get_fills()) == 3


def test_a_replayed_order_inside_a_transaction_is_reported_as_the_transaction_left_it(make_broker, clock):
    """Within one transaction a quote fills a resting order; resubmitting its client_order_id afterwards returns
    it filled (read again, not an answer read ahead by an earlier call)."""
    broker = make_broker()
    broker.set_quotes({"AAPL": (150.0, 150.1)})
    resting = {"symbol": "AAPL", "side": "BUY", "qty": 5, "order_type": "limit", "limit_price": 149,
               "client_order_id": "tx-rest"}
    broker.submit_orders([resting])
    clock.advance(minutes=1)
    with broker.transaction() as tx:
        assert tx.submit_orders([resting])[0]["status"] == "new"
        tx.set_quotes({"AAPL": (148.0, 148.5)})
        again = tx.submit_orders([resting])
    assert again[0]["replayed"] is True and again[0]["status"] == "filled"
    assert broker.get_positions() == {"AAPL": 5.0}


def test_an_order_the_transaction_placed_is_replayed_as_its_later_calls_left_it(make_broker, clock):
    """Within one transaction an order placed by one call, then filled by a quote (or canceled) in a later call,
    is reported filled (or canceled) when its client_order_id comes again: not as the call that placed it left it."""
    broker = make_broker()
    broker.set_quotes({"AAPL": (150.0, 150.1)})
    filled = {"symbol": "AAPL", "side": "BUY", "qty": 5, "order_type": "limit", "limit_price": 149,
              "client_order_id": "tx-placed-filled"}
    canceled = {**filled, "limit_price": 140, "client_order_id": "tx-placed-canceled"}
    clock.advance(minutes=1)
    with broker.transaction() as tx:
        placed = tx.submit_orders([filled, canceled])
        assert [order["status"] for order in placed] == ["new", "new"]
        tx.cancel_order(placed[1]["order_id"])
        tx.set_quotes({"AAPL": (148.0, 148.5)})  # crosses the first limit
        again = tx.submit_orders([filled, canceled])
    assert [order["replayed"] for order in again] == [True, True]
    assert [order["status"] for order in again] == ["filled", "canceled"]
    assert [broker.get_order(order["order_id"])["status"] for order in placed] == ["filled", "canceled"]
    assert broker.get_positions() == {"AAPL": 5.0}
