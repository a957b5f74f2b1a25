"""The Alpaca wire format: response models (the OpenAPI contract) and the functions that render ledger values.

What alpaca-py 0.44's pydantic models demand (``alpaca/trading/models.py``) decides each shape: ids are UUIDs,
money and quantities decimal strings exact from the ledger, times RFC 3339 UTC, enum values in Alpaca's
spelling, and the superset of fields older SDK versions required. Ledger order ids (32 hex digits) are
rendered hyphenated; both forms are accepted on the way in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.money import round_amount

# Stable UUIDs for things the ledger names by text: accounts and assets (symbols).
_ACCOUNT_NAMESPACE = uuid.UUID("6f1d1f4e-3c55-5b8e-9d1e-7a0c3f2b9a10")
_ASSET_NAMESPACE = uuid.UUID("0b7e55a2-8c47-5f1c-a3a4-52f1d7b6c0de")
ASSET_CLASS = "us_equity"
ASSET_EXCHANGE = "OTC"  # the ledger does not know a symbol's exchange; OTC is a long-standing AssetExchange value
SIDES = {"BUY": "buy", "SELL": "sell"}
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIMES_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")


def decimal_text(value: Decimal | float | int | None) -> str | None:
    """An exact amount as plain decimal text (``"150.1"``, ``"100"``); None stays None.

    Floats (the Broker protocol's dicts) go through ``repr``, exact for the ledger's six-decimal values up to
    15 significant digits.
    """
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def time_text(value: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def account_uuid(name: str) -> uuid.UUID:
    return uuid.uuid5(_ACCOUNT_NAMESPACE, name)


def asset_uuid(symbol: str) -> uuid.UUID:
    return uuid.uuid5(_ASSET_NAMESPACE, symbol)


def order_uuid(order_id: str | None) -> str | None:
    """The ledger's 32-hex order id as a hyphenated UUID."""
    return None if order_id is None else str(uuid.UUID(hex=order_id))


def ledger_order_id(text: str) -> str | None:
    """A path's order id (hyphenated or 32 hex digits, any case) as the ledger's form; None when malformed."""
    try:
        return uuid.UUID(hex=text.strip()).hex
    except ValueError:
        return None


class ErrorBody(BaseModel):
    code: int
    message: str
    model_config = ConfigDict(extra="allow")


class Order(BaseModel):
    id: str
    client_order_id: str
    created_at: str
    updated_at: str
    submitted_at: str
    filled_at: str | None = None
    expired_at: str | None = None
    expires_at: str | None = None
    canceled_at: str | None = None
    failed_at: str | None = None
    replaced_at: str | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    asset_id: str
    symbol: str
    asset_class: str = ASSET_CLASS
    notional: str | None = None
    qty: str | None = None
    filled_qty: str
    filled_avg_price: str | None = None
    order_class: str = "simple"
    order_type: str | None = None
    type: str | None = None
    side: str | None = None
    time_in_force: str
    limit_price: str | None = None
    stop_price: str | None = None
    status: str
    extended_hours: bool = False
    legs: list[Any] | None = None
    trail_percent: str | None = None
    trail_price: str | None = None
    hwm: str | None = None
    position_intent: str | None = None


def render_order(order: dict[str, Any]) -> Order:
    """A library order dict as an Alpaca Order (a rejected order's invalid side or type is rendered as null)."""
    submitted = order.get("submitted_at") or order["timestamp"]
    order_type = order.get("order_type")
    order_type = order_type if order_type in ORDER_TYPES else None
    time_in_force = order.get("time_in_force") or "gtc"
    return Order(
        id=order_uuid(order["order_id"]),  # type: ignore[arg-type]
        client_order_id=order.get("client_order_id") or order_uuid(order["order_id"]),  # type: ignore[arg-type]
        created_at=time_text(submitted),  # type: ignore[arg-type]
        updated_at=time_text(order.get("updated_at") or submitted),  # type: ignore[arg-type]
        submitted_at=time_text(submitted),  # type: ignore[arg-type]
        filled_at=time_text(order.get("filled_at")),
        expired_at=time_text(order.get("expired_at")),
        expires_at=time_text(order.get("expires_at")),
        canceled_at=time_text(order.get("canceled_at")),
        failed_at=time_text(order.get("updated_at")) if order.get("status") == "rejected" else None,
        replaced_at=time_text(order.get("replaced_at")),
        replaced_by=order_uuid(order.get("replaced_by")),
        replaces=order_uuid(order.get("replaces")),
        asset_id=str(asset_uuid(order["symbol"])),
        symbol=order["symbol"],
        notional=decimal_text(order.get("requested_notional")),
        qty=decimal_text(order.get("qty")),
        filled_qty=decimal_text(order.get("filled_qty")) or "0",
        filled_avg_price=decimal_text(order.get("filled_avg_price")),
        order_type=order_type,
        type=order_type,
        side=SIDES.get(str(order.get("side"))),
        time_in_force=time_in_force if time_in_force in TIMES_IN_FORCE else "gtc",
        limit_price=decimal_text(order.get("limit_price")),
        stop_price=decimal_text(order.get("stop_price")),
        status=order["status"],
        trail_percent=decimal_text(order.get("trail_percent")),
        trail_price=decimal_text(order.get("trail_price")),
        hwm=decimal_text(order.get("hwm")),
    )


class Account(BaseModel):
    id: str
    account_number: str
    status: str = "ACTIVE"
    crypto_status: str | None = None
    currency: str = "USD"
    buying_power: str
    regt_buying_power: str
    daytrading_buying_power: str = "0"
    non_marginable_buying_power: str
    options_buying_power: str = "0"
    cash: str
    accrued_fees: str = "0"
    pending_transfer_in: str = "0"
    pending_transfer_out: str = "0"
    portfolio_value: str
    pattern_day_trader: bool = False
    trading_blocked: bool = False
    transfers_blocked: bool = False
    account_blocked: bool = False
    created_at: str
    trade_suspended_by_user: bool = False
    multiplier: str = "1"
    shorting_enabled: bool = False
    equity: str
    last_equity: str
    long_market_value: str
    short_market_value: str
    initial_margin: str = "0"
    maintenance_margin: str = "0"
    last_maintenance_margin: str = "0"
    sma: str = "0"
    daytrade_count: int = 0
    options_approved_level: int = 0
    options_trading_level: int = 0


class AccountConfiguration(BaseModel):
    dtbp_check: str = "entry"
    fractional_trading: bool = True
    max_margin_multiplier: str
    no_shorting: bool
    pdt_check: str = "entry"
    suspend_trade: bool = False
    trade_confirm_email: str = "none"
    ptp_no_exception_entry: bool = False
    max_options_trading_level: int | None = None


class Position(BaseModel):
    asset_id: str
    symbol: str
    exchange: str = ASSET_EXCHANGE
    asset_class: str = ASSET_CLASS
    asset_marginable: bool = False
    avg_entry_price: str
    qty: str
    qty_available: str
    side: str
    market_value: str | None = None
    cost_basis: str
    unrealized_pl: str | None = None
    unrealized_plpc: str | None = None
    unrealized_intraday_pl: str | None = None
    unrealized_intraday_plpc: str | None = None
    current_price: str | None = None
    lastday_price: str | None = None
    change_today: str | None = None


def render_position(row: Any) -> Position:
    """A ``queries.positions_stmt`` row: marked at the mid of the account's last quote (none: no market value)."""
    qty, cost = row.qty_e6, row.cost_basis_e6
    mid = None if row.bid_e6 is None or row.ask_e6 is None else (row.bid_e6 + row.ask_e6) / 2
    market_value = None if mid is None else round_amount(qty * mid)
    unrealized = None if market_value is None else market_value - cost
    return Position(
        asset_id=str(asset_uuid(row.symbol)),
        symbol=row.symbol,
        avg_entry_price=decimal_text(round_amount(cost / qty)) if qty else "0",  # type: ignore[arg-type]
        qty=decimal_text(qty),  # type: ignore[arg-type]
        qty_available=decimal_text(qty - row.reserved_qty_e6),  # type: ignore[arg-type]
        side="long" if qty > 0 else "short",
        market_value=decimal_text(market_value),
        cost_basis=decimal_text(cost),  # type: ignore[arg-type]
        unrealized_pl=decimal_text(unrealized),
        unrealized_plpc=decimal_text(round_amount(unrealized / cost)) if unrealized is not None and cost else None,
        unrealized_intraday_pl=decimal_text(unrealized),
        unrealized_intraday_plpc=decimal_text(round_amount(unrealized / cost)) if unrealized is not None and cost else None,
        current_price=decimal_text(None if mid is None else round_amount(mid)),
        lastday_price=decimal_text(None if mid is None else round_amount(mid)),
        change_today="0",
    )


class Asset(BaseModel):
    id: str
    asset_class: str = Field(ASSET_CLASS, alias="class")
    exchange: str = ASSET_EXCHANGE
    symbol: str
    name: str
    status: str = "active"
    tradable: bool = True
    marginable: bool = False
    shortable: bool = False
    easy_to_borrow: bool = False
    fractionable: bool = True
    attributes: list[str] = []
    model_config = ConfigDict(populate_by_name=True)


def render_asset(symbol: str) -> dict[str, Any]:
    return Asset(id=str(asset_uuid(symbol)), symbol=symbol, name=symbol).model_dump(by_alias=True)


class Clock(BaseModel):
    timestamp: str
    is_open: bool
    next_open: str
    next_close: str


class CalendarDay(BaseModel):
    date: str
    open: str = Field(description="HH:MM, exchange local time")
    close: str = Field(description="HH:MM, exchange local time")
    session_open: str
    session_close: str
    settlement_date: str


class Activity(BaseModel):
    id: str
    account_id: str
    activity_type: str
    transaction_time: str | None = None
    type: str | None = None
    price: str | None = None
    qty: str | None = None
    side: str | None = None
    symbol: str | None = None
    leaves_qty: str | None = None
    cum_qty: str | None = None
    order_id: str | None = None
    order_status: str | None = None
    date: str | None = None
    net_amount: str | None = None
    description: str | None = None
    status: str | None = None


class PortfolioHistory(BaseModel):
    timestamp: list[int]
    equity: list[float | None]
    profit_loss: list[float | None]
    profit_loss_pct: list[float | None]
    base_value: float | None
    timeframe: str


class CancelResult(BaseModel):
    id: str
    status: int
    body: dict[str, Any] | None = None


class ClosePositionResult(BaseModel):
    symbol: str
    status: int
    order_id: str | None = None
    body: dict[str, Any]


class Quote(BaseModel):
    t: str
    bp: float
    bs: float
    ap: float
    as_: float = Field(alias="as")
    bx: str = ""
    ax: str = ""
    c: list[str] = []
    z: str = ""
    model_config = ConfigDict(populate_by_name=True)


def render_quote(row: Any) -> dict[str, Any]:
    """A ``quotes`` row in Alpaca's market-data shape (prices as JSON numbers, as Alpaca sends them)."""
    return Quote(t=time_text(row.quoted_at), bp=float(row.bid_e6), bs=float(row.bid_size_e6),  # type: ignore[arg-type]
                 ap=float(row.ask_e6), as_=float(row.ask_size_e6)).model_dump(by_alias=True)


class LatestQuotes(BaseModel):
    quotes: dict[str, Quote]


class LatestQuote(BaseModel):
    symbol: str
    quote: Quote


class Bar(BaseModel):
    t: str
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's key
    c: float
    v: float
    n: int | None = None
    vw: float | None = None


class Bars(BaseModel):
    bars: dict[str, list[Bar]]
    next_page_token: str | None = None


class QuoteIn(BaseModel):
    """One quote of a feed: ``POST /v1/ledger/quotes``."""

    symbol: str = Field(min_length=1, max_length=32)
    bid: Decimal = Field(gt=0, allow_inf_nan=False)
    ask: Decimal = Field(gt=0, allow_inf_nan=False)
    bid_size: Decimal = Field(Decimal(100), ge=0, allow_inf_nan=False)
    ask_size: Decimal = Field(Decimal(100), ge=0, allow_inf_nan=False)


class QuoteFeedResult(BaseModel):
    quotes: int
    fills: list[dict[str, Any]]
