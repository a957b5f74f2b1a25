"""Validation at the edge: turn raw order and quote arguments into exact, checked values, once.

Everything here raises a LedgerError subclass (or ValueError for datetimes) with a message that says what
was wrong; nothing below this module has to re-check its inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from ledger.constants import (
    AUCTION_TIMES_IN_FORCE,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_STOP,
    ORDER_STOP_LIMIT,
    ORDER_TRAILING_STOP,
    ORDER_TYPES,
    SIDES,
    TIF_GTC,
    TIMES_IN_FORCE,
)
from ledger.exceptions import InvalidQuoteError
from ledger.money import MAX_AMOUNT, SCALE_DIGITS, UNIT, AmountError, exact, plain, to_decimal

# 1-32 characters in all (the column is String(32)), a leading ^ included: the length is checked separately.
SYMBOL_PATTERN = re.compile(r"^\^?[A-Z0-9][A-Z0-9._\-=/]*$")
SYMBOL_MAX = 32
CLIENT_ORDER_ID_MAX = 128
_LEDGER_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_CLIENT_ORDER_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True)
class OrderRequest:
    """A validated order: upper-case symbol and side, lower-case type and time in force, exact amounts.

    ``qty`` is None only for a notional order (a cash amount; its quantity is fixed when it is priced).
    ``trail_percent`` is in percent (2.5 means 2.5%).
    """

    symbol: str
    side: str
    order_type: str
    qty: Decimal | None
    limit_price: Decimal | None
    client_order_id: str | None
    time_in_force: str = TIF_GTC
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    notional: Decimal | None = None


@dataclass(frozen=True)
class InvalidOrder:
    """An order that failed validation, in a form safe to record for audit."""

    symbol: str
    side: str
    order_type: str
    reason: str
    qty: Decimal | None = None  # the parsed quantity and limit when they are storable numbers, else None
    limit_price: Decimal | None = None
    time_in_force: str = TIF_GTC  # as submitted (shortened), for the record


def printable(value: object, limit: int = 32) -> str:
    """A short, NUL-free rendering of arbitrary input for error messages and audit rows."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_symbol(symbol: object) -> str:
    """Upper-case, trimmed ticker symbol such as ``AAPL``, ``BRK-B``, ``^GSPC`` or ``EURUSD=X``."""
    if not isinstance(symbol, str):
        raise ValueError(f"symbol must be a string, got {printable(symbol)}")
    cleaned = symbol.strip().upper()
    if not cleaned:
        raise ValueError("symbol is empty")
    if len(cleaned) > SYMBOL_MAX or not SYMBOL_PATTERN.match(cleaned):
        raise ValueError(
            f"malformed symbol {printable(symbol)!s}: use 1-{SYMBOL_MAX} of A-Z 0-9 . _ - = / "
            "(a leading ^ allowed, counted in the length)"
        )
    return cleaned


def validate_order(
    symbol: object,
    side: object,
    qty: object,
    order_type: object = ORDER_MARKET,
    limit_price: object = None,
    client_order_id: object = None,
    *,
    time_in_force: object = TIF_GTC,
    stop_price: object = None,
    trail_price: object = None,
    trail_percent: object = None,
    notional: object = None,
) -> OrderRequest | InvalidOrder:
    """Check every order argument; return the clean request or the reason it is refused.

    Which prices an order type takes: market none; limit ``limit_price``; stop ``stop_price``; stop_limit both;
    trailing_stop exactly one of ``trail_price`` (an amount) or ``trail_percent`` (0 < percent < 100).
    ``notional`` (a cash amount instead of ``qty``) is for market orders only.
    """
    clean_symbol = None
    try:
        clean_symbol = normalize_symbol(symbol)
        if not isinstance(side, str) or side.strip().upper() not in SIDES:
            raise ValueError(f"Invalid side: {printable(side)} (expected BUY or SELL)")
        clean_side = side.strip().upper()
        if not isinstance(order_type, str) or order_type.strip().lower() not in ORDER_TYPES:
            raise ValueError(f"Invalid order type: {printable(order_type)} (expected {', '.join(ORDER_TYPES)})")
        clean_type = order_type.strip().lower()
        clean_tif = _time_in_force(time_in_force)
        clean_qty, clean_notional = _quantity(qty, notional, clean_type)
        clean_limit = _price(limit_price, "limit_price", clean_type in (ORDER_LIMIT, ORDER_STOP_LIMIT), clean_type)
        clean_stop = _price(stop_price, "stop_price", clean_type in (ORDER_STOP, ORDER_STOP_LIMIT), clean_type)
        clean_trail, clean_percent = _trail(trail_price, trail_percent, clean_type)
        clean_coid = validate_client_order_id(client_order_id)
    except (ValueError, AmountError) as exc:
        # Rendered only on rejection: the accepted path is a hot one (batches of hundreds of orders).
        shown_symbol = clean_symbol or printable(symbol)
        return InvalidOrder(
            shown_symbol, printable(side, 8).upper(), printable(order_type, 16).lower(), str(exc),
            storable_amount(qty), storable_amount(limit_price), printable(time_in_force, 8).lower(),
        )
    return OrderRequest(
        clean_symbol, clean_side, clean_type, clean_qty, clean_limit, clean_coid,
        clean_tif, clean_stop, clean_trail, clean_percent, clean_notional,
    )


def _time_in_force(value: object) -> str:
    clean = value.strip().lower() if isinstance(value, str) else None
    if clean in AUCTION_TIMES_IN_FORCE:
        raise ValueError(f"time_in_force {clean} is not supported: the ledger has no opening or closing auction "
                         f"(use one of {', '.join(TIMES_IN_FORCE)})")
    if clean not in TIMES_IN_FORCE:
        raise ValueError(f"Invalid time_in_force: {printable(value)} (expected {', '.join(TIMES_IN_FORCE)})")
    return clean


def _quantity(qty: object, notional: object, order_type: str) -> tuple[Decimal | None, Decimal | None]:
    """(qty, None) or, for a notional market order, (None, notional)."""
    if notional is not None:
        if qty is not None:
            raise ValueError("give qty or notional, not both")
        if order_type != ORDER_MARKET:
            raise ValueError("notional (a cash amount) is for market orders only; give a qty")
        amount = exact(to_decimal(notional, "notional"), "notional")
        if amount <= 0:
            raise ValueError(f"Invalid notional: {plain(notional)} (must be > 0)")
        return None, amount
    clean_qty = exact(to_decimal(qty, "quantity"), "quantity")
    if clean_qty <= 0:
        raise ValueError(f"Invalid quantity: {plain(qty)} (must be > 0)")
    return clean_qty, None


def _price(value: object, name: str, wanted: bool, order_type: str) -> Decimal | None:
    if not wanted:
        if value is not None:
            raise ValueError(f"{name} given for a {order_type} order")
        return None
    if value is None:
        raise ValueError(f"a {order_type} order needs a {name}")
    price = exact(to_decimal(value, name.replace("_", " ")), name.replace("_", " "))
    if price <= 0:
        raise ValueError(f"Invalid {name.replace('_', ' ')}: {plain(value)} (must be > 0)")
    return price


def _trail(trail_price: object, trail_percent: object, order_type: str) -> tuple[Decimal | None, Decimal | None]:
    if order_type != ORDER_TRAILING_STOP:
        if trail_price is not None or trail_percent is not None:
            raise ValueError(f"trail_price/trail_percent given for a {order_type} order")
        return None, None
    if (trail_price is None) == (trail_percent is None):
        raise ValueError("a trailing_stop order needs exactly one of trail_price or trail_percent")
    if trail_price is not None:
        return _price(trail_price, "trail_price", True, order_type), None
    percent = exact(to_decimal(trail_percent, "trail percent"), "trail percent")
    if not 0 < percent < 100:
        raise ValueError(f"Invalid trail percent: {plain(trail_percent)} (must be between 0 and 100)")
    return None, percent


def storable_amount(value: object) -> Decimal | None:
    """``value`` as the exact Decimal the ledger can store (a number with at most six decimals, below the
    10^12 bound), else None: how a rejected order keeps what was submitted."""
    try:
        return exact(to_decimal(value, "amount"), "amount")
    except AmountError:
        return None


def validate_client_order_id(client_order_id: object) -> str | None:
    if client_order_id is None:
        return None
    if not isinstance(client_order_id, str) or not _CLIENT_ORDER_ID_PATTERN.match(client_order_id):
        raise ValueError(
            f"client_order_id must be 1-{CLIENT_ORDER_ID_MAX} printable ASCII characters without spaces, "
            f"got {printable(client_order_id)}"
        )
    return client_order_id


DEFAULT_QUOTE_SIZE = 100  # the displayed size of a quote given without sizes
_DEFAULT_SIZE = Decimal(DEFAULT_QUOTE_SIZE)  # validated once (a batch of bars' quotes passes it for every symbol)


class QuoteInput(NamedTuple):
    """A checked quote; a named tuple, in the order ``Store.upsert_quotes`` takes (cheap to build per symbol)."""

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal


def validate_quote(symbol: object, bid: object, ask: object, bid_size: object, ask_size: object) -> QuoteInput:
    """Prices and sizes exact to six decimal places, like quantities and limits: more is refused, never
    rounded (market-data sources round their float noise themselves before calling ``set_quote``)."""
    try:
        clean_symbol = normalize_symbol(symbol)
        clean_bid = exact(to_decimal(bid, "bid"), "bid")
        clean_ask = exact(to_decimal(ask, "ask"), "ask")
        sizes = [
            _DEFAULT_SIZE if size is DEFAULT_QUOTE_SIZE else exact(to_decimal(size, name), name)
            for size, name in ((bid_size, "bid_size"), (ask_size, "ask_size"))
        ]
    except (ValueError, AmountError) as exc:
        raise InvalidQuoteError(f"invalid quote for {printable(symbol)}: {exc}") from exc
    if clean_bid <= 0 or clean_ask <= 0:
        raise InvalidQuoteError(f"invalid quote for {clean_symbol}: prices must be > 0 (bid={plain(bid)}, ask={plain(ask)})")
    if clean_bid > clean_ask:
        raise InvalidQuoteError(f"invalid quote for {clean_symbol}: bid {clean_bid} is above ask {clean_ask}")
    if min(sizes) < 0:
        raise InvalidQuoteError(f"invalid quote for {clean_symbol}: sizes must be >= 0")
    if len(_CHECKED_SYMBOLS) < _CHECKED_SYMBOLS_MAX and type(symbol) is str:
        _CHECKED_SYMBOLS[symbol] = clean_symbol
    return QuoteInput(clean_symbol, clean_bid, clean_ask, sizes[0], sizes[1])


# Symbols as given -> as normalized, for symbols a quote has carried before (bounded: a feed has few).
_CHECKED_SYMBOLS: dict[str, str] = {}
_CHECKED_SYMBOLS_MAX = 100_000


def _quick_quote(symbol: object, values: object) -> QuoteInput | None:
    """The common quote, ``(bid, ask)`` of floats or Decimals under a symbol seen before, checked as
    :func:`validate_quote` checks it but without its general machinery (a bar of quotes is hundreds of them);
    None for anything else, which then takes ``validate_quote`` (and its error messages)."""
    if type(values) is not tuple or len(values) != 2 or type(symbol) is not str:
        return None
    clean = _CHECKED_SYMBOLS.get(symbol)
    if clean is None:
        return None
    bid, ask = _quick_price(values[0]), _quick_price(values[1])
    if bid is None or ask is None or bid > ask:
        return None
    return QuoteInput(clean, bid, ask, _DEFAULT_SIZE, _DEFAULT_SIZE)


def _quick_price(value: object) -> Decimal | None:
    """A positive price below 10^9 with at most six decimals (a float's shortest repr, as ``to_decimal`` reads
    it), at storage scale; None for anything else.

    For 0 < v < 10^9, ``round(v * 10^6) / 10^6 == v`` holds exactly when ``repr(v)`` has at most six decimals:
    v * 10^6 is within 0.2 of that integer (far below 2^53), and the division is correctly rounded.
    """
    kind = type(value)
    if kind is float:
        if not 0.0 < value < 1e9:  # type: ignore[operator]
            return None
        scaled = round(value * 1e6)  # type: ignore[operator]
        return Decimal(scaled).scaleb(-SCALE_DIGITS) if scaled / 1e6 == value else None
    if kind is Decimal:
        if not value.is_finite() or not 0 < value < MAX_AMOUNT:  # type: ignore[union-attr,operator]
            return None
        price = value.quantize(UNIT)  # type: ignore[union-attr]
        return price if price == value else None
    return None


def validate_quotes(quotes: object) -> list[QuoteInput]:
    """A batch of quotes, ``{symbol: (bid, ask)}``, ``(bid, ask, bid_size, ask_size)`` or a mapping with keys
    ``bid``, ``ask`` and optionally ``bid_size``, ``ask_size`` (sizes default to 100), each checked as
    ``validate_quote`` checks one; the first invalid one raises InvalidQuoteError naming its symbol."""
    if not isinstance(quotes, Mapping):
        raise InvalidQuoteError(f"quotes must be a mapping of symbol to quote, got {type(quotes).__name__}")
    checked: dict[str, QuoteInput] = {}
    for symbol, values in quotes.items():
        quick = _quick_quote(symbol, values)
        if quick is not None:
            if quick.symbol in checked:
                raise InvalidQuoteError(f"invalid quotes: {quick.symbol} is given twice")
            checked[quick.symbol] = quick
            continue
        if isinstance(values, Mapping) and {"bid", "ask"} <= values.keys() <= _QUOTE_KEYS:
            fields = [values["bid"], values["ask"], values.get("bid_size", DEFAULT_QUOTE_SIZE),
                      values.get("ask_size", DEFAULT_QUOTE_SIZE)]
        elif isinstance(values, (tuple, list)) and len(values) in (2, 4):
            fields = [*values, DEFAULT_QUOTE_SIZE, DEFAULT_QUOTE_SIZE][:4]
        else:
            raise InvalidQuoteError(
                f"invalid quote for {printable(symbol)}: expected (bid, ask), (bid, ask, bid_size, ask_size) or a "
                f"mapping with bid, ask and optionally bid_size, ask_size; got {printable(values)}"
            )
        quote = validate_quote(symbol, *fields)
        if quote.symbol in checked:
            raise InvalidQuoteError(f"invalid quotes: {quote.symbol} is given twice")
        checked[quote.symbol] = quote
    return list(checked.values())


_QUOTE_KEYS = frozenset({"bid", "ask", "bid_size", "ask_size"})


def require_utc(value: object, what: str) -> datetime:
    """A UTC datetime; naive, non-UTC or non-datetime values are a ValueError (no silent conversion)."""
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {printable(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    if value.utcoffset() != timedelta(0):
        raise ValueError(f"{what} must be in UTC (offset +00:00), got {value.isoformat()}; convert it first")
    return value.astimezone(UTC)


def ledger_id(value: object) -> str | None:
    """An order or run id as the ledger makes them (32 lower-case hex digits), else None.

    Anything else cannot name a row, so callers answer "not found" without sending it to the database
    (where a NUL byte, say, would be a driver error on PostgreSQL).
    """
    return value if isinstance(value, str) and _LEDGER_ID_PATTERN.match(value) else None


def validate_bps(value: object, what: str) -> Decimal:
    """Slippage or fee in basis points: finite, 0 <= bps < 10000, at most six decimal places."""
    try:
        bps = exact(to_decimal(value, what), what)
    except AmountError as exc:
        raise ValueError(str(exc)) from exc
    if bps < 0 or bps >= 10_000:
        raise ValueError(f"{what} must be between 0 and 10000 basis points, got {plain(value)}")
    return bps


def validate_cash(value: object, what: str = "initial_cash") -> Decimal:
    try:
        cash = exact(to_decimal(value, what), what)
    except AmountError as exc:
        raise ValueError(str(exc)) from exc
    if cash < 0:
        raise ValueError(f"{what} must be >= 0, got {plain(value)}")
    return cash


def validate_cash_amount(value: object, what: str) -> Decimal:
    """A deposit or withdrawal: a positive number, exact to six decimals, below the 10^12 bound."""
    amount = validate_cash(value, what)
    if amount == 0:
        raise ValueError(f"{what} must be > 0, got {plain(value)}")
    return amount
