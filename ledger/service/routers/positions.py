"""``/v2/positions``: open positions, one by symbol, and closing them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from ledger.queries import position_rows
from ledger.service import errors
from ledger.service.auth import Caller, caller
from ledger.service.routers import ERRORS
from ledger.service.wire import ClosePositionResult, Order, Position, render_order, render_position

router = APIRouter(responses=ERRORS)
CallerDep = Annotated[Caller, Depends(caller)]


@router.get("/v2/positions", response_model=list[Position])
def list_positions(who: CallerDep) -> list[Position]:
    with who.ledger.reading() as conn:
        return [render_position(row) for row in position_rows(conn, who.account_id)]


def _position_not_found() -> errors.ApiError:
    return errors.not_found("position does not exist")


@router.get("/v2/positions/{symbol}", response_model=Position)
def get_position(symbol: str, who: CallerDep) -> Position:
    wanted = symbol.strip().upper()
    with who.ledger.reading() as conn:
        rows = [row for row in position_rows(conn, who.account_id) if row.symbol == wanted]
    if not rows:
        raise _position_not_found()
    return render_position(rows[0])


@router.delete("/v2/positions/{symbol}", response_model=Order)
def close_position(
    symbol: str,
    who: CallerDep,
    qty: Annotated[Decimal | None, Query(gt=0, allow_inf_nan=False)] = None,
    percentage: Annotated[Decimal | None, Query(gt=0, le=100, allow_inf_nan=False)] = None,
) -> Order:
    if qty is not None and percentage is not None:
        raise errors.bad_request("give at most one of qty and percentage")
    closing = who.broker.close_position(symbol.strip().upper(), qty=qty, percentage=percentage)  # type: ignore[attr-defined]
    return _exact_order(who, closing)


def _exact_order(who: Caller, order: dict[str, Any]) -> Order:
    """The order the broker returned (floats), rendered from the ledger's exact row."""
    return render_order(who.ledger.exact_order(who.account_id, order["order_id"]))  # type: ignore[arg-type]


@router.delete("/v2/positions", status_code=207, response_model=list[ClosePositionResult],
               responses={207: {"model": list[ClosePositionResult], "description": "one result per position"}})
def close_all_positions(who: CallerDep, cancel_orders: bool = False) -> JSONResponse:
    closing = [_exact_order(who, order) for order in who.broker.close_all_positions(cancel_orders=cancel_orders)]  # type: ignore[attr-defined]
    results = [
        ClosePositionResult(symbol=order.symbol, status=200, order_id=order.id, body=order.model_dump()).model_dump()
        for order in closing
    ]
    return JSONResponse(results, status_code=207)
