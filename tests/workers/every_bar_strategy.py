"""A test-only strategy that orders on every bar, so a resume that skips or repeats one bar changes the fill count."""

from __future__ import annotations

from datetime import datetime

from ledger.constants import SIDE_BUY
from ledger.strategies import STRATEGIES, OrderIntent, Portfolio, Strategy


class EveryBarStrategy(Strategy):
    """Buys one share of the alphabetically first quoted symbol at every bar."""

    name = "every-bar"
    summary = "test only: buy one share of the first symbol at every bar"

    def decide(self, timestamp: datetime, portfolio: Portfolio) -> list[OrderIntent]:
        return [OrderIntent(min(portfolio.quotes), SIDE_BUY, 1)]


def register() -> None:
    """Make ``--strategy every-bar`` available (before ledger.cli is imported: its choices are fixed then)."""
    STRATEGIES[EveryBarStrategy.name] = EveryBarStrategy
