"""Small example strategies for ``paper-ledger replay``: a moving-average crossover (also with a resting stop-loss)
and an equal-weight monthly rebalance.

A strategy sees the market one bar at a time through :meth:`Strategy.observe` and, when asked, turns the
portfolio at that bar into orders with :meth:`Strategy.decide`. Decisions depend only on the bars observed so
far and on the portfolio passed in, never on what the strategy did earlier: that is what lets an interrupted
replay observe the bars it already traded without trading them again, and still decide the next bar exactly
as an uninterrupted run would.

Strategies place whole-share market orders, sells before buys, and size buys from the cash the sells should
free, priced at the quote with slippage and fee, minus a small cash buffer, so an order is not rejected for
lack of cash.
"""

from __future__ import annotations

import inspect
import math
import typing
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ledger.constants import SIDE_BUY, SIDE_SELL

# Part of equity left in cash when sizing buys: covers slippage, fees and rounding between decision and fill.
CASH_BUFFER = 0.02


@dataclass(frozen=True)
class OrderIntent:
    """An order a strategy wants placed: whole shares, side BUY or SELL; a market order, or with ``stop_price``
    a resting gtc stop order (a stop-loss)."""

    symbol: str
    side: str
    qty: int
    stop_price: float | None = None


@dataclass(frozen=True)
class Portfolio:
    """What a strategy may know about the account at a bar (protocol floats, as the broker returns them).

    ``quotes``: symbol -> (bid, ask) of the symbols quoted at this bar.
    """

    cash: float
    equity: float
    positions: Mapping[str, float]
    quotes: Mapping[str, tuple[float, float]]
    slippage_bps: float
    fee_bps: float

    def buy_cost(self, symbol: str) -> float:
        """Cash one share costs: ask plus slippage, plus fee."""
        ask = self.quotes[symbol][1]
        return ask * (1 + self.slippage_bps / 10_000) * (1 + self.fee_bps / 10_000)

    def sell_proceeds(self, symbol: str) -> float:
        """Cash one share brings: bid minus slippage, minus fee."""
        bid = self.quotes[symbol][0]
        return bid * (1 - self.slippage_bps / 10_000) * (1 - self.fee_bps / 10_000)

    def mid(self, symbol: str) -> float:
        bid, ask = self.quotes[symbol]
        return (bid + ask) / 2


class Strategy(ABC):
    """Base class: keeps each symbol's closes (the latest ``lookback`` at least, when set) and the bar times seen;
    subclasses implement :meth:`decide`."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def __init__(self) -> None:
        self.closes: dict[str, list[float]] = defaultdict(list)
        self.timestamps: list[datetime] = []
        # How many of a symbol's latest closes decide() reads (None: all); older ones are dropped now and then,
        # so a long replay's memory stays flat.
        self.lookback: int | None = None

    def observe(self, timestamp: datetime, bars: Mapping[str, Mapping[str, float]]) -> None:
        """Record one bar (every bar of a replay is observed, traded or not)."""
        self.timestamps.append(timestamp)
        lookback = self.lookback
        for symbol, bar in bars.items():
            closes = self.closes[symbol]
            closes.append(float(bar["close"]))
            if lookback is not None and len(closes) >= 2 * lookback:
                del closes[:-lookback]

    @abstractmethod
    def decide(self, timestamp: datetime, portfolio: Portfolio) -> list[OrderIntent]:
        """The orders to place at the bar just observed, sells first."""

    def _buys_within_cash(
        self, portfolio: Portfolio, sells: list[OrderIntent], wanted: list[tuple[str, float]]
    ) -> list[OrderIntent]:
        """Buy orders for ``wanted`` (symbol, budget) pairs, each capped by the cash left after the sells."""
        cash = portfolio.cash + sum(intent.qty * portfolio.sell_proceeds(intent.symbol) for intent in sells)
        cash -= portfolio.equity * CASH_BUFFER
        buys: list[OrderIntent] = []
        for symbol, budget in wanted:
            unit_cost = portfolio.buy_cost(symbol)
            qty = math.floor(min(budget, cash) / unit_cost)
            if qty > 0:
                buys.append(OrderIntent(symbol, SIDE_BUY, qty))
                cash -= qty * unit_cost
        return buys


class MovingAverageCrossover(Strategy):
    """Hold a symbol while its fast moving average of closes is above its slow one, else be flat.

    Entering buys an equal share (1/number of symbols) of equity; exiting sells the whole position.
    """

    name = "sma-crossover"
    summary = "hold each symbol while its 10-bar average close is above its 30-bar average"

    def __init__(self, fast: int = 10, slow: int = 30) -> None:
        super().__init__()
        if not 0 < fast < slow:
            raise ValueError(f"moving averages need 0 < fast < slow, got fast={fast}, slow={slow}")
        self.fast = fast
        self.slow = slow
        self.lookback = slow

    def _trend_up(self, symbol: str) -> bool | None:
        closes = self.closes[symbol]
        if len(closes) < self.slow:
            return None
        fast_ma = sum(closes[-self.fast :]) / self.fast
        slow_ma = sum(closes[-self.slow :]) / self.slow
        return fast_ma > slow_ma

    def decide(self, timestamp: datetime, portfolio: Portfolio) -> list[OrderIntent]:
        sells: list[OrderIntent] = []
        entries: list[str] = []
        for symbol in sorted(portfolio.quotes):
            trend_up = self._trend_up(symbol)
            held = portfolio.positions.get(symbol, 0.0)
            if trend_up is False and held > 0:
                sells.append(OrderIntent(symbol, SIDE_SELL, int(held)))
            elif trend_up and held == 0:
                entries.append(symbol)
        budget = portfolio.equity / max(len(self.closes), 1)
        return sells + self._buys_within_cash(portfolio, sells, [(symbol, budget) for symbol in entries])


class MovingAverageWithStopLoss(MovingAverageCrossover):
    """The crossover, and every entry protected by a resting stop-loss sell ``STOP_LOSS`` below the bid.

    The stop rests (gtc) until a later bar's quote reaches it (the position is sold there) or the crossover exits
    (the replay first cancels the stop, which holds the shares, then sells at market).
    """

    name = "sma-stops"
    summary = "sma-crossover, each entry protected by a resting stop-loss 3% below the bid"
    STOP_LOSS = 0.03

    def decide(self, timestamp: datetime, portfolio: Portfolio) -> list[OrderIntent]:
        intents = super().decide(timestamp, portfolio)
        stops = [
            OrderIntent(intent.symbol, SIDE_SELL, intent.qty,
                        stop_price=round(portfolio.quotes[intent.symbol][0] * (1 - self.STOP_LOSS), 2))
            for intent in intents
            if intent.side == SIDE_BUY
        ]
        return intents + stops


class EqualWeightMonthly(Strategy):
    """On the first bar of each month, rebalance every quoted symbol to an equal share of equity."""

    name = "equal-weight"
    summary = "on the first bar of each month, rebalance to equal weights"

    def decide(self, timestamp: datetime, portfolio: Portfolio) -> list[OrderIntent]:
        if len(self.timestamps) > 1:
            previous = self.timestamps[-2]
            if (previous.year, previous.month) == (timestamp.year, timestamp.month):
                return []
        symbols = sorted(portfolio.quotes)
        if not symbols:
            return []
        target_value = portfolio.equity * (1 - CASH_BUFFER) / len(symbols)
        sells: list[OrderIntent] = []
        wanted: list[tuple[str, float]] = []
        for symbol in symbols:
            held = portfolio.positions.get(symbol, 0.0)
            delta = math.floor(target_value / portfolio.mid(symbol)) - int(held)
            if delta < 0:
                sells.append(OrderIntent(symbol, SIDE_SELL, -delta))
            elif delta > 0:
                wanted.append((symbol, delta * portfolio.buy_cost(symbol)))
        return sells + self._buys_within_cash(portfolio, sells, wanted)


STRATEGIES: dict[str, type[Strategy]] = {
    MovingAverageCrossover.name: MovingAverageCrossover,
    MovingAverageWithStopLoss.name: MovingAverageWithStopLoss,
    EqualWeightMonthly.name: EqualWeightMonthly,
}
DEFAULT_STRATEGY = MovingAverageCrossover.name


def strategy_params(name: str) -> dict[str, type]:
    """The parameters strategy ``name`` takes (its constructor's), with their types: ``{"fast": int, ...}``."""
    cls = _strategy_class(name)
    signature = inspect.signature(cls.__init__)
    hints = typing.get_type_hints(cls.__init__)
    return {param: hints.get(param, float) for param in list(signature.parameters)[1:]}


def strategy_spec(name: str, params: Mapping[str, object] | None = None) -> str:
    """The strategy's identity with its parameters: ``name`` alone, or ``name:fast=5,slow=20`` (sorted, each value
    checked and written canonically). It names the replay job, so other parameters make another job."""
    if not params:
        _strategy_class(name)
        return name
    allowed = strategy_params(name)
    parts = []
    for param in sorted(params):
        if param not in allowed:
            takes = ", ".join(allowed) or "no parameters"
            raise ValueError(f"strategy {name} takes {takes}; not {param!r}")
        parts.append(f"{param}={_parameter(name, param, allowed[param], params[param])}")
    return f"{name}:{','.join(parts)}"


def _parameter(name: str, param: str, kind: type, value: object) -> int | float:
    try:
        number = kind(value) if kind is int and not isinstance(value, float) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"strategy {name}: {param} must be {'a whole number' if kind is int else 'a number'}, "
                         f"got {value!r}"[:120]) from None
    if kind is int and number != int(number):
        raise ValueError(f"strategy {name}: {param} must be a whole number, got {value!r}"[:120])
    if not math.isfinite(number):
        raise ValueError(f"strategy {name}: {param} must be finite, got {value!r}"[:120])
    return int(number) if kind is int else number


def _strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}") from None


def get_strategy(spec: str) -> Strategy:
    """A fresh strategy from its spec (``name`` or ``name:param=value,...``, see ``strategy_spec``); ValueError
    naming the known strategies or the strategy's parameters otherwise."""
    name, _, params_text = spec.partition(":")
    cls = _strategy_class(name)
    if not params_text:
        return cls()
    allowed = strategy_params(name)
    params: dict[str, int | float] = {}
    for item in params_text.split(","):
        param, equals, value = item.partition("=")
        if not equals or param not in allowed:
            raise ValueError(f"strategy {name} takes {', '.join(allowed) or 'no parameters'}; not {item!r}"[:160])
        params[param] = _parameter(name, param, allowed[param], value)
    return cls(**params)  # type: ignore[arg-type]
