"""The service's app factory: routers, error handlers, the edge middleware, and ``/healthz``.

``create_app()`` opens the ledger named by ``db_url`` (default: ``LEDGER_DATABASE_URL``, as everywhere), brings its
schema to head, and serves it. ``paper-ledger serve`` runs it on uvicorn (``factory=True``, one per worker).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ledger import web
from ledger.db.engine import get_engine, resolve_db_url
from ledger.db.migrate import current_revision, ensure_schema, head_revision
from ledger.service import errors
from ledger.service.routers import account, data, feeds, market, orders, positions, stream
from ledger.service.state import ServiceLedger
from ledger.service.wire import ErrorBody

MAX_BODY_BYTES = 1 << 20
_SLASHES = re.compile(r"/{2,}")


class EdgeMiddleware:
    """Plain ASGI at the edge: ``//`` in a path is one ``/`` (alpaca-py's ``url_override`` with a trailing slash
    sends ``//v2/...``), and a request body over ``max_body`` bytes is answered 413 before any handler runs."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope["path"]:
            path = _SLASHES.sub("/", scope["path"])
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._too_large(send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": bytes(body), "more_body": False}], receive), send)

    async def _too_large(self, send: Any) -> None:
        response = errors.error_response(413, errors.TOO_LARGE, f"request body is over {self.max_body} bytes")
        await response({"type": "http"}, _never, send)


async def _never() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    pending = list(messages)

    async def replayed() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replayed


SESSION_SECRET_VARIABLE = "LEDGER_WEB_SESSION_SECRET"


def create_app(db_url: str | None = None) -> FastAPI:
    """The service over the ledger at ``db_url`` (schema created or migrated to head first), with the dashboard
    under ``/ui``. Its sessions are signed with the hex secret in LEDGER_WEB_SESSION_SECRET (``paper-ledger serve``
    makes one per start, shared by its workers), else with a secret of this process."""
    url = resolve_db_url(db_url)
    ensure_schema(get_engine(url))
    ledger = ServiceLedger(url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(ledger.close)

    app = FastAPI(
        title="paper-ledger", version="1", lifespan=lifespan, redirect_slashes=False, docs_url=None,
        redoc_url=None,
        description="Alpaca Trading API v2 over a paper-trading SQL ledger. Authenticate with APCA-API-KEY-ID and "
                    "APCA-API-SECRET-KEY (or Basic/Bearer key:secret). Errors: {code, message}.",
    )
    app.state.ledger = ledger
    errors.install(app)
    for module in (account, orders, positions, market, data, feeds, stream):
        app.include_router(module.router)

    web.install(app, ledger, _session_secret())
    app.add_middleware(EdgeMiddleware)

    @app.get("/healthz", responses={503: {"model": ErrorBody}})
    def healthz() -> JSONResponse:
        with ledger.reading() as conn:
            revision = current_revision(conn)
        if revision != head_revision():
            return errors.error_response(503, errors.UNAVAILABLE, f"schema at {revision}, not {head_revision()}")
        return JSONResponse({"status": "ok", "revision": revision})

    return app


def _session_secret() -> bytes:
    configured = os.environ.get(SESSION_SECRET_VARIABLE, "")
    try:
        return bytes.fromhex(configured) if len(configured) >= 64 else secrets.token_bytes(32)
    except ValueError:
        return secrets.token_bytes(32)
