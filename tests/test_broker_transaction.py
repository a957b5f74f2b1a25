"""``PaperBroker.transaction()``: several broker calls in one write transaction (issue 12: a replay bar's quotes,
orders and equity mark commit together, one commit per bar).

Checked here: the calls commit together or not at all; a rejected batch inside leaves nothing of itself (its
cancels included) while the rest of the transaction commits; after such a rollback the transaction reads the
account, positions and keys afresh (later orders in it are right, and verify() holds); holdings inside see the
transaction's own fills; one equity mark of the final state is written; and calls outside the block are refused.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.exceptions import BrokerError, ClockWentBackwardsError, InsufficientFundsError, OrderRejectedError
from tests.conftest import table_snapshot


def with_a_resting_limit_buy(make_broker):
    """A broker quoting AAPL 150.00 / 150.10 with a resting limit buy of 10 at 149."""
    broker = make_broker()
    broker.set_quotes({"AAPL": (150.0, 150.1)})
    broker.submit_order("AAPL", "BUY", 10, order_type="limit", limit_price=149)
    return broker


def test_the_calls_of_a_transaction_commit_together_with_one_mark_of_the_final_state(make_broker, clock, equity_marks):
    broker = make_broker()
    broker.set_quotes({"AAPL": (150.0, 150.1), "MSFT": (300.0, 300.2)})
    resting = broker.submit_order("AAPL", "BUY", 10, order_type="limit", limit_price=149)
    marks_before = len(equity_marks())
    clock.advance(days=1)
    with broker.transaction() as tx:
        fills = tx.set_quotes({"AAPL": (148.0, 148.5), "MSFT": (301.0, 301.2)})  # crosses the resting limit
        assert [fill["order_id"] for fill in fills] == [resting["order_id"]]
        placed = tx.submit_orders([{"symbol": "MSFT", "side": "BUY", "qty": 5}])
        assert placed[0]["status"] == "filled"
        tx.mark_equity()
    marks = equity_marks()[marks_before:]
    assert len(marks) == 1, "one mark for the whole transaction"
    at, cash, long_value, short_value, equity = marks[0]
    assert at == clock.current
    assert cash == Decimal(str(broker.get_cash()))
    assert long_value == Decimal(10) * Decimal("148.25") + Decimal(5) * Decimal("301.1")
    assert short_value == 0
    assert equity == cash + long_value
    assert broker.get_positions() == {"AAPL": 10.0, "MSFT": 5.0}


def test_a_transaction_that_raises_leaves_nothing(make_broker, clock, db_url):
    broker = with_a_resting_limit_buy(make_broker)
    before = table_snapshot(db_url)
    clock.advance(days=1)
    with pytest.raises(RuntimeError, match="boom"):
        with broker.transaction() as tx:
            assert tx.set_quotes({"AAPL": (148.0, 148.5)})  # filled the limit
            tx.submit_orders([{"symbol": "AAPL", "side": "BUY", "qty": 1}])
            raise RuntimeError("boom")
    assert table_snapshot(db_url) == before
    with pytest.raises(BrokerError, match="ended"):
        tx.set_quotes({"AAPL": (148.0, 148.5)})


def test_a_rejected_batch_leaves_nothing_of_itself_and_the_rest_of_the_transaction_commits(make_broker, clock):
    broker = make_broker(initial_cash=10_000)
    broker.set_quotes({"AAPL": (150.0, 150.1), "MSFT": (300.0, 300.2)})
    broker.submit_order("AAPL", "BUY", 10)
    stop = broker.submit_order("AAPL", "SELL", 10, order_type="stop", stop_price=140)
    cash_before = broker.get_cash()
    clock.advance(days=1)
    with broker.transaction() as tx:
        tx.set_quotes({"AAPL": (151.0, 151.2), "MSFT": (301.0, 301.2)})
        with pytest.raises(InsufficientFundsError, match="batch order #1"):
            with tx.all_or_nothing():
                for order in tx.open_orders(["AAPL"]):
                    tx.cancel_order(order["order_id"])
                tx.submit_orders([
                    {"symbol": "AAPL", "side": "SELL", "qty": 10},  # sold, its cash counted for the next order
                    {"symbol": "MSFT", "side": "BUY", "qty": 1000},  # far beyond the cash: the batch is rejected
                ])
        # The cancel and the sell are undone; the account, position and keys are read again, so this order
        # sees the stop still holding the shares and the cash as it was.
        held = tx.holdings()
        assert held.positions == {"AAPL": Decimal(10)}
        assert held.available_cash == Decimal(str(cash_before))
        with pytest.raises(OrderRejectedError, match="batch order #0"):
            tx.submit_orders([{"symbol": "AAPL", "side": "SELL", "qty": 10}])  # the stop holds the shares
        bought = tx.submit_orders([{"symbol": "MSFT", "side": "BUY", "qty": 2}])
        tx.mark_equity()
    assert broker.get_quote("AAPL")["bid"] == 151.0, "the quotes before the rejected batch committed"
    assert broker.get_order(stop["order_id"])["status"] == "new", "the stop-loss stays in place"
    assert broker.get_positions() == {"AAPL": 10.0, "MSFT": 2.0}
    fills = broker.get_fills()
    assert [(fill["symbol"], fill["side"], fill["qty"]) for fill in fills] == [("AAPL", "BUY", 10.0), ("MSFT", "BUY", 2.0)]
    assert fills[-1]["order_id"] == bought[0]["order_id"]
    assert broker.verify() == []


def test_holdings_inside_a_transaction_see_its_own_fills(make_broker, clock):
    broker = make_broker(initial_cash=100_000)
    broker.set_quotes({"AAPL": (150.0, 150.1)})
    broker.submit_order("AAPL", "BUY", 10, order_type="limit", limit_price=149)
    clock.advance(hours=1)
    with broker.transaction() as tx:
        assert tx.holdings().positions == {}
        tx.set_quotes({"AAPL": (147.0, 148.0)})  # the limit buy fills at 148 (slippage does not apply to limits)
        held = tx.holdings()
    assert held.positions == {"AAPL": Decimal(10)}
    assert held.available_cash == Decimal(str(broker.get_cash()))
    assert held.equity == Decimal(str(broker.get_portfolio_value()))


def test_a_transaction_and_the_broker_s_own_calls_do_not_mix(make_broker):
    broker = make_broker()
    with broker.transaction() as tx:
        with pytest.raises(RuntimeError, match="inside another transaction"):
            broker.get_cash()
        assert tx.holdings().available_cash == Decimal(100_000)
    assert broker.get_cash() == 100_000


def test_a_transaction_whose_clock_went_back_before_its_mark_writes_nothing(make_broker, clock, db_url):
    """The transaction's one mark is a write at broker time like any other: a clock gone back before the time
    of the transaction's fill is refused (ClockWentBackwardsError), never a mark stamped before that fill."""
    broker = with_a_resting_limit_buy(make_broker)
    before = table_snapshot(db_url)
    clock.advance(hours=2)
    with pytest.raises(ClockWentBackwardsError, match="never goes backwards"):
        with broker.transaction() as tx:
            assert tx.set_quotes({"AAPL": (148.0, 148.5)})  # fills the limit at +2h
            clock.advance(hours=-1)
            with pytest.raises(ClockWentBackwardsError):
                tx.mark_equity()  # as PaperBroker.mark_equity: refused
    assert table_snapshot(db_url) == before
    clock.advance(hours=1)
