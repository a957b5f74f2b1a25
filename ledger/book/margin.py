"""Margin: an account's buying power and maintenance requirement, from its cash and marked positions.

The account's ``max_margin_multiplier`` m decides what kind of account it is:

- m = 1, a **cash account**: it buys with its available cash (cash minus what resting buys reserve), holds long
  positions only, and its cash never goes below zero. Short selling needs a margin account.
- m > 1, a **margin account** (m = 2 is Reg T; up to 4): cash may go below zero (the margin loan) and, with
  ``shorting_enabled``, positions may be short. The rule, in the ledger's exact arithmetic:

  - positions are valued at the mid of their last quote (at their cost basis when none is stored), as the
    equity marks value them; long value >= 0, short value <= 0;
  - equity = cash + long value + short value;
  - initial margin = (long value + |short value|) / m  (Reg T, m = 2: 50% of each position's value);
  - buying power = m x (equity - initial margin) - reserved = m x equity - (long value + |short value|) - reserved,
    where reserved is what open *opening* orders hold (resting buys that open or add to a long, resting short
    sales); sells of a long and buys to cover hold no buying power and give none back until they fill;
  - an opening order is accepted when what it adds (its fill now at the execution price, and its resting rest at
    its reference price, fee included) is at most the buying power; it then reserves its resting part;
  - maintenance margin = 25% of long value + 30% of |short value|; when equity falls below it the account
    reports a **maintenance shortfall** (equity short of the requirement). Nothing is liquidated: the trader
    decides.

  With m = 1 the same formulas give buying power = cash - reserved, the cash account's rule. No borrow fee is
  charged on short positions and no interest on the margin loan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from ledger.money import round_amount

ZERO = Decimal(0)
MAINTENANCE_LONG = Decimal("0.25")
MAINTENANCE_SHORT = Decimal("0.30")


@dataclass(frozen=True)
class Margin:
    """An account's figures at one moment (all in the account's currency, rounded to the ledger's 6 decimals)."""

    multiplier: Decimal
    long_value: Decimal
    short_value: Decimal  # <= 0
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    buying_power: Decimal
    maintenance_shortfall: Decimal  # >= 0: how far equity is below the maintenance margin


def position_value(qty: Decimal, cost_basis: Decimal, mid: Decimal | None) -> Decimal:
    """A position's market value at the mid of its last quote, or its (signed) cost basis when it has none."""
    return cost_basis if mid is None else qty * mid


def margin_figures(cash: Decimal, reserved: Decimal, multiplier: Decimal, values: Iterable[Decimal]) -> Margin:
    """The account's margin figures from its cash, its open orders' reservation and its positions' values."""
    long_value = short_value = ZERO
    for value in values:
        if value > 0:
            long_value += value
        else:
            short_value += value
    long_value, short_value = round_amount(long_value), round_amount(short_value)
    gross = long_value - short_value
    equity = cash + long_value + short_value
    maintenance = round_amount(long_value * MAINTENANCE_LONG - short_value * MAINTENANCE_SHORT)
    return Margin(
        multiplier=multiplier,
        long_value=long_value,
        short_value=short_value,
        equity=equity,
        initial_margin=round_amount(gross / multiplier),
        maintenance_margin=maintenance,
        buying_power=round_amount(multiplier * equity - gross - reserved),
        maintenance_shortfall=max(ZERO, maintenance - equity),
    )


def is_margin_account(multiplier: Decimal) -> bool:
    return multiplier > 1
