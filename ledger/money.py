"""Exact amounts: parsing inputs to Decimal, one quantization rule per kind, and the scaled-integer storage form.

Every quantity, price, cash amount and basis-point rate in the ledger is a ``Decimal`` with at most
``SCALE_DIGITS`` (6) decimal places. On disk they are 64-bit integers in millionths (columns named ``*_e6``),
which keeps them exact on SQLite and PostgreSQL alike and lets SQL ``SUM`` stay exact.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from numbers import Integral, Real

SCALE_DIGITS = 6
SCALE = 10**SCALE_DIGITS
UNIT = Decimal(1).scaleb(-SCALE_DIGITS)  # 0.000001
# Largest magnitude a signed 64-bit column can hold at this scale, with headroom for SUM over many rows.
MAX_AMOUNT = Decimal(10) ** 12
BPS = Decimal(10_000)


class AmountError(ValueError):
    """A number handed to the ledger is not a usable finite decimal."""


class AmountLimitError(AmountError):
    """A computed amount (notional, fee, cash after a fill, position, cost basis, P&L) would reach MAX_AMOUNT."""


def plain(value: object) -> str:
    """A number as a person writes it in a message (``-5``, ``0``, ``0.1``), never a Python repr such as
    ``Decimal('0')`` or ``np.int64(-5)``; anything that is not a number is shown as its (short) repr."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, Real)):
        return repr(value)[:60]
    if not isinstance(value, Decimal):
        value = Decimal(int(value)) if isinstance(value, Integral) else Decimal(repr(float(value)))
    if not value.is_finite():
        return str(value).lower()
    value = value.normalize()
    return format(value, "f") if -7 < value.adjusted() < 16 else str(value)  # 1E+400, not 400 digits


def bounded(value: Decimal, what: str) -> Decimal:
    """``value`` if its magnitude is below MAX_AMOUNT, the bound on every amount the ledger stores; else
    AmountLimitError. Called on computed amounts before they are rounded or written."""
    if abs(value) >= MAX_AMOUNT:
        raise AmountLimitError(f"{what} would be {plain(round(value))}, beyond the ledger's limit of 10^12")
    return value


def to_decimal(value: object, what: str) -> Decimal:
    """Parse an int, float, Decimal or numpy scalar into a finite Decimal; anything else is an AmountError.

    Strings and booleans are refused on purpose: a quantity typed as text is a bug in the caller.
    Floats go through ``repr`` so 0.1 becomes Decimal('0.1'), not its binary expansion.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise AmountError(f"{what} must be a number, got {value!r}"[:200])
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float) or isinstance(value, Real):
        as_float = float(value)
        if math.isnan(as_float) or math.isinf(as_float):
            raise AmountError(f"{what} must be finite, got {plain(as_float)}")
        result = Decimal(repr(as_float))
    else:
        raise AmountError(f"{what} must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise AmountError(f"{what} must be finite, got {plain(value)}")
    if abs(result) >= MAX_AMOUNT:
        raise AmountError(f"{what} is out of range: {plain(value)} (limit 10^12)")
    return result


def exact(value: Decimal, what: str) -> Decimal:
    """Return ``value`` at storage scale, refusing any value that would need rounding (quantities, limits)."""
    try:
        quantized = value.quantize(UNIT)
    except InvalidOperation as exc:
        raise AmountError(f"{what} is out of range: {value}") from exc
    if quantized != value:
        raise AmountError(f"{what} has more than {SCALE_DIGITS} decimal places: {value}")
    return quantized


def round_amount(value: Decimal) -> Decimal:
    """The one rounding rule for computed prices, notionals and fees: half-even to storage scale."""
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def to_scaled(value: Decimal) -> int:
    """Decimal -> integer millionths (the on-disk form); refuses a value that would need rounding.

    Rounding is a ledger decision made before storage (``round_amount``), never silently here.
    """
    if not value.is_finite():
        raise AmountError(f"stored amount must be finite, got {value}")
    scaled = value.scaleb(SCALE_DIGITS)
    integer = int(scaled)
    if integer != scaled:
        raise AmountError(f"stored amount has more than {SCALE_DIGITS} decimal places: {value}")
    return integer


def from_scaled(value: int) -> Decimal:
    """Integer millionths -> Decimal at storage scale (exponent -6; exact: a stored amount has at most 19 digits).

    One multiplication: reads decode every amount of every row through here."""
    return UNIT * value


def bps_fraction(bps: Decimal) -> Decimal:
    """Basis points as a fraction: 5 bps -> 0.0005."""
    return bps / BPS


def to_float(value: Decimal | None) -> float | None:
    """The protocol edge: Decimal -> float (None stays None)."""
    return None if value is None else float(value)
