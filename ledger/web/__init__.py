"""The dashboard: server-rendered pages over the ledger on the service's app, under ``/ui``.

``install(app, ledger, secret)`` adds the pages (``pages.py``), the sign-in session (``session.py``) and the
static files shipped in ``static/`` (no CDN: the dashboard works offline). Pages read through
``ledger.queries`` and ``ledger.reports``; the one write, cancelling an order, goes through the same
``PaperBroker.cancel_order`` as ``DELETE /v2/orders/{id}``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ledger.service.state import ServiceLedger
from ledger.web import pages
from ledger.web.session import Sessions, SignInRequired

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI, ledger: ServiceLedger, secret: bytes) -> None:
    """Serve the dashboard on ``app`` under ``/ui``; sessions are signed with ``secret``."""
    app.state.sessions = Sessions(secret)
    app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(SignInRequired, pages.sign_in_redirect)
    app.add_exception_handler(pages.PageNotFound, pages.not_found_page)
