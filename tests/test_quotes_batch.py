"""``set_quotes``: many symbols' quotes in one transaction, the same as ``set_quote`` of each in turn (issue 12).

Two accounts on one ledger and one clock get the same orders; one stores each round's quotes symbol by symbol,
the other in one ``set_quotes`` call; fills, orders, cash and positions must come out the same. An invalid
quote anywhere in a batch writes nothing; a batch is one transaction (a fault in it leaves nothing: see
tests/test_fault_injection.py), and a batch over symbols without orders does not query per symbol.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.exceptions import InvalidQuoteError, OrderRejectedError
from tests.conftest import table_snapshot

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
FILL_KEYS = ("symbol", "side", "qty", "fill_price", "notional", "fee", "realized_pnl", "quote_bid", "quote_ask")
ORDER_KEYS = ("symbol", "side", "order_type", "qty", "status", "filled_qty", "filled_avg_price", "stop_price", "hwm",
              "triggered_at", "filled_at", "expired_at", "canceled_at")


def _random_orders(rng: random.Random, quotes: dict[str, tuple[float, float]]) -> list[dict[str, object]]:
    """Resting and marketable orders of every type around the current quotes (some day orders, some sells)."""
    orders = []
    for symbol, (bid, ask) in quotes.items():
        mid = (bid + ask) / 2
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(("limit", "limit", "stop", "stop_limit", "trailing_stop", "market"))
            side = rng.choice(("BUY", "SELL"))
            away = round(mid * rng.uniform(0.005, 0.03), 2) * (-1 if side == "BUY" else 1)
            order: dict[str, object] = {"symbol": symbol, "side": side, "qty": rng.randint(1, 30),
                                        "order_type": kind, "time_in_force": rng.choice(("gtc", "day"))}
            if kind == "limit":
                order["limit_price"] = round(mid + away, 2)
            elif kind in ("stop", "stop_limit"):
                order["stop_price"] = round(mid - away, 2)
                if kind == "stop_limit":
                    order["limit_price"] = round(mid - away * 1.5, 2)
            elif kind == "trailing_stop":
                order["trail_price"] = round(abs(away), 2)
            else:
                order["time_in_force"] = "gtc"
            orders.append(order)
    return orders


def _random_quotes(rng: random.Random, last: dict[str, tuple[float, float]]) -> dict[str, tuple[float, ...]]:
    moved = {}
    for symbol in rng.sample(list(last), rng.randint(2, len(last))):  # some symbols, in a random order
        mid = max(5.0, (last[symbol][0] + last[symbol][1]) / 2 * rng.uniform(0.97, 1.03))
        bid, ask = round(mid - 0.05, 2), round(mid + 0.05, 2)
        moved[symbol] = (bid, ask, rng.randint(0, 20), rng.randint(0, 20))
    return moved


def _state(broker: object) -> tuple[object, ...]:
    fills = [tuple(fill[key] for key in FILL_KEYS) for fill in broker.get_fills()]  # type: ignore[attr-defined]
    orders = [tuple(order[key] for key in ORDER_KEYS) for order in broker.get_orders()]  # type: ignore[attr-defined]
    account = broker.get_account()  # type: ignore[attr-defined]
    return fills, orders, account["cash"], account["reserved_cash"], broker.get_positions()  # type: ignore[attr-defined]


@pytest.mark.parametrize("fill_model", ["full", "displayed_size"])
def test_set_quotes_fills_and_moves_orders_exactly_as_set_quote_of_each_symbol_in_turn(make_broker, clock, fill_model):
    rng = random.Random(f"set_quotes-{fill_model}")
    one_by_one, batched = make_broker(account="one-by-one"), make_broker(account="batched")
    last = {symbol: (100.0 + 40 * i, 100.1 + 40 * i) for i, symbol in enumerate(SYMBOLS)}
    for broker in (one_by_one, batched):
        broker.configure(fill_model=fill_model)
        broker.set_quotes(last)
        broker.submit_orders([{"symbol": symbol, "side": "BUY", "qty": 60} for symbol in SYMBOLS])
    for _ in range(6):
        orders = _random_orders(rng, last)
        for broker in (one_by_one, batched):
            for order in orders:  # one by one: an order the account cannot afford is rejected, in both
                try:
                    broker.submit_order(**order)
                except OrderRejectedError:
                    pass
        clock.advance(hours=rng.choice((1, 3, 9)))  # 9 hours: past the close, the day orders expire
        quotes = _random_quotes(rng, last)
        sequential = [fill for symbol, quote in quotes.items() for fill in one_by_one.set_quote(symbol, *quote)]
        together = batched.set_quotes(quotes)
        assert [tuple(f[key] for key in FILL_KEYS) for f in together] == [
            tuple(f[key] for key in FILL_KEYS) for f in sequential
        ]
        assert _state(batched) == _state(one_by_one)
        last.update({symbol: quote[:2] for symbol, quote in quotes.items()})
    assert batched.get_fills(), "the script must make fills for the comparison to mean something"
    assert batched.verify() == [] and one_by_one.verify() == []


def test_set_quotes_takes_pairs_quadruples_and_mappings(broker):
    broker.set_quotes({"msft": (400, 400.5), "NVDA": (90, 90.2, 7, 9), "AMZN": {"bid": 180, "ask": 180.3, "ask_size": 3}})

    got = {symbol: broker.get_quote(symbol) for symbol in ("MSFT", "NVDA", "AMZN")}
    assert [(q["bid"], q["ask"], q["bid_size"], q["ask_size"]) for q in got.values()] == [
        (400.0, 400.5, 100.0, 100.0), (90.0, 90.2, 7.0, 9.0), (180.0, 180.3, 100.0, 3.0)
    ]


@pytest.mark.parametrize("bad, named", [
    ({"MSFT": (400, 400.5), "NVDA": (90.3, 90.2)}, "invalid quote for NVDA: bid 90.300000 is above ask 90.200000"),
    ({"MSFT": (400, 400.5), "NVDA": (90, 90.2000001)}, "invalid quote for NVDA: ask has more than 6 decimal places"),
    ({"MSFT": (400, 400.5), "NVDA": (90,)}, "invalid quote for NVDA: expected (bid, ask)"),
    ({"MSFT": (400, 400.5), "NVDA": {"bid": 90, "ask": 91, "size": 1}}, "invalid quote for NVDA: expected"),
    ({"MSFT": (400, 400.5), "bad symbol": (1, 2)}, "invalid quote for bad symbol: malformed symbol"),
    ({"MSFT": (400, 400.5), "msft": (401, 401.5)}, "MSFT is given twice"),
])
def test_an_invalid_quote_rejects_the_whole_batch_naming_its_symbol_and_writes_nothing(broker, db_url, bad, named):
    broker.submit_order("MSFT", "BUY", 1, "limit", 500)  # would fill at the batch's MSFT quote
    before = table_snapshot(db_url)

    with pytest.raises(InvalidQuoteError, match=named.replace("(", r"\(").replace(")", r"\)")):
        broker.set_quotes(bad)

    assert table_snapshot(db_url) == before


@pytest.mark.engines("sqlite")  # counts statements with sqlite3's trace callback
def test_a_batch_over_symbols_without_orders_runs_no_select_per_symbol(make_broker):
    broker = make_broker()
    broker.set_quotes({"AAPL": (150, 150.1)})
    broker.submit_order("AAPL", "BUY", 5, "limit", 140)
    sent: list[str] = []
    broker._conn.connection.driver_connection.set_trace_callback(sent.append)

    def selects_for(symbols: int) -> int:
        sent.clear()
        broker.set_quotes({f"S{i}": (10 + i, 10.5 + i) for i in range(symbols)} | {"AAPL": (150, 150.1)})
        return sum(1 for statement in sent if statement.lstrip().upper().startswith("SELECT"))

    assert selects_for(300) == selects_for(3), "a batch's reads must not grow with its symbols"


@pytest.mark.engines("sqlite")  # no database: one engine is enough
@settings(max_examples=400, deadline=None)
@given(value=st.one_of(
    st.floats(min_value=-10.0, max_value=2e12),
    st.sampled_from([float("nan"), float("inf"), -0.0, 5e-7, 999_999_999.999999, 1e9, Decimal("NaN"),
                     Decimal("Infinity"), Decimal("1E+12"), Decimal("0.0000005")]),
    st.integers(min_value=1, max_value=10**15).map(lambda n: n / 10 ** 6),
    st.integers(min_value=1, max_value=10**15).map(lambda n: n / 10 ** 7),
    st.decimals(min_value=-1, max_value=10**13, places=8),
))
def test_the_quick_quote_check_agrees_with_the_full_one(value):
    """The fast path a bar's quotes take (``_quick_price``) accepts exactly what ``validate_quote`` accepts among
    the values it handles, and gives the same Decimal (value and exponent); anything it declines takes the full
    check, which then decides."""
    from ledger.book.validation import _quick_price, validate_quote

    try:
        full = validate_quote("QCHK", value, value, 100, 100).bid
    except InvalidQuoteError:
        full = None
    quick = _quick_price(value)
    if quick is not None:
        assert full is not None and quick == full and quick.as_tuple() == full.as_tuple()
    elif full is not None:
        assert value >= 10 ** 9 or not isinstance(value, float), f"{value!r} is valid but declined"


def test_a_batch_of_known_symbols_is_checked_like_a_first_one(broker):
    """The second batch of the same symbols takes the fast path: the same refusals as the first."""
    broker.set_quotes({"AAPL": (150.0, 150.1), "MSFT": (300.0, 300.2)})
    for bad, message in (
        ((150.0, 149.0), "above ask"),
        ((0.0, 150.0), "must be > 0"),
        ((150.0000001, 150.1), "more than 6 decimal places"),
        ((float("nan"), 150.1), "finite"),
    ):
        with pytest.raises(InvalidQuoteError, match=message):
            broker.set_quotes({"MSFT": (300.0, 300.2), "AAPL": bad})
    assert broker.get_quote("MSFT")["bid"] == 300.0
