"""``/v2/orders``: submit, list, get (by id or client order id), replace and cancel orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


from ledger.book.records import order_record
from ledger.queries import orders_stmt
from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import CancelResult, Order, ledger_order_id, render_order

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False)]
OPEN_STATUSES = frozenset({"new", "partially_filled", "accepted", "pending_new", "pending_cancel", "pending_replace"})


class OrderIn(BaseModel):
    """``POST /v2/orders``: numbers as JSON numbers or strings (alpaca-py sends floats)."""

    symbol: str = Field(min_length=1, max_length=32)
    qty: Amount | None = None
    notional: Amount | None = None
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "day"
    limit_price: Amount | None = None
    stop_price: Amount | None = None
    trail_price: Amount | None = None
    trail_percent: Amount | None = None
    extended_hours: bool | None = None
    client_order_id: str | None = Field(None, max_length=128)
    order_class: Literal["simple", ""] | None = None
    position_intent: str | None = None


class ReplaceIn(BaseModel):
    """``PATCH /v2/orders/{id}``: the replacement's changed parameters."""

    qty: Amount | None = None
    limit_price: Amount | None = None
    stop_price: Amount | None = None
    trail: Amount | None = None
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] | None = None
    client_order_id: str | None = Field(None, max_length=128)


def _order(who: Caller, order_id: str) -> dict[str, Any]:
    """The caller's order by the id in the path (either form), with exact amounts; another account's id is not
    found, like any."""
    ledger_id = ledger_order_id(order_id)
    order = None if ledger_id is None else who.ledger.exact_order(who.account_id, ledger_id)
    if order is None:
        raise errors.not_found("order not found")
    return order


def _orders(who: Caller) -> list[dict[str, Any]]:
    """The caller's orders of the current epoch, oldest first, with exact amounts."""
    with who.ledger.reading() as conn:
        return [order_record(row, exact=True) for row in conn.execute(orders_stmt(who.broker.account_id))]


@router.post("/v2/orders", response_model=Order)
def submit_order(body: OrderIn, who: CallerDep) -> Order:
    if body.extended_hours:
        raise errors.unprocessable("extended_hours orders are not supported by this ledger")
    if (body.qty is None) == (body.notional is None):
        raise errors.bad_request("give exactly one of qty and notional")
    # Keywords the library defaults are left out: the call then runs on any order engine that has the others.
    extra = {name: value for name, value in (
        ("time_in_force", body.time_in_force if body.time_in_force != "gtc" else None),
        ("stop_price", body.stop_price), ("trail_price", body.trail_price),
        ("trail_percent", body.trail_percent), ("notional", body.notional),
    ) if value is not None}
    placed = who.broker.submit_order(
        body.symbol, body.side, body.qty, body.type, body.limit_price,
        body.client_order_id or str(uuid.uuid4()), **extra,
    )
    return render_order(_order(who, placed["order_id"]))


@router.get("/v2/orders", response_model=list[Order])
def list_orders(
    who: CallerDep,
    status: Literal["open", "closed", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: datetime | None = None,
    until: datetime | None = None,
    direction: Literal["asc", "desc"] = "desc",
    nested: bool | None = None,
    side: Literal["buy", "sell"] | None = None,
    symbols: str | None = None,
) -> list[Order]:
    wanted = {symbol.strip().upper() for symbol in (symbols or "").split(",") if symbol.strip()}
    selected = []
    for order in _orders(who):
        submitted = order.get("submitted_at") or order["timestamp"]
        if status != "all" and (order["status"] in OPEN_STATUSES) != (status == "open"):
            continue
        if (after is not None and submitted <= _utc(after)) or (until is not None and submitted >= _utc(until)):
            continue
        if (side is not None and order["side"] != side.upper()) or (wanted and order["symbol"] not in wanted):
            continue
        selected.append(order)
    if direction == "desc":
        selected.reverse()
    return [render_order(order) for order in selected[:limit]]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get("/v2/orders:by_client_order_id", response_model=Order)
def get_order_by_client_order_id(who: CallerDep, client_order_id: str = Query(max_length=128)) -> Order:
    matching = [order for order in _orders(who) if order["client_order_id"] == client_order_id]
    live = [order for order in matching if order["status"] != "rejected"]
    if not matching:
        raise errors.not_found("order not found")
    return render_order((live or matching)[-1])


@router.get("/v2/orders/{order_id}", response_model=Order)
def get_order(order_id: str, who: CallerDep, nested: bool | None = None) -> Order:
    return render_order(_order(who, order_id))


@router.patch("/v2/orders/{order_id}", response_model=Order)
def replace_order(order_id: str, body: ReplaceIn, who: CallerDep) -> Order:
    order = _order(who, order_id)
    replacement = who.broker.replace_order(  # type: ignore[attr-defined]
        order["order_id"], qty=body.qty, limit_price=body.limit_price, stop_price=body.stop_price,
        trail=body.trail, time_in_force=body.time_in_force, client_order_id=body.client_order_id,
    )
    return render_order(_order(who, replacement["order_id"]))


@router.delete("/v2/orders/{order_id}", status_code=204, response_class=Response,
               responses={204: {"description": "canceled"}})
def cancel_order(order_id: str, who: CallerDep) -> Response:
    ledger_id = ledger_order_id(order_id)
    if ledger_id is None:
        raise errors.not_found("order not found")
    outcome = who.broker.cancel_order(ledger_id)
    if outcome["status"] != "canceled":
        raise errors.unprocessable(f"order is not cancelable: it is {outcome['status']}")
    return Response(status_code=204)


@router.delete("/v2/orders", status_code=207, response_model=list[CancelResult],
               responses={207: {"model": list[CancelResult], "description": "one result per canceled order"}})
def cancel_all_orders(who: CallerDep) -> JSONResponse:
    canceled = [_order(who, order["order_id"]) for order in who.broker.cancel_all_orders()]  # type: ignore[attr-defined]
    results = [CancelResult(id=str(uuid.UUID(hex=order["order_id"])), status=200,
                            body=render_order(order).model_dump()).model_dump() for order in canceled]
    return JSONResponse(results, status_code=207)



