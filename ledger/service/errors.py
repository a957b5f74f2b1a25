"""Every error the service answers, in one place: JSON ``{"code": <int>, "message": <str>}`` with Alpaca's codes.

Library errors are mapped here (not in the handlers), request validation errors become 422 with 40010001,
unknown routes 404, and anything unexpected a 500 whose body names no internals (the traceback goes to the
server's log only). No framework default body ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.exceptions import (
    BrokerError,
    ClientOrderIdConflictError,
    DatabaseError,
    InsufficientFundsError,
    LedgerError,
    OrderNotFoundError,
    OrderRejectedError,
    PositionNotFoundError,
    QuoteNotFoundError,
)

log = logging.getLogger("ledger.service")

BAD_REQUEST = 40010001
UNAUTHORIZED = 40110000
FORBIDDEN = 40310000
ADMIN_KEY_REFUSED = 40310001  # an admin key has no account: it signs in to the dashboard only
NOT_FOUND = 40410000
METHOD_NOT_ALLOWED = 40510000
TOO_LARGE = 41310000
UNPROCESSABLE = 42210000
INTERNAL = 50010000
UNAVAILABLE = 50310000

_HTTP_CODES = {400: BAD_REQUEST, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED,
               413: TOO_LARGE, 422: UNPROCESSABLE}


class ApiError(Exception):
    """An error answered as ``status`` with ``{"code", "message", **extra}``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, UNPROCESSABLE, message)


def bad_request(message: str) -> ApiError:
    """Alpaca answers malformed parameters with HTTP 422 and code 40010001."""
    return ApiError(422, BAD_REQUEST, message)


def error_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


def error_response(status: int, code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status)


def library_error(exc: Exception) -> ApiError:
    """The API error for an exception raised by the library."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, OrderNotFoundError):
        return not_found("order not found")
    if isinstance(exc, (QuoteNotFoundError, PositionNotFoundError)):
        return not_found(str(exc))
    if isinstance(exc, InsufficientFundsError):
        return ApiError(403, FORBIDDEN, "insufficient buying power: " + exc.reason, symbol=exc.symbol)
    if isinstance(exc, OrderRejectedError):
        if "insufficient" in exc.reason.lower():
            return ApiError(403, FORBIDDEN, "insufficient qty available for order: " + exc.reason, symbol=exc.symbol)
        return unprocessable(exc.reason)
    if isinstance(exc, ClientOrderIdConflictError):
        return bad_request(str(exc))
    if isinstance(exc, DatabaseError):
        log.error("database error: %s", exc)  # the detail names files and hosts: the log's, not the client's
        return ApiError(503, UNAVAILABLE, "the ledger database is unavailable; see the server's log")
    if isinstance(exc, (BrokerError, LedgerError, ValueError)):
        return unprocessable(str(exc))
    raise exc


def install(app: FastAPI) -> None:
    """Register the service's exception handlers on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(LedgerError)
    @app.exception_handler(ValueError)  # the library's "bad input" (e.g. a malformed symbol)
    async def _ledger_error(_request: Request, exc: Exception) -> JSONResponse:
        error = library_error(exc)
        return error_response(error.status, error.code, error.message, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
            problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
        return error_response(422, BAD_REQUEST, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = {404: "endpoint not found", 405: "method not allowed"}.get(status, str(exc.detail))
        return error_response(status, _HTTP_CODES.get(status, status * 100000 + 10000), message)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, INTERNAL, "internal server error")
