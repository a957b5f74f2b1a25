"""One router per resource; ``ERRORS`` documents the error responses every authenticated route may give."""

from __future__ import annotations

from typing import Any

from ledger.service.wire import ErrorBody

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "missing or wrong credentials (code 40110000)"),
        (403, "insufficient buying power or quantity (code 40310000)"),
        (404, "not found, or another account's (code 40410000)"),
        (413, "request body too large"),
        (422, "invalid parameters (code 40010001) or unprocessable order (code 42210000)"),
        (503, "the ledger database is unavailable"),
    )
}
