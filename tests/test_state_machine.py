"""Stateful property test: random sequences of broker calls keep the ledger equal to a plain in-memory model.

Hypothesis drives a ``PaperBroker`` through set_quote, market and limit submits, cancels, resets and restarts
(close the broker, open a new one - resuming the run or starting a new one with other costs), and after every
step compares cash, reserved cash, positions, open orders, realized P&L, fills and portfolio value with a model
that re-implements the pricing rules of ledger/book/pricing.py and fills.py in a few lines of Decimal arithmetic
(half-even to six decimals; slippage off the touch; a limit never filled worse than its limit; fees on the
notional; a resting buy reserves its worst case at the limit). ``verify()`` must be empty after every step.

Each Hypothesis example trades its own fresh account in this test's database, so examples stay independent
without a new database each. Budget: ``MAX_EXAMPLES`` examples of up to ``STEPS`` steps per engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from ledger.brokers.paper import PaperBroker
from ledger.exceptions import InsufficientFundsError, OrderNotFoundError, OrderRejectedError
from tests.conftest import FakeClock

MAX_EXAMPLES = 100
STEPS = 30
SYMBOLS = ("AAA", "BBB")
UNIT = Decimal("0.000001")
BPS = Decimal(10_000)
INITIAL_CASH = Decimal(50_000)


def q6(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def dec(value: float) -> Decimal:
    return Decimal(repr(value))


@dataclass
class ModelOrder:
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    limit: Decimal
    slippage_bps: Decimal
    fee_bps: Decimal
    reserved_cash: Decimal = Decimal(0)
    reserved_qty: Decimal = Decimal(0)


@dataclass
class ModelPosition:
    qty: Decimal = Decimal(0)
    reserved_qty: Decimal = Decimal(0)
    cost_basis: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)


@dataclass
class Model:
    """The expected state of one account, by plain arithmetic."""

    initial_cash: Decimal
    slippage_bps: Decimal
    fee_bps: Decimal
    cash: Decimal = Decimal(0)
    reserved_cash: Decimal = Decimal(0)
    positions: dict[str, ModelPosition] = field(default_factory=dict)
    quotes: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    open_orders: dict[str, ModelOrder] = field(default_factory=dict)  # insertion order = submission order
    closed_orders: dict[str, str] = field(default_factory=dict)  # order id -> final status
    fills_this_epoch: int = 0

    def position(self, symbol: str) -> ModelPosition:
        return self.positions.setdefault(symbol, ModelPosition())

    @staticmethod
    def price(side: str, bid: Decimal, ask: Decimal, slippage_bps: Decimal, limit: Decimal | None) -> Decimal:
        slip = slippage_bps / BPS
        price = q6(ask * (1 + slip)) if side == "BUY" else q6(bid * (1 - slip))
        if limit is None:
            return price
        return min(price, limit) if side == "BUY" else max(price, limit)

    @staticmethod
    def notional_and_fee(qty: Decimal, price: Decimal, fee_bps: Decimal) -> tuple[Decimal, Decimal]:
        notional = q6(qty * price)
        return notional, q6(notional * (fee_bps / BPS))

    def fill(self, side: str, symbol: str, qty: Decimal, price: Decimal, fee_bps: Decimal,
             reserved_cash: Decimal = Decimal(0), reserved_qty: Decimal = Decimal(0)) -> None:
        notional, fee = self.notional_and_fee(qty, price, fee_bps)
        position = self.position(symbol)
        if side == "BUY":
            self.cash -= notional + fee
            position.qty += qty
            position.cost_basis += notional + fee
        else:
            whole = qty == position.qty
            cost_share = position.cost_basis if whole else q6(position.cost_basis * qty / position.qty)
            self.cash += notional - fee
            position.realized_pnl += notional - fee - cost_share
            position.qty -= qty
            position.reserved_qty -= reserved_qty
            position.cost_basis -= cost_share
        self.reserved_cash -= reserved_cash
        self.fills_this_epoch += 1

    def release(self, order: ModelOrder) -> None:
        self.reserved_cash -= order.reserved_cash
        if order.reserved_qty:
            self.position(order.symbol).reserved_qty -= order.reserved_qty

    def portfolio_value(self) -> Decimal:
        value = self.cash
        for symbol, position in self.positions.items():
            if position.qty:
                bid, ask = self.quotes[symbol]
                value += position.qty * ((bid + ask) / 2)
        return value


prices = st.integers(min_value=5_000, max_value=15_000).map(lambda cents: Decimal(cents) / 100)
quantities = st.one_of(
    st.integers(min_value=1, max_value=60).map(Decimal),
    st.integers(min_value=1, max_value=60_000).map(lambda thousandths: Decimal(thousandths) / 1000),
)
# A limit either anywhere, or a few cents either side of the touch: at, through and just short of it, where
# "marketable", "filled at most at the limit" and "rests" meet.
near_touch = st.one_of(st.sampled_from([0, 0, -1, 1]), st.integers(min_value=-30, max_value=30)).map(
    lambda cents: ("from touch", Decimal(cents) / 100)
)
limits = st.one_of(prices.map(lambda price: ("at", price)), near_touch, near_touch)
costs_bps = st.sampled_from([Decimal(0), Decimal(1), Decimal("2.5"), Decimal(5), Decimal("12.5")])


class LedgerMachine(RuleBasedStateMachine):
    """One account, driven through the broker API and the model side by side."""

    db_url: str = ""
    examples_run = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).examples_run += 1
        self.clock = FakeClock()
        self.account = "sm-" + uuid.uuid4().hex[:16]
        self.model = Model(INITIAL_CASH, Decimal(5), Decimal(1), cash=INITIAL_CASH)
        self.broker = self._open(initial_cash=INITIAL_CASH, slippage_bps=Decimal(5), fee_bps=Decimal(1))

    def _open(self, **settings_: object) -> PaperBroker:
        return PaperBroker(
            db_url=self.db_url, account=self.account, clock=self.clock, **settings_  # type: ignore[arg-type]
        )

    def teardown(self) -> None:
        self.broker.close()

    def _expect_rejection(self, error: type[Exception], call: Callable[[], object]) -> None:
        with pytest.raises(error) as raised:
            call()
        if error is OrderRejectedError:
            # A short-of-shares or no-quote rejection must not claim the cash was short.
            assert not isinstance(raised.value, InsufficientFundsError), raised.value

    # -- rules ---------------------------------------------------------------------------------------------
    @rule(symbol=st.sampled_from(SYMBOLS), bid=prices, spread_cents=st.integers(min_value=0, max_value=80))
    def set_quote(self, symbol: str, bid: Decimal, spread_cents: int) -> None:
        ask = bid + Decimal(spread_cents) / 100
        self.clock.advance(seconds=1)
        fills = self.broker.set_quote(symbol, bid=float(bid), ask=float(ask))
        model = self.model
        model.quotes[symbol] = (bid, ask)
        crossed = [
            order for order in model.open_orders.values()
            if order.symbol == symbol and (order.limit >= ask if order.side == "BUY" else order.limit <= bid)
        ]
        assert [fill["order_id"] for fill in fills] == [order.order_id for order in crossed]
        for order, fill in zip(crossed, fills):
            price = model.price(order.side, bid, ask, order.slippage_bps, order.limit)
            assert dec(fill["fill_price"]) == price
            model.fill(order.side, symbol, order.qty, price, order.fee_bps, order.reserved_cash, order.reserved_qty)
            del model.open_orders[order.order_id]
            model.closed_orders[order.order_id] = "filled"

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(["BUY", "SELL"]), qty=quantities)
    def submit_market(self, symbol: str, side: str, qty: Decimal) -> None:
        model = self.model
        self.clock.advance(seconds=1)
        submit = lambda: self.broker.submit_order(symbol, side, float(qty))  # noqa: E731
        if symbol not in model.quotes:
            return self._expect_rejection(OrderRejectedError, submit)
        bid, ask = model.quotes[symbol]
        price = model.price(side, bid, ask, model.slippage_bps, None)
        self._fill_now_or_reject(symbol, side, qty, price, submit)

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(["BUY", "SELL"]), qty=quantities, where=limits)
    def submit_limit(self, symbol: str, side: str, qty: Decimal, where: tuple[str, Decimal]) -> None:
        model = self.model
        quote = model.quotes.get(symbol)
        kind, amount = where
        if kind == "at" or quote is None:
            limit = amount if kind == "at" else Decimal(100)
        else:  # positive: through the touch (marketable), negative: short of it (rests)
            limit = quote[1] + amount if side == "BUY" else quote[0] - amount
        self.clock.advance(seconds=1)
        submit = lambda: self.broker.submit_order(symbol, side, float(qty), "limit", float(limit))  # noqa: E731
        if quote is not None and (limit >= quote[1] if side == "BUY" else limit <= quote[0]):
            price = model.price(side, quote[0], quote[1], model.slippage_bps, limit)
            return self._fill_now_or_reject(symbol, side, qty, price, submit)
        # Not marketable (or no quote yet): it rests, reserving its worst case.
        position = model.position(symbol)
        if side == "BUY":
            notional, fee = model.notional_and_fee(qty, limit, model.fee_bps)
            if notional + fee > model.cash - model.reserved_cash:
                return self._expect_rejection(InsufficientFundsError, submit)
            order = ModelOrder(
                "", symbol, side, qty, limit, model.slippage_bps, model.fee_bps, reserved_cash=notional + fee
            )
        else:
            if qty > position.qty - position.reserved_qty:
                return self._expect_rejection(OrderRejectedError, submit)
            order = ModelOrder("", symbol, side, qty, limit, model.slippage_bps, model.fee_bps, reserved_qty=qty)
        result = submit()
        assert result["status"] == "new"
        order.order_id = result["order_id"]
        model.reserved_cash += order.reserved_cash
        position.reserved_qty += order.reserved_qty
        model.open_orders[order.order_id] = order

    def _fill_now_or_reject(self, symbol: str, side: str, qty: Decimal, price: Decimal,
                            submit: Callable[[], dict]) -> None:
        model = self.model
        notional, fee = model.notional_and_fee(qty, price, model.fee_bps)
        position = model.position(symbol)
        if side == "BUY" and notional + fee > model.cash - model.reserved_cash:
            return self._expect_rejection(InsufficientFundsError, submit)
        if side == "SELL" and qty > position.qty - position.reserved_qty:
            return self._expect_rejection(OrderRejectedError, submit)
        result = submit()
        assert result["status"] == "filled"
        assert (dec(result["fill_price"]), dec(result["notional"]), dec(result["fee"])) == (price, notional, fee)
        model.fill(side, symbol, qty, price, model.fee_bps)
        model.closed_orders[result["order_id"]] = "filled"

    @precondition(lambda self: self.model.open_orders or self.model.closed_orders)
    @rule(pick=st.integers(min_value=0, max_value=10_000))
    def cancel(self, pick: int) -> None:
        model = self.model
        known = [*model.open_orders, *model.closed_orders]
        order_id = known[pick % len(known)]
        self.clock.advance(seconds=1)
        result = self.broker.cancel_order(order_id)
        order = model.open_orders.pop(order_id, None)
        if order is None:
            assert result["status"] == model.closed_orders[order_id]
            return
        assert result["status"] == "canceled"
        model.release(order)
        model.closed_orders[order_id] = "canceled"

    @rule()
    def cancel_unknown_order(self) -> None:
        with pytest.raises(OrderNotFoundError):
            self.broker.cancel_order(uuid.uuid4().hex)

    @rule(new_cash=st.one_of(st.none(), st.integers(min_value=0, max_value=200_000).map(Decimal)))
    def reset(self, new_cash: Decimal | None) -> None:
        self.clock.advance(seconds=1)
        self.broker.reset(initial_cash=None if new_cash is None else float(new_cash))
        model = self.model
        for order_id in model.open_orders:
            model.closed_orders[order_id] = "canceled"
        if new_cash is not None:
            model.initial_cash = new_cash
        # Quotes belong to the account, not the epoch: they survive a reset.
        model.cash, model.reserved_cash = model.initial_cash, Decimal(0)
        model.positions, model.open_orders, model.fills_this_epoch = {}, {}, 0

    @rule(resume_run=st.booleans(), slippage_bps=costs_bps, fee_bps=costs_bps)
    def restart(self, resume_run: bool, slippage_bps: Decimal, fee_bps: Decimal) -> None:
        """Close the broker and open a new one on the same account, as a restarted process would."""
        run_id = self.broker.run_id
        self.broker.close()
        if resume_run and run_was_written(self.db_url, run_id):  # a run that wrote nothing has no row to resume
            self.broker = self._open(run_id=run_id)
        else:
            self.broker = self._open(slippage_bps=float(slippage_bps), fee_bps=float(fee_bps))
            self.model.slippage_bps, self.model.fee_bps = slippage_bps, fee_bps
        assert self.broker.slippage_bps == float(self.model.slippage_bps)

    # -- the broker equals the model, and the ledger's laws hold, after every step --------------------------
    @invariant()
    def broker_matches_model(self) -> None:
        model, broker = self.model, self.broker
        account = broker.get_account()
        assert dec(account["cash"]) == model.cash
        assert dec(account["reserved_cash"]) == model.reserved_cash
        assert {symbol: dec(qty) for symbol, qty in broker.get_positions().items()} == {
            symbol: position.qty for symbol, position in model.positions.items() if position.qty
        }
        assert [order["order_id"] for order in broker.get_orders(status="new")] == list(model.open_orders)
        fills = broker.get_fills()
        assert len(fills) == model.fills_this_epoch
        assert sum((dec(fill["realized_pnl"]) for fill in fills), Decimal(0)) == sum(
            (position.realized_pnl for position in model.positions.values()), Decimal(0)
        )
        assert broker.get_portfolio_value() == float(model.portfolio_value())
        assert broker.verify() == []


@pytest.mark.slow
def run_was_written(db_url: str, run_id: str) -> bool:
    from sqlalchemy import select

    from ledger.book.store import runs
    from ledger.db.engine import get_engine

    with get_engine(db_url).connect() as conn:
        return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def test_random_broker_call_sequences_match_the_model(db_url: str) -> None:
    LedgerMachine.db_url = db_url
    LedgerMachine.examples_run = 0
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert LedgerMachine.examples_run >= MAX_EXAMPLES
    print(f"\n[state machine] {LedgerMachine.examples_run} Hypothesis examples of up to {STEPS} steps")
