"""Order lifecycle: every order is a row with a status and an append-only event history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from ledger.book.store import order_events, orders
from ledger.db.engine import get_engine
from ledger.exceptions import InsufficientFundsError, OrderNotFoundError, OrderRejectedError


def events_of(db_url: str, order_id: str) -> list[tuple[str | None, str]]:
    with get_engine(db_url).connect() as conn:
        pk = conn.execute(select(orders.c.id).where(orders.c.order_id == order_id)).scalar_one()
        rows = conn.execute(
            select(order_events.c.from_status, order_events.c.to_status)
            .where(order_events.c.order_id == pk)
            .order_by(order_events.c.id)
        )
        return [tuple(row) for row in rows]


def test_market_buy_fills_at_ask_plus_slippage_plus_fee(broker):
    result = broker.submit_order("AAPL", "BUY", 100)
    # 150.10 * 1.0005 = 150.17505; notional 15017.505; fee 1 bp = 1.5017505 -> 1.501750 (half-even, 6 dp)
    assert result["fill_price"] == 150.17505
    assert result["notional"] == 15017.505
    assert result["fee"] == 1.50175
    assert broker.get_cash() == float(Decimal("100000") - Decimal("15017.505") - Decimal("1.50175"))


def test_market_sell_fills_at_bid_minus_slippage_less_fee(broker):
    broker.submit_order("AAPL", "BUY", 10)
    cash_before = Decimal(str(broker.get_cash()))
    result = broker.submit_order("AAPL", "SELL", 10)
    # 150.00 * 0.9995 = 149.925; notional 1499.25; fee 0.149925
    assert result["fill_price"] == 149.925
    assert Decimal(str(broker.get_cash())) == cash_before + Decimal("1499.25") - Decimal("0.149925")
    assert broker.get_positions() == {}


def test_explicit_zero_slippage_and_fee_are_honoured(make_broker):
    b = make_broker(slippage_bps=0, fee_bps=0)
    b.set_quote("AAPL", bid=150.0, ask=150.10)
    result = b.submit_order("AAPL", "BUY", 10)
    assert result["fill_price"] == 150.10
    assert result["fee"] == 0.0
    assert b.slippage_bps == 0.0 and b.fee_bps == 0.0
    assert b.get_fills()[0]["slippage_bps"] == 0.0


def test_filled_order_has_new_then_filled_events(broker, db_url):
    order_id = broker.submit_order("AAPL", "BUY", 1)["order_id"]
    assert broker.get_order(order_id)["status"] == "filled"
    assert events_of(db_url, order_id) == [(None, "new"), ("new", "filled")]


def test_rejected_order_is_recorded_with_reason_and_changes_no_balance(broker, db_url):
    with pytest.raises(InsufficientFundsError, match="Insufficient cash"):
        broker.submit_order("AAPL", "BUY", 10_000)
    rejected = broker.get_orders(status="rejected")
    assert len(rejected) == 1
    assert "Insufficient cash" in rejected[0]["reject_reason"]
    assert events_of(db_url, rejected[0]["order_id"]) == [(None, "rejected")]
    assert broker.get_cash() == 100_000
    assert broker.get_fills() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("AAPL", "BUY", float("nan")), "finite"),
        (("AAPL", "BUY", float("inf")), "finite"),
        (("AAPL", "BUY", 0), "Invalid quantity"),
        (("AAPL", "BUY", -5), "Invalid quantity"),
        (("AAPL", "BUY", "100"), "must be a number"),
        (("AAPL", "BUY", 1.0000001), "more than 6 decimal places"),
        (("", "BUY", 1), "symbol is empty"),
        (("AA PL", "BUY", 1), "malformed symbol"),
        (("AAPL", "HOLD", 1), "Invalid side"),
        (("AAPL", "BUY", 1, "stopp"), "Invalid order type"),
        (("AAPL", "BUY", 1, "limit"), "needs a limit_price"),
        (("AAPL", "BUY", 1, "limit", float("nan")), "finite"),
        (("AAPL", "BUY", 1, "limit", -1), "Invalid limit price"),
        (("AAPL", "BUY", 1, "market", 150), "market order"),
    ],
)
def test_bad_orders_are_rejected_recorded_and_change_nothing(broker, args, message):
    with pytest.raises(OrderRejectedError, match=message):
        broker.submit_order(*args)
    assert broker.get_cash() == 100_000
    assert broker.get_positions() == {}
    [row] = broker.get_orders(status="rejected")
    assert message.lower() in row["reject_reason"].lower()


def test_no_quote_rejects_market_order_and_records_it(broker):
    with pytest.raises(OrderRejectedError, match="No quote available for MSFT"):
        broker.submit_order("msft", "buy", 1)
    assert [o["symbol"] for o in broker.get_orders(status="rejected")] == ["MSFT"]


def test_sell_beyond_position_is_rejected_no_shorting(broker):
    broker.submit_order("AAPL", "BUY", 5)
    with pytest.raises(OrderRejectedError, match="Insufficient shares: need 6, have 5"):
        broker.submit_order("AAPL", "SELL", 6)
    assert broker.get_positions() == {"AAPL": 5.0}


def test_order_ids_are_unique_128_bit(broker):
    ids = {broker.submit_order("AAPL", "BUY", 1)["order_id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(len(order_id) == 32 and int(order_id, 16) >= 0 for order_id in ids)


def test_cancel_unknown_order_raises(broker):
    with pytest.raises(OrderNotFoundError):
        broker.cancel_order("does-not-exist")


def test_cancel_filled_order_reports_filled(broker):
    order_id = broker.submit_order("AAPL", "BUY", 1)["order_id"]
    assert broker.cancel_order(order_id)["status"] == "filled"
    assert broker.get_positions() == {"AAPL": 1.0}


def test_get_order_of_another_account_is_not_found(make_broker, broker):
    order_id = broker.submit_order("AAPL", "BUY", 1)["order_id"]
    other = make_broker(account="other")
    with pytest.raises(OrderNotFoundError):
        other.get_order(order_id)
    with pytest.raises(OrderNotFoundError):
        other.cancel_order(order_id)


def test_positions_keep_average_cost_and_realized_pnl(make_broker):
    b = make_broker(slippage_bps=0, fee_bps=0)
    b.set_quote("AAPL", bid=100.0, ask=100.0)
    b.submit_order("AAPL", "BUY", 10)
    b.set_quote("AAPL", bid=110.0, ask=110.0)
    b.submit_order("AAPL", "BUY", 10)  # cost basis 2100 for 20 -> average 105
    b.set_quote("AAPL", bid=120.0, ask=120.0)
    fill = b.submit_order("AAPL", "SELL", 5)
    assert fill["fill_price"] == 120.0
    fills = b.get_fills()
    assert fills[-1]["realized_pnl"] == 75.0  # 5 * (120 - 105)
    assert b.get_portfolio_value() == pytest.approx(100_000 + 15 * 120 + 600 - 2100 + 0)
    assert b.verify() == []


def test_cost_basis_and_avg_cost_include_the_buy_fee(make_broker):
    from decimal import Decimal

    from ledger.db.engine import get_engine, read_transaction
    from ledger.queries import position_rows

    b = make_broker(slippage_bps=0, fee_bps=25)
    b.set_quote("AAPL", bid=100.0, ask=100.0)
    b.submit_order("AAPL", "BUY", 10)  # notional 1,000, fee 2.50
    with get_engine(b.db_url).connect() as conn, read_transaction(conn):
        [row] = position_rows(conn, b.account_id)
    assert row.cost_basis_e6 == Decimal("1002.5")
    assert row.cost_basis_e6 / row.qty_e6 == Decimal("100.25")  # the average cost the views and reports show
    sold = b.submit_order("AAPL", "SELL", 10)
    assert b.get_fills()[-1]["realized_pnl"] == sold["notional"] - sold["fee"] - 1002.5
