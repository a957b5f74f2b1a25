"""Short selling and Reg T margin (ledger.book.margin): short sales and covers, the never-reverse rule, buying
power and its reservations, maintenance shortfall, and the settings that allow them. Amounts are read back
exactly from the ledger (Decimals); the fixtures check verify() after every scenario."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.book.settings import SettingsNotSupportedError
from ledger.db.engine import get_engine
from ledger.exceptions import InsufficientFundsError, OrderRejectedError
from ledger.queries import account_margin, account_row, position_rows

D = Decimal


@pytest.fixture
def margin(make_broker):
    """A Reg T margin account (multiplier 2) with shorting on, 10,000 cash, no slippage or fee, X at 100/100."""
    broker = make_broker(account="margin", initial_cash=10_000, slippage_bps=0, fee_bps=0)
    broker.configure(max_margin_multiplier=2, shorting_enabled=True)
    broker.set_quote("X", bid=100, ask=100)
    return broker


def exact(broker):
    """(cash, reserved, {symbol: (qty, cost basis, realized P&L)}, margin figures), as stored."""
    with get_engine(broker.db_url).connect() as conn:
        row = account_row(conn, broker.account_id)
        held = {p.symbol: (p.qty_e6, p.cost_basis_e6, p.realized_pnl_e6)
                for p in position_rows(conn, broker.account_id, include_flat=True)}
        return row.cash_e6, row.reserved_cash_e6, held, account_margin(conn, broker.account_id)


def test_a_short_sale_brings_in_cash_and_covering_realizes_the_pnl_fees_included(make_broker):
    broker = make_broker(account="fees", initial_cash=10_000, slippage_bps=0, fee_bps=10)
    broker.configure(max_margin_multiplier=2, shorting_enabled=True)
    broker.set_quote("X", bid=100, ask=100)

    sale = broker.submit_order("X", "SELL", 50)
    assert (sale["status"], sale["fill_price"]) == ("filled", 100.0)
    cash, _, held, figures = exact(broker)
    assert cash == D("14995")  # 5,000 proceeds less the 5 fee
    assert held["X"] == (D(-50), D(-4995), D(0))  # a short's cost basis: minus what its sale brought in
    assert (figures.short_value, figures.equity) == (D(-5000), D("9995"))
    assert broker.get_positions() == {"X": -50.0}

    broker.set_quote("X", bid=90, ask=90)
    broker.submit_order("X", "BUY", 20)  # a partial cover realizes its share of the basis
    _, _, held, _ = exact(broker)
    # 20/50 of the 4,995 brought in, less 1,800 + 1.8 fee
    assert held["X"] == (D(-30), D(-2997), D("1998") - D("1801.8"))
    broker.submit_order("X", "BUY", 30)
    cash, _, held, _ = exact(broker)
    assert held["X"] == (D(0), D(0), D("4995") - D("4504.5"))  # 490.5 in all
    assert cash == D(10_000) + D("490.5")
    assert broker.get_positions() == {}


def test_a_cash_account_cannot_enable_shorting_and_rejects_short_sales(broker):
    before = broker.settings()
    with pytest.raises(SettingsNotSupportedError, match="margin account"):
        broker.configure(shorting_enabled=True)
    assert broker.settings() == before and before["shorting_enabled"] is False

    with pytest.raises(OrderRejectedError, match="Insufficient shares: need 1, have 0"):
        broker.submit_order("AAPL", "SELL", 1)
    assert broker.get_positions() == {}


def test_a_margin_account_without_shorting_rejects_short_sales(make_broker):
    broker = make_broker(account="noshort", initial_cash=10_000)
    broker.configure(max_margin_multiplier=2)
    broker.set_quote("X", bid=100, ask=100)
    with pytest.raises(OrderRejectedError, match="short selling is disabled on this account"):
        broker.submit_order("X", "SELL", 1)
    assert broker.get_positions() == {}


def test_an_order_never_reverses_a_position(margin):
    margin.submit_order("X", "BUY", 10)
    with pytest.raises(OrderRejectedError, match="need 15, have 10; a sell closes a long position"):
        margin.submit_order("X", "SELL", 15)
    margin.submit_order("X", "SELL", 10)
    margin.submit_order("X", "SELL", 10)  # flat, so this is a short sale
    assert margin.get_positions() == {"X": -10.0}

    resting = margin.submit_order("X", "BUY", 6, "limit", 90.0)  # a buy to cover, resting
    with pytest.raises(OrderRejectedError, match=r"need 5, short 10 \(6 held by open buys\)"):
        margin.submit_order("X", "BUY", 5)
    margin.submit_order("X", "BUY", 4)
    assert margin.get_positions() == {"X": -6.0}
    margin.set_quote("X", bid=89, ask=89)
    assert margin.get_order(resting["order_id"])["status"] == "filled"
    assert margin.get_positions() == {}


@pytest.mark.parametrize("first, second", [("BUY", "SELL"), ("SELL", "BUY")])
def test_a_flat_position_cannot_open_both_ways_at_once(margin, first, second):
    resting = margin.submit_order("X", first, 5, "limit", 90.0 if first == "BUY" else 110.0)
    with pytest.raises(OrderRejectedError, match="while a .* order for it is open"):
        margin.submit_order("X", second, 5)
    margin.cancel_order(resting["order_id"])
    assert margin.submit_order("X", second, 5)["status"] == "filled"


def test_reg_t_buying_power_limits_and_reserves_opening_orders(margin):
    *_, figures = exact(margin)
    assert figures.buying_power == D(20_000)  # 2 x 10,000 equity

    resting = margin.submit_order("X", "BUY", 100, "limit", 150.0)  # limit above the ask is marketable...
    assert resting["status"] == "filled"  # ...so it filled at 100: cash 0, long 10,000
    cash, reserved, _, figures = exact(margin)
    assert (cash, reserved, figures.buying_power, figures.initial_margin) == (D(0), D(0), D(10_000), D(5_000))

    buy = margin.submit_order("X", "BUY", 50, "limit", 90.0)  # rests: reserves 4,500 of buying power
    assert buy["status"] == "new"
    _, reserved, _, figures = exact(margin)
    assert (reserved, figures.buying_power) == (D(4_500), D(5_500))
    with pytest.raises(InsufficientFundsError, match=r"Insufficient buying power: need \$5,600.00, have \$5,500.00"):
        margin.submit_order("X", "BUY", 56)
    margin.submit_order("X", "BUY", 55)  # exactly the buying power: cash goes below zero (the margin loan)
    cash, _, held, figures = exact(margin)
    assert cash == D(-5_500) and held["X"][0] == D(155) and figures.buying_power == D(0)

    margin.cancel_order(buy["order_id"])
    assert exact(margin)[3].buying_power == D(4_500)


def test_a_resting_short_sale_holds_buying_power_at_its_limit_or_the_ask(margin):
    margin.set_quote("Y", bid=99, ask=101)
    above = margin.submit_order("Y", "SELL", 10, "limit", 120.0)
    _, reserved, _, figures = exact(margin)
    assert reserved == D(1_200) and figures.buying_power == D(20_000 - 1_200)
    margin.cancel_order(above["order_id"])
    margin.submit_order("Y", "SELL", 10, "stop", stop_price=90.0)  # a stop below the ask holds at the ask
    assert exact(margin)[1] == D(1_010)

    margin.set_quote("Y", bid=89, ask=90)  # the sell stop triggers: a short sale at the bid
    cash, reserved, held, _ = exact(margin)
    assert (reserved, held["Y"][:2], cash) == (D(0), (D(-10), D(-890)), D(10_890))


def test_a_buy_stop_protects_a_short_and_a_trailing_stop_follows_it_down(margin):
    margin.submit_order("X", "SELL", 10)
    stop = margin.submit_order("X", "BUY", 4, "stop", stop_price=110.0)
    trail = margin.submit_order("X", "BUY", 6, "trailing_stop", trail_price=5.0)
    margin.set_quote("X", bid=90, ask=90)  # the trail's low-water mark moves to 90: stop 95
    assert margin.get_order(trail["order_id"])["stop_price"] == 95.0
    margin.set_quote("X", bid=96, ask=96)
    assert margin.get_order(trail["order_id"])["status"] == "filled"
    assert margin.get_positions() == {"X": -4.0}
    margin.set_quote("X", bid=111, ask=111)
    assert margin.get_order(stop["order_id"])["status"] == "filled"
    _, _, held, _ = exact(margin)
    assert held["X"] == (D(0), D(0), D(6 * (100 - 96) + 4 * (100 - 111)))


def test_a_maintenance_shortfall_is_reported_and_nothing_is_liquidated(margin):
    margin.submit_order("X", "BUY", 200)  # 20,000 long on 10,000 equity: cash -10,000
    margin.set_quote("X", bid=60, ask=60)
    account = margin.get_account()
    assert (account["long_market_value"], account["equity"]) == (12_000.0, 2_000.0)
    assert (account["maintenance_margin"], account["maintenance_shortfall"]) == (3_000.0, 1_000.0)
    assert account["buying_power"] < 0
    assert margin.get_positions() == {"X": 200.0} and margin.get_orders("open") == []
    with pytest.raises(InsufficientFundsError, match="buying power"):
        margin.submit_order("X", "BUY", 1)
    assert margin.submit_order("X", "SELL", 200)["status"] == "filled"  # closing needs no buying power


def test_a_short_rising_past_maintenance_reports_a_shortfall(margin):
    margin.submit_order("X", "SELL", 100)  # cash 20,000, short 10,000
    margin.set_quote("X", bid=150, ask=150)
    assert exact(margin)[3].maintenance_shortfall == D(0)  # equity 5,000 vs 30% of 15,000 = 4,500
    margin.set_quote("X", bid=160, ask=160)
    figures = exact(margin)[3]
    assert (figures.equity, figures.maintenance_margin, figures.maintenance_shortfall) == (D(4_000), D(4_800), D(800))


def test_an_account_with_shorts_or_a_margin_loan_cannot_become_a_cash_account(margin):
    margin.submit_order("X", "SELL", 10)
    with pytest.raises(SettingsNotSupportedError, match=r"holds short positions \(X\)"):
        margin.configure(max_margin_multiplier=1, shorting_enabled=False)
    assert margin.settings()["max_margin_multiplier"] == 2.0
    margin.submit_order("X", "BUY", 10)
    margin.submit_order("X", "BUY", 150)  # 15,000 on 10,000 cash: a margin loan
    with pytest.raises(SettingsNotSupportedError, match="margin loan"):
        margin.configure(max_margin_multiplier=1, shorting_enabled=False)
    margin.submit_order("X", "SELL", 150)
    margin.configure(max_margin_multiplier=1, shorting_enabled=False)
    assert margin.settings()["max_margin_multiplier"] == 1.0
