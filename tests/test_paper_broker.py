"""Seed plan tests for the paper broker, ported to ledger's import paths (otherwise unchanged).

The autouse fixture in conftest.py points the default database at a fresh ledger per test.
"""

import pytest
from datetime import datetime

from ledger.brokers.paper import PaperBroker
from ledger.exceptions import (
    InsufficientFundsError,
    OrderRejectedError,
    BrokerError,
)


@pytest.fixture
def broker():
    """Create a paper broker for testing."""
    b = PaperBroker(initial_cash=100_000, slippage_bps=5, fee_bps=1)
    # Set up a quote
    b.set_quote("AAPL", bid=150.0, ask=150.10)
    return b


class TestPaperBroker:
    def test_initial_state(self, broker):
        assert broker.get_cash() == 100_000
        assert broker.get_positions() == {}
        assert broker.get_fills() == []

    def test_buy_order(self, broker):
        result = broker.submit_order("AAPL", "BUY", 100)

        assert result["status"] == "filled"
        assert result["qty"] == 100
        assert "order_id" in result

        positions = broker.get_positions()
        assert positions["AAPL"] == 100
        assert broker.get_cash() < 100_000  # Cash reduced

    def test_sell_order(self, broker):
        # First buy
        broker.submit_order("AAPL", "BUY", 100)
        initial_cash = broker.get_cash()

        # Then sell
        result = broker.submit_order("AAPL", "SELL", 50)

        assert result["status"] == "filled"
        assert broker.get_positions()["AAPL"] == 50
        assert broker.get_cash() > initial_cash

    def test_insufficient_funds(self, broker):
        with pytest.raises(InsufficientFundsError):
            # Try to buy too much
            broker.submit_order("AAPL", "BUY", 10000)  # Would cost ~$1.5M

    def test_insufficient_shares(self, broker):
        with pytest.raises(OrderRejectedError):
            # Try to sell without position
            broker.submit_order("AAPL", "SELL", 100)

    def test_no_quote_error(self, broker):
        with pytest.raises(BrokerError, match="No quote"):
            broker.submit_order("UNKNOWN", "BUY", 100)

    def test_invalid_side(self, broker):
        with pytest.raises(OrderRejectedError, match="Invalid side"):
            broker.submit_order("AAPL", "INVALID", 100)

    def test_slippage_applied(self, broker):
        # Buy should pay more than ask
        result = broker.submit_order("AAPL", "BUY", 100)
        assert result["fill_price"] > 150.10  # Ask was 150.10

    def test_fills_recorded(self, broker):
        broker.submit_order("AAPL", "BUY", 100)
        broker.submit_order("AAPL", "SELL", 50)

        fills = broker.get_fills()
        assert len(fills) == 2
        assert fills[0]["side"] == "BUY"
        assert fills[1]["side"] == "SELL"

    def test_portfolio_value(self, broker):
        initial_value = broker.get_portfolio_value()
        assert initial_value == 100_000

        broker.submit_order("AAPL", "BUY", 100)
        # Value should be approximately same (minus fees/slippage)
        assert broker.get_portfolio_value() < 100_000

    def test_reset(self, broker):
        broker.submit_order("AAPL", "BUY", 100)
        broker.reset()

        assert broker.get_cash() == 100_000
        assert broker.get_positions() == {}
