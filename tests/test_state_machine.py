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

import os
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

# The default run stays short for CI (the suite's 20-minute budget); LEDGER_STATE_MACHINE_EXAMPLES=500 soaks it.
MAX_EXAMPLES = int(os.environ.get("LEDGER_STATE_MACHINE_EXAMPLES", "40"))
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


# == The order model (issue 9): stops, trailing stops, time in force, displayed-size fills, replace, close ======
"""A second machine drives one long-only account through every order type and time in force, quotes with
displayed sizes, replace, cancel_all, close_position, clock jumps across XNYS session closes, expire_orders and
reopening the broker, against ``OrderBook``: a reference model written from README "Trading rules" (not from the
code). Each example draws the account's fill model (``full`` or ``displayed_size``) first.
"""

import bisect  # noqa: E402
import copy  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402

from hypothesis.stateful import initialize  # noqa: E402

from ledger.exceptions import (  # noqa: E402
    OrderNotReplaceableError,
    PositionNotFoundError,
)

# A longer soak: LEDGER_ORDER_MODEL_EXAMPLES=500 (the default run is the same check, shorter).
ORDER_MODEL_EXAMPLES = int(os.environ.get("LEDGER_ORDER_MODEL_EXAMPLES", "25"))
ORDER_MODEL_STEPS = 30
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
STOP_TYPES = ("stop", "stop_limit", "trailing_stop")
OPEN = ("new", "partially_filled")


def _xnys_closes() -> list[datetime]:
    """Every XNYS session close (UTC) of the years the machine's clock can reach, from exchange_calendars."""
    import warnings

    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar = exchange_calendars.get_calendar("XNYS", start="2023-12-01", end="2025-12-31")
        return [close.to_pydatetime() for close in calendar.closes]


XNYS_CLOSES = _xnys_closes()


def day_expiry(placed_at: datetime) -> datetime:
    """A day order lives until the close of the session it was placed in, or of the next one when placed while
    the market was closed: the first session close strictly after ``placed_at``."""
    return XNYS_CLOSES[bisect.bisect_right(XNYS_CLOSES, placed_at)]


@dataclass
class BookOrder:
    order_id: str
    symbol: str
    side: str
    order_type: str
    tif: str
    qty: Decimal
    slippage_bps: Decimal
    fee_bps: Decimal
    limit: Decimal | None = None
    stop: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    triggered: bool = False
    expires_at: datetime | None = None
    filled: Decimal = Decimal(0)
    fills: list[tuple[Decimal, Decimal]] = field(default_factory=list)
    reserved_cash: Decimal = Decimal(0)
    reserved_qty: Decimal = Decimal(0)
    status: str = "new"

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    def trailing_stop(self, mark: Decimal) -> Decimal:
        offset = self.trail_price if self.trail_price is not None else mark * self.trail_percent / 100
        return q6(mark + offset if self.side == "BUY" else mark - offset)

    def track(self, bid: Decimal, ask: Decimal) -> None:
        """Move a trailing stop's water mark with the quote, then trigger a stop the quote reaches."""
        if self.order_type not in STOP_TYPES or self.triggered:
            return
        touch = ask if self.side == "BUY" else bid
        if self.order_type == "trailing_stop":
            if self.hwm is None or (touch < self.hwm if self.side == "BUY" else touch > self.hwm):
                self.hwm = touch
            self.stop = self.trailing_stop(self.hwm)
        self.triggered = touch >= self.stop if self.side == "BUY" else touch <= self.stop

    @property
    def working_limit(self) -> Decimal | None:
        return self.limit if self.order_type in ("limit", "stop_limit") else None

    def marketable(self, bid: Decimal, ask: Decimal) -> bool:
        if self.order_type in STOP_TYPES and not self.triggered:
            return False
        limit = self.working_limit
        return limit is None or (limit >= ask if self.side == "BUY" else limit <= bid)


class Rejected(Exception):
    """The model's verdict that the broker must refuse a request (the exception type it must raise)."""

    def __init__(self, error: type[Exception]):
        super().__init__(error.__name__)
        self.error = error


@dataclass
class BookQuote:
    bid: Decimal
    ask: Decimal
    left: dict[str, Decimal | None]  # displayed size not yet taken by fills, per side taken; None: unlimited


@dataclass
class OrderBook:
    """One account by the rules: cash, positions, reservations, open orders, each order's fate."""

    fill_model: str
    slippage_bps: Decimal
    fee_bps: Decimal
    cash: Decimal = INITIAL_CASH
    reserved_cash: Decimal = Decimal(0)
    positions: dict[str, ModelPosition] = field(default_factory=dict)
    quotes: dict[str, BookQuote] = field(default_factory=dict)
    orders: dict[str, BookOrder] = field(default_factory=dict)  # every order, in submission order
    fills: int = 0
    margin: bool = False  # a Reg T margin account (multiplier 2) with shorting, else a cash account

    def position(self, symbol: str) -> ModelPosition:
        return self.positions.setdefault(symbol, ModelPosition())

    @property
    def available_cash(self) -> Decimal:
        return self.cash - self.reserved_cash

    def open_orders(self, symbol: str | None = None) -> list[BookOrder]:
        return [o for o in self.orders.values() if o.status in OPEN and symbol in (None, o.symbol)]

    def buying_power(self) -> Decimal:
        """2 x equity - (long value + |short value|) - reserved; positions at their quote's mid, else at cost."""
        values = [
            p.cost_basis if (q := self.quotes.get(symbol)) is None else p.qty * (q.bid + q.ask) / 2
            for symbol, p in self.positions.items() if p.qty
        ]
        long_value = q6(sum((v for v in values if v > 0), Decimal(0)))
        short_value = q6(sum((v for v in values if v <= 0), Decimal(0)))
        return q6(2 * (self.cash + long_value + short_value) - (long_value - short_value) - self.reserved_cash)

    # -- pricing --------------------------------------------------------------------------------------------
    @staticmethod
    def slipped(side: str, touch: Decimal, slippage_bps: Decimal) -> Decimal:
        return q6(touch * (1 + slippage_bps / BPS) if side == "BUY" else touch * (1 - slippage_bps / BPS))

    def fill_price(self, order: BookOrder, quote: BookQuote) -> Decimal:
        touch = quote.ask if order.side == "BUY" else quote.bid
        return Model.price(order.side, quote.bid, quote.ask, order.slippage_bps, order.working_limit) if touch else touch

    @staticmethod
    def cost(qty: Decimal, price: Decimal, fee_bps: Decimal) -> Decimal:
        notional, fee = Model.notional_and_fee(qty, price, fee_bps)
        return notional + fee

    def reservation_price(self, order: BookOrder, quote: BookQuote | None) -> Decimal:
        """A resting buy reserves at its limit, else at its stop plus slippage, else at the ask plus slippage."""
        if order.limit is not None:
            return order.limit
        base = order.stop if order.stop is not None else quote.ask  # type: ignore[union-attr]
        return self.slipped("BUY", base, order.slippage_bps)

    def reservation(self, order: BookOrder, quote: BookQuote | None, qty: Decimal) -> Decimal:
        """What ``qty`` of an opening order holds while it rests: a buy's cost at its reservation price, a short
        sale's value at the highest of its limit, its stop and the ask (fee included)."""
        if order.side == "BUY":
            return self.cost(qty, self.reservation_price(order, quote), order.fee_bps)
        prices = [p for p in (order.limit, order.stop, None if quote is None else quote.ask) if p is not None]
        return self.cost(qty, max(prices), order.fee_bps)

    def displayed(self, quote: BookQuote, side: str, wanted: Decimal) -> Decimal:
        left = quote.left[side]
        return wanted if left is None else min(wanted, left)

    # -- state changes ---------------------------------------------------------------------------------------
    def release(self, order: BookOrder) -> None:
        self.reserved_cash -= order.reserved_cash
        self.position(order.symbol).reserved_qty -= order.reserved_qty
        order.reserved_cash = order.reserved_qty = Decimal(0)

    def close(self, order: BookOrder, status: str) -> None:
        self.release(order)
        order.status = status

    def expire_due(self, now: datetime) -> None:
        for order in self.open_orders():
            if order.expires_at is not None and order.expires_at <= now:
                self.close(order, "expired")

    def fill(self, order: BookOrder, quote: BookQuote, qty: Decimal) -> None:
        """Fill ``qty`` of an open order; its reservation shrinks in proportion. A fill the account cannot
        cover (cash beyond what it reserved, shares) cancels the order instead."""
        remaining = order.remaining
        release_cash = order.reserved_cash if qty == remaining else q6(order.reserved_cash * qty / remaining)
        release_qty = min(order.reserved_qty, qty)
        price = self.fill_price(order, quote)
        position = self.position(order.symbol)
        if not self.margin:
            if order.side == "BUY" and self.cost(qty, price, order.fee_bps) > self.available_cash + release_cash:
                return self.close(order, "canceled")
            if order.side == "SELL" and qty > position.qty - position.reserved_qty + release_qty:
                return self.close(order, "canceled")
        notional, fee = Model.notional_and_fee(qty, price, order.fee_bps)
        signed = qty if order.side == "BUY" else -qty
        if position.qty and (position.qty > 0) != (signed > 0):  # closes (part of) the position
            if qty > abs(position.qty):
                return self.close(order, "canceled")  # never reverses it
            share = (position.cost_basis if qty == abs(position.qty)
                     else q6(position.cost_basis * qty / abs(position.qty)))
            if order.side == "BUY":
                self.cash -= notional + fee
                position.realized_pnl += -share - (notional + fee)
            else:
                self.cash += notional - fee
                position.realized_pnl += notional - fee - share
            position.cost_basis -= share
        elif order.side == "BUY":
            self.cash -= notional + fee
            position.cost_basis += notional + fee
        else:  # a short sale
            self.cash += notional - fee
            position.cost_basis -= notional - fee
        position.qty += signed
        if position.qty < 0:
            OrderModelMachine.short_fills += 1
        self.reserved_cash -= release_cash
        order.reserved_cash -= release_cash
        position.reserved_qty -= release_qty
        order.reserved_qty -= release_qty
        if quote.left[order.side] is not None:
            quote.left[order.side] -= qty  # type: ignore[operator]
        order.filled += qty
        order.fills.append((qty, price))
        self.fills += 1
        if order.filled == order.qty:
            self.close(order, "filled")
        else:
            order.status = "partially_filled"

    def place(self, order: BookOrder, now: datetime) -> None:
        """Submit: reject (raise Rejected, nothing kept but the rejected row), cancel at once (ioc/fok), fill now
        (wholly or in part) and/or rest with a reservation."""
        quote = self.quotes.get(order.symbol)
        if order.order_type in ("market", "trailing_stop") and quote is None:
            raise Rejected(OrderRejectedError)
        if order.tif == "day":
            order.expires_at = day_expiry(now)
        if order.order_type == "trailing_stop":
            assert quote is not None
            order.hwm = quote.ask if order.side == "BUY" else quote.bid
            order.stop = order.trailing_stop(order.hwm)
        if quote is not None:
            order.track(quote.bid, quote.ask)
        fill_qty = Decimal(0)
        if quote is not None and order.marketable(quote.bid, quote.ask):
            fill_qty = self.displayed(quote, order.side, order.qty)
        if order.tif == "fok" and fill_qty < order.qty or order.tif == "ioc" and fill_qty == 0:
            order.status = "canceled"
            self.orders[order.order_id] = order
            return
        rests = Decimal(0) if order.tif == "ioc" else order.qty - fill_qty
        position = self.position(order.symbol)
        if self.margin:
            self.check_margin(order, quote, fill_qty, rests)
        elif order.side == "BUY":
            needed = Decimal(0)
            if fill_qty:
                needed += self.cost(fill_qty, self.fill_price(order, quote), order.fee_bps)  # type: ignore[arg-type]
            if rests:
                needed += self.cost(rests, self.reservation_price(order, quote), order.fee_bps)
            if needed > self.available_cash:
                raise Rejected(InsufficientFundsError)
        elif fill_qty + rests > position.qty - position.reserved_qty:
            raise Rejected(OrderRejectedError)
        self.orders[order.order_id] = order
        if fill_qty:
            self.fill(order, quote, fill_qty)  # type: ignore[arg-type]
        if rests and order.status in OPEN:
            if position.qty >= 0 if order.side == "BUY" else position.qty <= 0:  # opens or adds
                order.reserved_cash = self.reservation(order, quote, rests)
                self.reserved_cash += order.reserved_cash
            elif order.side == "SELL":
                order.reserved_qty = rests
                position.reserved_qty += rests
        if order.tif == "ioc" and order.status in OPEN:
            self.close(order, "canceled")

    def check_margin(self, order: BookOrder, quote: BookQuote | None, fill_qty: Decimal, rests: Decimal) -> None:
        """A margin account's verdict: a sell closes a long, a buy covers a short, neither reverses it; an order
        that opens needs buying power, and a flat position cannot open both ways at once."""
        position, qty = self.position(order.symbol), fill_qty + rests
        held = position.qty
        if order.side == "SELL" and held > 0:
            if qty > held - position.reserved_qty:
                raise Rejected(OrderRejectedError)
            return
        if order.side == "BUY" and held < 0:
            covering = sum((o.remaining for o in self.open_orders(order.symbol) if o.side == "BUY"), Decimal(0))
            if qty > -held - covering:
                raise Rejected(OrderRejectedError)
            return
        if held == 0 and any(o.side != order.side for o in self.open_orders(order.symbol)):
            raise Rejected(OrderRejectedError)
        needed = Decimal(0)
        if fill_qty:
            needed += self.cost(fill_qty, self.fill_price(order, quote), order.fee_bps)  # type: ignore[arg-type]
        if rests:
            needed += self.reservation(order, quote, rests)
        if needed > self.buying_power():
            raise Rejected(InsufficientFundsError)

    def work(self, symbol: str) -> None:
        """A new quote moves trailing stops, triggers stops and fills marketable orders, oldest first."""
        quote = self.quotes[symbol]
        for order in self.open_orders(symbol):
            order.track(quote.bid, quote.ask)
            if order.marketable(quote.bid, quote.ask):
                qty = self.displayed(quote, order.side, order.remaining)
                if qty > 0:
                    self.fill(order, quote, qty)


order_sides = st.sampled_from(["BUY", "SELL"])
order_kinds = st.sampled_from(ORDER_TYPES)
times_in_force = st.sampled_from(["gtc", "gtc", "day", "day", "ioc", "fok"])
displayed_sizes = st.sampled_from([Decimal(0), Decimal(3), Decimal(10), Decimal(25), Decimal(200)])
# Prices relative to the touch in cents: negative below it, positive above it.
offsets = st.integers(min_value=-300, max_value=300).map(lambda cents: Decimal(cents) / 100)
trails = st.one_of(
    st.integers(min_value=10, max_value=400).map(lambda cents: ("price", Decimal(cents) / 100)),
    st.integers(min_value=1, max_value=50).map(lambda tenths: ("percent", Decimal(tenths) / 10)),
)
clock_jumps = st.one_of(
    st.integers(min_value=1, max_value=30).map(lambda hours: timedelta(hours=hours)),
    st.integers(min_value=1, max_value=4).map(lambda days: timedelta(days=days)),
    st.integers(min_value=1, max_value=120).map(lambda minutes: timedelta(minutes=minutes)),
)


class OrderModelMachine(RuleBasedStateMachine):
    """One account (a cash account, or a Reg T margin account that sells short) trading every order type,
    against ``OrderBook``."""

    db_url: str = ""
    examples_run = 0
    short_fills = 0  # fills that left a short position (reported, to show the machine explores shorts)

    def __init__(self) -> None:
        super().__init__()
        type(self).examples_run += 1
        self.clock = FakeClock()
        self.account = "om-" + uuid.uuid4().hex[:16]
        self.broker: PaperBroker | None = None

    @initialize(fill_model=st.sampled_from(["full", "displayed_size"]), margin=st.sampled_from([False, True, True]))
    def open_account(self, fill_model: str, margin: bool) -> None:
        self.book = OrderBook(fill_model, Decimal(5), Decimal(1), margin=margin)
        self.broker = self._open(initial_cash=INITIAL_CASH, slippage_bps=Decimal(5), fee_bps=Decimal(1))
        self.broker.configure(fill_model=fill_model)
        if margin:
            self.broker.configure(max_margin_multiplier=2, shorting_enabled=True)

    def _open(self, **settings_: object) -> PaperBroker:
        return PaperBroker(db_url=self.db_url, account=self.account, clock=self.clock, **settings_)  # type: ignore[arg-type]

    def teardown(self) -> None:
        if self.broker is not None:
            self.broker.close()

    def _tick(self) -> datetime:
        """Every write happens one second after the previous step; due day orders expire inside it."""
        now = self.clock.advance(seconds=1)
        self._before = copy.deepcopy(self.book)
        self.book.expire_due(now)
        return now

    def _refused(self, error: type[Exception], call: Callable[[], object]) -> None:
        """A request refused with ``error`` writes nothing: not even the expiries its transaction started with."""
        with pytest.raises(error):
            call()
        self.book = self._before

    def _submit_expected(self, order: BookOrder, call: Callable[[], dict], now: datetime) -> dict | None:
        """Run ``call`` (which places ``order``) and hold the broker to the model's verdict."""
        try:
            self.book.place(order, now)
        except Rejected as verdict:
            with pytest.raises(verdict.error) as raised:
                call()
            if verdict.error is OrderRejectedError:
                assert not isinstance(raised.value, InsufficientFundsError), raised.value
            return None
        result = call()
        book_order = self.book.orders.pop(order.order_id)
        book_order.order_id = result["order_id"]
        self.book.orders[book_order.order_id] = book_order
        assert (result["status"], dec(result["filled_qty"])) == (book_order.status, book_order.filled), result
        return result

    # -- rules ---------------------------------------------------------------------------------------------
    @rule(symbol=st.sampled_from(SYMBOLS), bid=prices, spread_cents=st.integers(min_value=0, max_value=40),
          bid_size=displayed_sizes, ask_size=displayed_sizes)
    def set_quote(self, symbol: str, bid: Decimal, spread_cents: int, bid_size: Decimal, ask_size: Decimal) -> None:
        ask = bid + Decimal(spread_cents) / 100
        self._tick()
        limited = self.book.fill_model == "displayed_size"
        self.book.quotes[symbol] = BookQuote(bid, ask, {
            "BUY": ask_size if limited and ask_size > 0 else None,
            "SELL": bid_size if limited and bid_size > 0 else None,
        })
        fills_before = self.book.fills
        self.book.work(symbol)
        fills = self.broker.set_quote(symbol, bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size)
        assert len(fills) == self.book.fills - fills_before

    @rule(symbol=st.sampled_from(SYMBOLS), side=order_sides, qty=quantities, kind=order_kinds, tif=times_in_force,
          stop_offset=offsets, limit_offset=offsets, trail=trails)
    def submit(self, symbol: str, side: str, qty: Decimal, kind: str, tif: str, stop_offset: Decimal,
               limit_offset: Decimal, trail: tuple[str, Decimal]) -> None:
        now = self._tick()
        quote = self.book.quotes.get(symbol)
        touch = Decimal(100) if quote is None else (quote.ask if side == "BUY" else quote.bid)
        order = BookOrder("?", symbol, side, kind, tif, qty, self.book.slippage_bps, self.book.fee_bps)
        params: dict[str, object] = {"time_in_force": tif}
        if kind in ("stop", "stop_limit"):
            order.stop = params["stop_price"] = max(touch + stop_offset, Decimal(1))
        if kind in ("limit", "stop_limit"):
            base = order.stop if kind == "stop_limit" else touch
            order.limit = params["limit_price"] = max(base + limit_offset, Decimal(1))  # type: ignore[operator]
        if kind == "trailing_stop":
            key = "trail_price" if trail[0] == "price" else "trail_percent"
            setattr(order, key, trail[1])
            params[key] = trail[1]
        self._submit_expected(order, lambda: self.broker.submit_order(symbol, side, qty, kind, **params), now)

    @precondition(lambda self: self.book.margin)
    @rule(symbol=st.sampled_from(SYMBOLS), qty=quantities)
    def sell_short(self, symbol: str, qty: Decimal) -> None:
        """A market sell on the margin account: a short sale when flat or short (shorts are otherwise rare)."""
        now = self._tick()
        order = BookOrder("?", symbol, "SELL", "market", "gtc", qty, self.book.slippage_bps, self.book.fee_bps)
        self._submit_expected(order, lambda: self.broker.submit_order(symbol, "SELL", qty), now)

    def _pick(self, pick: int, open_only: bool) -> BookOrder | None:
        orders = self.book.open_orders() if open_only else list(self.book.orders.values())
        return orders[pick % len(orders)] if orders else None

    @precondition(lambda self: self.book.orders)
    @rule(pick=st.integers(min_value=0, max_value=10_000))
    def cancel(self, pick: int) -> None:
        self._tick()
        order = self._pick(pick, open_only=False)
        assert order is not None
        if order.status in OPEN:
            self.book.close(order, "canceled")
        assert self.broker.cancel_order(order.order_id)["status"] == order.status

    @rule()
    def cancel_all(self) -> None:
        self._tick()
        expected = [order.order_id for order in self.book.open_orders()]
        for order in self.book.open_orders():
            self.book.close(order, "canceled")
        assert [order["order_id"] for order in self.broker.cancel_all_orders()] == expected

    @precondition(lambda self: self.book.orders)
    @rule(pick=st.integers(min_value=0, max_value=10_000), qty=st.one_of(st.none(), quantities),
          price_offset=st.one_of(st.none(), offsets), trail=st.one_of(st.none(), trails),
          tif=st.sampled_from([None, "gtc", "day"]))
    def replace(self, pick: int, qty: Decimal | None, price_offset: Decimal | None,
                trail: tuple[str, Decimal] | None, tif: str | None) -> None:
        now = self._tick()
        old = self._pick(pick, open_only=True) or self._pick(pick, open_only=False)
        assert old is not None
        changes: dict[str, object] = {"qty": qty, "time_in_force": tif}
        new = BookOrder("?", old.symbol, old.side, old.order_type, tif or old.tif, qty or old.remaining,
                        self.book.slippage_bps, self.book.fee_bps, limit=old.limit, stop=old.stop,
                        trail_price=old.trail_price, trail_percent=old.trail_percent)
        if price_offset is not None and old.order_type in ("limit", "stop_limit"):
            new.limit = changes["limit_price"] = max(old.limit + price_offset, Decimal(1))  # type: ignore[operator]
        if price_offset is not None and old.order_type == "stop":
            new.stop = changes["stop_price"] = max(old.stop + price_offset, Decimal(1))  # type: ignore[operator]
        if trail is not None and old.order_type == "trailing_stop":
            amount = trail[1] if (trail[0] == "price") == (old.trail_price is not None) else None
            if amount is not None:
                changes["trail"] = amount
                if old.trail_price is not None:
                    new.trail_price = amount
                else:
                    new.trail_percent = amount
        call = lambda: self.broker.replace_order(old.order_id, **changes)  # noqa: E731
        if old.status not in OPEN:
            # Refused after its transaction commits (README: replace_order): the expiries it made stay.
            with pytest.raises(OrderNotReplaceableError):
                call()
            return
        # The old order's reservation is released first, so the new one may use it; a rejection changes nothing.
        self.book.close(old, "replaced")
        try:
            self.book.place(new, now)
        except Rejected as verdict:
            return self._refused(verdict.error, call)
        self.book.orders.pop(new.order_id)
        result = call()
        new.order_id = result["order_id"]
        self.book.orders[new.order_id] = new
        assert (result["status"], dec(result["filled_qty"]), result["replaces"]) == (new.status, new.filled, old.order_id)

    @rule(symbol=st.sampled_from(SYMBOLS),
          how=st.one_of(st.none(), st.tuples(st.just("percentage"), st.integers(min_value=1, max_value=100)),
                        st.tuples(st.just("qty"), quantities)))
    def close_position(self, symbol: str, how: tuple[str, object] | None) -> None:
        now = self._tick()
        held = self.book.position(symbol).qty
        kwargs: dict[str, object] = {}
        size = abs(held)
        if how is not None and how[0] == "percentage":
            kwargs["percentage"] = Decimal(how[1])  # type: ignore[arg-type]
            size = (abs(held) * Decimal(how[1]) / 100).quantize(UNIT, rounding="ROUND_DOWN")  # type: ignore[arg-type]
        elif how is not None:
            kwargs["qty"] = size = how[1]  # type: ignore[assignment]
        call = lambda: self.broker.close_position(symbol, **kwargs)  # noqa: E731
        if held == 0:
            return self._refused(PositionNotFoundError, call)
        side = "SELL" if held > 0 else "BUY"
        order = BookOrder("?", symbol, side, "market", "gtc", size, self.book.slippage_bps, self.book.fee_bps)
        if size <= 0:
            with pytest.raises(OrderRejectedError):
                call()
            return
        self._submit_expected(order, call, now)

    @rule(jump=clock_jumps)
    def clock_moves(self, jump: timedelta) -> None:
        """Broker time passes without a write: due day orders stay open until the next write."""
        self.clock.advance(seconds=jump.total_seconds())

    @rule()
    def expire_orders(self) -> None:
        now = self.clock()
        due = [o.order_id for o in self.book.open_orders() if o.expires_at is not None and o.expires_at <= now]
        self.book.expire_due(now)
        assert [order["order_id"] for order in self.broker.expire_orders()] == due

    @precondition(lambda self: not self.book.margin)
    @rule()
    def shorting_is_refused(self) -> None:
        with pytest.raises(Exception, match="short selling needs a margin account"):
            self.broker.configure(shorting_enabled=True)

    @rule(resume_run=st.booleans(), slippage_bps=costs_bps, fee_bps=costs_bps)
    def reopen(self, resume_run: bool, slippage_bps: Decimal, fee_bps: Decimal) -> None:
        """A new PaperBroker on the same database sees exactly the state the old one left."""
        before = self._state()
        run_id = self.broker.run_id
        self.broker.close()
        if resume_run and run_was_written(self.db_url, run_id):
            self.broker = self._open(run_id=run_id)
        else:
            self.broker = self._open(slippage_bps=slippage_bps, fee_bps=fee_bps)
            self.book.slippage_bps, self.book.fee_bps = slippage_bps, fee_bps
        assert self._state() == before, "reopening the broker changed what it shows"

    def _state(self) -> tuple[object, ...]:
        broker = self.broker
        orders = [{k: v for k, v in order.items() if k not in ("run_id",)} for order in broker.get_orders()]
        return (broker.get_account(), broker.get_positions(), orders, broker.get_fills(), broker.settings())

    # -- the broker equals the model after every step ------------------------------------------------------
    @invariant()
    def broker_matches_book(self) -> None:
        if self.broker is None:
            return
        book, broker = self.book, self.broker
        account = broker.get_account()
        assert (dec(account["cash"]), dec(account["reserved_cash"])) == (book.cash, book.reserved_cash)
        assert {symbol: dec(qty) for symbol, qty in broker.get_positions().items()} == {
            symbol: position.qty for symbol, position in book.positions.items() if position.qty
        }
        # Rejected orders are rows too (the model only counts them as refusals).
        stored = {order["order_id"]: order for order in broker.get_orders() if order["status"] != "rejected"}
        assert list(stored) == list(book.orders), "the ledger holds other orders than the model"
        for order_id, order in book.orders.items():
            row = stored[order_id]
            expected = (order.status, order.filled, order.stop, order.hwm, order.expires_at)
            actual = (row["status"], dec(row["filled_qty"]), None if row["stop_price"] is None
                      else dec(row["stop_price"]), None if row["hwm"] is None else dec(row["hwm"]), row["expires_at"])
            assert actual == expected, f"order {order.order_type} {order.side} {order.tif}: {actual} != {expected}"
            if order.fills:
                average = q6(sum((q * p for q, p in order.fills), Decimal(0)) / order.filled)
                assert dec(row["filled_avg_price"]) == average
        assert len(broker.get_fills()) == book.fills
        if book.margin:
            assert dec(account["buying_power"]) == book.buying_power()
        assert broker.verify() == []


def test_order_model_call_sequences_match_the_reference_book(db_url: str) -> None:
    OrderModelMachine.db_url = db_url
    OrderModelMachine.examples_run = OrderModelMachine.short_fills = 0
    run_state_machine_as_test(
        OrderModelMachine,
        settings=settings(
            max_examples=ORDER_MODEL_EXAMPLES,
            stateful_step_count=ORDER_MODEL_STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert OrderModelMachine.examples_run >= ORDER_MODEL_EXAMPLES
    print(f"\n[order model machine] {OrderModelMachine.examples_run} examples of up to {ORDER_MODEL_STEPS} steps, "
          f"{OrderModelMachine.short_fills} fills leaving a short position")


def test_a_quotes_displayed_size_is_taken_once_across_transactions(db_url: str) -> None:
    """A replayed example of the machine: two market buys of 6 on one quote showing 10 (displayed_size) fill
    6, then the 4 left; the rest of the second stays open (README: a quote's size is consumed once, across the
    account's orders and transactions)."""
    OrderModelMachine.db_url = db_url
    machine = OrderModelMachine()
    try:
        machine.open_account(fill_model="displayed_size", margin=False)
        machine.set_quote(symbol="AAA", bid=Decimal(100), spread_cents=10, bid_size=Decimal(10), ask_size=Decimal(10))
        for _ in range(2):
            machine.submit(symbol="AAA", side="BUY", qty=Decimal(6), kind="market", tif="gtc", stop_offset=Decimal(0),
                           limit_offset=Decimal(0), trail=("price", Decimal(1)))
            machine.broker_matches_book()
    finally:
        machine.teardown()
