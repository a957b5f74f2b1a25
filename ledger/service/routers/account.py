"""``/v2/account``: the account, its configuration, activities and portfolio history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ledger.db.models import CashMovement
from ledger.queries import account_margin, account_row, activities_stmt
from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import (
    Account,
    AccountConfiguration,
    Activity,
    PortfolioHistory,
    account_uuid,
    decimal_text,
    order_uuid,
    time_text,
)

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]


@router.get("/v2/account", response_model=Account)
def get_account(who: CallerDep) -> Account:
    with who.ledger.reading() as conn:
        row = account_row(conn, who.account_id)
        margin = account_margin(conn, who.account_id)
    equity = decimal_text(margin.equity)
    power = decimal_text(margin.buying_power)
    return Account(
        id=str(account_uuid(row.name)), account_number=f"PL{row.id:08d}",
        buying_power=power, regt_buying_power=power, non_marginable_buying_power=decimal_text(  # type: ignore[arg-type]
            row.cash_e6 - row.reserved_cash_e6 if row.cash_e6 > row.reserved_cash_e6 else 0),
        cash=decimal_text(row.cash_e6), portfolio_value=equity, equity=equity, last_equity=equity,  # type: ignore[arg-type]
        long_market_value=decimal_text(margin.long_value), short_market_value=decimal_text(margin.short_value),  # type: ignore[arg-type]
        multiplier=decimal_text(margin.multiplier), shorting_enabled=row.shorting_enabled,  # type: ignore[arg-type]
        initial_margin=decimal_text(margin.initial_margin), maintenance_margin=decimal_text(margin.maintenance_margin),  # type: ignore[arg-type]
        last_maintenance_margin=decimal_text(margin.maintenance_margin),  # type: ignore[arg-type]
        created_at=time_text(row.created_at),
    )


def _configuration(settings: dict) -> AccountConfiguration:  # type: ignore[type-arg]
    return AccountConfiguration(
        max_margin_multiplier=decimal_text(settings.get("max_margin_multiplier", 1)),  # type: ignore[arg-type]
        no_shorting=not settings.get("shorting_enabled", False),
    )


@router.get("/v2/account/configurations", response_model=AccountConfiguration)
def get_configurations(who: CallerDep) -> AccountConfiguration:
    return _configuration(who.broker.settings())  # type: ignore[attr-defined]


class ConfigurationIn(BaseModel):
    no_shorting: bool | None = None
    max_margin_multiplier: Decimal | None = Field(None, ge=1, le=4, allow_inf_nan=False)
    fractional_trading: bool | None = None
    suspend_trade: bool | None = None
    trade_confirm_email: str | None = None
    dtbp_check: str | None = None
    pdt_check: str | None = None
    ptp_no_exception_entry: bool | None = None


@router.patch("/v2/account/configurations", response_model=AccountConfiguration)
def patch_configurations(body: ConfigurationIn, who: CallerDep) -> AccountConfiguration:
    if body.fractional_trading is False or body.suspend_trade:
        raise errors.unprocessable("fractional_trading cannot be turned off and suspend_trade is not supported")
    settings = who.broker.configure(  # type: ignore[attr-defined]
        shorting_enabled=None if body.no_shorting is None else not body.no_shorting,
        max_margin_multiplier=body.max_margin_multiplier,
    )
    return _configuration(settings)


ACTIVITY_TYPES = {"initial": "CSD", "deposit": "CSD", "withdrawal": "CSW", "fill": "FILL"}
KNOWN_ACTIVITY_TYPES = ("FILL", "CSD", "CSW")


def _activity_id(at: datetime, movement_id: int) -> str:
    return f"{at.astimezone(UTC):%Y%m%d%H%M%S}{at.microsecond // 1000:03d}::{movement_id}"


def _token_movement(page_token: str) -> int:
    try:
        return int(page_token.rpartition("::")[2])
    except ValueError:
        raise errors.bad_request(f"invalid page_token {page_token[:40]!r}: pass the id of the last activity") from None


def _activity(row, account_id: str) -> Activity:  # type: ignore[no-untyped-def]
    kind = ACTIVITY_TYPES[row.kind]
    common = {"id": _activity_id(row.at, row.movement_id), "account_id": account_id, "activity_type": kind}
    if kind != "FILL":
        return Activity(**common, date=row.at.astimezone(UTC).date().isoformat(), net_amount=decimal_text(row.amount_e6),
                        description="initial cash" if row.kind == "initial" else row.kind, status="executed")
    filled_all = row.cum_qty_e6 == row.order_qty_e6
    return Activity(
        **common, transaction_time=time_text(row.at), type="fill" if filled_all else "partial_fill",
        price=decimal_text(row.price_e6), qty=decimal_text(row.qty_e6), side=row.side.lower(), symbol=row.symbol,
        leaves_qty=decimal_text(row.order_qty_e6 - row.cum_qty_e6), cum_qty=decimal_text(row.cum_qty_e6),
        order_id=order_uuid(row.order_id), order_status=row.order_status,
    )


def _activities(who: Caller, types: list[str], after: datetime | None, until: datetime | None, day: date | None,
                direction: str, page_size: int, page_token: str | None) -> list[Activity]:
    unknown = [name for name in types if name not in KNOWN_ACTIVITY_TYPES]
    if unknown:
        return []  # Alpaca knows many more activity types; the ledger has none of them
    stmt = activities_stmt(who.account_id)
    if after is not None:
        stmt = stmt.where(cash_movements.c.at > _utc(after))
    if until is not None:
        stmt = stmt.where(cash_movements.c.at < _utc(until))
    if day is not None:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        stmt = stmt.where(cash_movements.c.at >= start, cash_movements.c.at < start + timedelta(days=1))
    if page_token is not None:
        last = _token_movement(page_token)
        stmt = stmt.where(cash_movements.c.id < last if direction == "desc" else cash_movements.c.id > last)
    kinds = [kind for kind, name in ACTIVITY_TYPES.items() if not types or name in types]
    stmt = stmt.where(cash_movements.c.kind.in_(kinds))
    order = cash_movements.c.id.desc() if direction == "desc" else cash_movements.c.id
    with who.ledger.reading() as conn:
        rows = list(conn.execute(stmt.order_by(order).limit(page_size)))
    account_id = str(account_uuid(who.owner.account))
    return [_activity(row, account_id) for row in rows]


cash_movements = CashMovement.__table__


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


Direction = Literal["asc", "desc"]


@router.get("/v2/account/activities", response_model=list[Activity], response_model_exclude_none=True)
def get_activities(
    who: CallerDep,
    activity_types: str | None = None,
    after: datetime | None = None,
    until: datetime | None = None,
    date: date | None = None,  # noqa: A002 - Alpaca's parameter name
    direction: Direction = "desc",
    page_size: Annotated[int, Query(ge=1, le=100)] = 100,
    page_token: str | None = None,
) -> list[Activity]:
    types = [name.strip().upper() for name in (activity_types or "").split(",") if name.strip()]
    return _activities(who, types, after, until, date, direction, page_size, page_token)


@router.get("/v2/account/activities/{activity_type}", response_model=list[Activity], response_model_exclude_none=True)
def get_activities_of_type(
    activity_type: str,
    who: CallerDep,
    after: datetime | None = None,
    until: datetime | None = None,
    date: date | None = None,  # noqa: A002
    direction: Direction = "desc",
    page_size: Annotated[int, Query(ge=1, le=100)] = 100,
    page_token: str | None = None,
) -> list[Activity]:
    return _activities(who, [activity_type.upper()], after, until, date, direction, page_size, page_token)


TIMEFRAMES = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}
PERIOD_UNITS = {"D": 1, "W": 7, "M": 30, "A": 365}


def _period_days(period: str) -> int:
    number, unit = period[:-1], period[-1:].upper()
    if not number.isdigit() or unit not in PERIOD_UNITS or int(number) < 1:
        raise errors.bad_request(f"invalid period {period[:20]!r}: use e.g. 1D, 2W, 1M, 1A")
    return int(number) * PERIOD_UNITS[unit]


@router.get("/v2/account/portfolio/history", response_model=PortfolioHistory)
def get_portfolio_history(
    who: CallerDep,
    period: str | None = None,
    timeframe: Literal["1Min", "5Min", "15Min", "1H", "1D"] = "1D",
    start: datetime | None = None,
    end: datetime | None = None,
    date_end: date | None = None,
    extended_hours: bool | None = None,
    intraday_reporting: str | None = None,
    pnl_reset: str | None = None,
    cashflow_types: str | None = None,
) -> PortfolioHistory:
    from ledger.queries import equity_marks_stmt

    until = _utc(end) if end is not None else (
        datetime(date_end.year, date_end.month, date_end.day, tzinfo=UTC) + timedelta(days=1) if date_end else datetime.now(UTC))
    since = _utc(start) if start is not None else until - timedelta(days=_period_days(period or "1M"))
    with who.ledger.reading() as conn:
        marks = list(conn.execute(equity_marks_stmt(who.account_id, since, until)))
    step = TIMEFRAMES[timeframe]
    last_in_bucket: dict[int, tuple[int, Decimal]] = {}
    for mark in marks:
        stamp = int(mark.at.timestamp())
        last_in_bucket[stamp // step] = (stamp - stamp % step, mark.equity_e6)
    points = [last_in_bucket[bucket] for bucket in sorted(last_in_bucket)]
    base = points[0][1] if points else None
    return PortfolioHistory(
        timestamp=[stamp for stamp, _ in points],
        equity=[float(equity) for _, equity in points],
        profit_loss=[float(equity - base) for _, equity in points],  # type: ignore[operator]
        profit_loss_pct=[float((equity - base) / base) if base else None for _, equity in points],  # type: ignore[operator]
        base_value=None if base is None else float(base),
        timeframe=timeframe,
    )
