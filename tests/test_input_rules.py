"""One rule per kind of input: symbols up to the column's 32 characters, six decimals everywhere, rejected
orders keep what was submitted, and messages show numbers as people write them."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import select

from ledger.book.store import orders
from ledger.brokers.data_provider import synthetic_quote
from ledger.db.engine import get_engine
from ledger.exceptions import AccountMismatchError, InvalidQuoteError, OrderRejectedError


@pytest.mark.parametrize("symbol", ["A" * 32, "^" + "A" * 31])
def test_a_32_character_symbol_is_accepted_with_or_without_a_caret(broker, symbol):
    broker.set_quote(symbol, bid=10, ask=10)
    assert broker.submit_order(symbol, "BUY", 1)["symbol"] == symbol


@pytest.mark.parametrize("symbol", ["A" * 33, "^" + "A" * 32])
def test_a_33_character_symbol_is_refused_with_or_without_a_caret(broker, symbol):
    with pytest.raises(InvalidQuoteError, match="1-32"):
        broker.set_quote(symbol, bid=10, ask=10)
    with pytest.raises(OrderRejectedError, match="1-32"):
        broker.submit_order(symbol, "BUY", 1, "limit", 10)


@pytest.mark.parametrize("field", ["bid", "ask", "bid_size", "ask_size"])
def test_a_quote_with_seven_decimals_is_refused_not_rounded(broker, field):
    values = {"bid": 150.0, "ask": 150.1, "bid_size": 100, "ask_size": 100}
    values[field] = Decimal(values[field]) + Decimal("0.0000001")
    with pytest.raises(InvalidQuoteError, match="more than 6 decimal places"):
        broker.set_quote("AAPL", **values)
    assert broker.get_quote("AAPL")["bid"] == 150.0  # the stored quote is untouched


def test_market_data_float_noise_is_rounded_half_even_by_the_provider_before_the_ledger_sees_it(broker):
    quote = synthetic_quote("NOISE", 100.123456789, broker.now(), spread_bps=3.3)
    assert Decimal(repr(quote["bid"])).as_tuple().exponent >= -6
    broker.set_quote("NOISE", quote["bid"], quote["ask"], quote["bid_size"], quote["ask_size"])
    assert broker.get_quote("NOISE")["bid"] == quote["bid"]


def _stored(db_url: str, order_id: str):
    with get_engine(db_url).connect() as conn:
        return conn.execute(
            select(orders.c.qty_e6, orders.c.limit_price_e6, orders.c.reject_reason).where(orders.c.order_id == order_id)
        ).one()


@pytest.mark.parametrize(
    ("qty", "order_type", "limit", "stored_qty", "stored_limit"),
    [
        (-5, "market", None, Decimal(-5), None),
        (0, "market", None, Decimal(0), None),
        (1, "limit", -3, Decimal(1), Decimal(-3)),
        (1, "limit", 0, Decimal(1), Decimal(0)),
        (1, "limit", 10.1234567, Decimal(1), None),  # seven decimals cannot be stored
        (1e20, "market", None, None, None),  # beyond the 10^12 bound
    ],
)
def test_rejected_orders_keep_the_parsed_quantity_and_limit_when_storable(
    broker, db_url, qty, order_type, limit, stored_qty, stored_limit
):
    with pytest.raises(OrderRejectedError):
        broker.submit_order("AAPL", "BUY", qty, order_type, limit)
    rejected = broker.get_orders(status="rejected")[-1]
    row = _stored(db_url, rejected["order_id"])
    assert (row.qty_e6, row.limit_price_e6) == (stored_qty, stored_limit)


@pytest.mark.parametrize(
    ("qty", "shown"),
    [(np.int64(-5), "-5"), (Decimal("0"), "0"), (Decimal("-0.500"), "-0.5"), (np.float64(-2.5), "-2.5")],
)
def test_messages_show_numbers_plainly_not_python_reprs(broker, qty, shown):
    with pytest.raises(OrderRejectedError) as caught:
        broker.submit_order("AAPL", "BUY", qty)
    message = str(caught.value)
    assert f"Invalid quantity: {shown} " in message
    assert "Decimal(" not in message and "np." not in message and "int64" not in message


def test_account_mismatch_message_does_not_name_a_library_call(make_broker, broker):
    with pytest.raises(AccountMismatchError) as caught:
        make_broker(initial_cash=5)
    assert "reset the account with a new initial cash" in str(caught.value)
    assert "reset(" not in str(caught.value)


@pytest.mark.parametrize(
    "name", ["bad\x1b[31mred", "tab\there", "new\nline", " lead", "trail ", "x" * 65, "é-accent", "", "semi;colon"]
)
def test_new_account_names_follow_the_strict_rule(make_broker, name):
    with pytest.raises(ValueError, match="account name must be 1-64 characters: ASCII letters"):
        make_broker(account=name)


@pytest.mark.parametrize("name", ["alice", "Alice", "team.alpha_1", "a-b@c+d", "two words", "x" * 64])
def test_new_account_names_within_the_rule_are_kept_exactly_and_case_sensitive(make_broker, name):
    assert make_broker(account=name).get_account()["account"] == name


def test_names_differing_only_in_case_are_different_accounts(make_broker):
    make_broker(account="Alice", initial_cash=10)
    assert make_broker(account="alice", initial_cash=20).get_cash() == 20


def test_an_existing_account_with_an_old_style_name_stays_openable(make_broker, db_url):
    from sqlalchemy import update

    from ledger.book.store import accounts

    make_broker(account="plain", initial_cash=10).close()
    odd = " old\x1b[31mname"
    with get_engine(db_url).begin() as conn:
        conn.execute(update(accounts).where(accounts.c.name == "plain").values(name=odd))
    reopened = make_broker(account=odd, initial_cash=None)
    assert reopened.get_cash() == 10 and reopened.get_account()["account"] == odd
