"""The dashboard's routes: sign-in, accounts, account, fills, orders, one order, cancel, and the live version.

Each handler reads through ``ledger.queries`` / ``ledger.reports`` in one read transaction and hands plain values
to a template; no SQL and no trading rule lives here. An account's key sees only its own account: any other
account or order answers 404, like one that does not exist. An admin key sees every account (and cancels through
the same use case, on the order's account).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ledger import queries
from ledger.book.keys import AdminKey, KeyOwner, authenticate
from ledger.book.validation import ledger_id, normalize_symbol
from ledger.constants import ORDER_STATUSES
from ledger.exceptions import OrderNotFoundError
from ledger.reports import equity_chart_points, write_fills_csv
from ledger.service.state import ServiceLedger
from ledger.web import display
from ledger.web.session import COOKIE_NAME, SESSION_SECONDS, Session, Sessions, SignInRequired

PAGE_SIZE = 50
RECENT_FILLS = 10
DAILY_PNL_DAYS = 14
SECURITY_HEADERS = {
    # Everything the pages load ships in ledger/web/static: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters.update(number=display.number, money=display.money, percent=display.percent,
                             utc=display.utc_time, iso=display.iso_time)


class PageNotFound(Exception):
    """Answered as the 404 page: no such account, order or page for this key."""


class BadFilter(ValueError):
    """A filter value the page cannot use (answered 422 with the reason)."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in key of a request: its account (none for an admin key), its session and the ledger."""

    owner: KeyOwner | AdminKey
    session: Session
    ledger: ServiceLedger
    sessions: Sessions

    @property
    def csrf(self) -> str:
        return self.sessions.csrf_token(self.session)

    @property
    def is_admin(self) -> bool:
        return isinstance(self.owner, AdminKey)

    @property
    def account(self) -> str | None:
        """The key's own account (None for an admin key)."""
        return None if isinstance(self.owner, AdminKey) else self.owner.account


def viewer(request: Request) -> Viewer:
    """FastAPI dependency: the request's signed-in key, still active; else SignInRequired."""
    sessions: Sessions = request.app.state.sessions
    ledger: ServiceLedger = request.app.state.ledger
    session = sessions.read(request.cookies.get(COOKIE_NAME))
    if session is None:
        raise SignInRequired()
    with ledger.reading() as conn:
        key = queries.active_key_owner(conn, session.key_id)
    if key is None:
        raise SignInRequired()
    owner = AdminKey(session.key_id) if key.is_admin else KeyOwner(session.key_id, int(key.id), key.name)
    return Viewer(owner, session, ledger, sessions)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def sign_in_redirect(_request: Request, _exc: Exception) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/ui")
    return response


def not_found_page(request: Request, exc: Exception) -> Response:
    return render(request, "message.html", {"title": "Not found", "message": str(exc) or "Nothing here."}, 404)


def _account(who: Viewer, name: str) -> KeyOwner:
    """The account ``name`` as the viewer may act on it: the viewer's own account, or for an admin key any
    account; PageNotFound otherwise (even if it exists)."""
    if isinstance(who.owner, KeyOwner):
        if name != who.owner.account:
            raise PageNotFound("No such account for this key.")
        return who.owner
    with who.ledger.reading() as conn:
        account_id = queries.account_id_by_name(conn, name)
    if account_id is None:
        raise PageNotFound("No such account.")
    return KeyOwner(who.owner.key_id, account_id, name)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as {field: first value}."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def _version(conn: Any, account_id: int) -> str:
    """Changes whenever the account's orders or its clock (quotes, fills, cash) move: the live pages poll it."""
    return queries.ledger_version(conn, account_id)


# -- sign in and out --------------------------------------------------------------------------------------------
@router.get("")
def home() -> Response:
    return RedirectResponse("/ui/accounts", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html", {"error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await _form(request)
    ledger: ServiceLedger = request.app.state.ledger
    key_id, secret = fields.get("key_id", "").strip(), fields.get("secret_key", "").strip()
    owner = await run_in_threadpool(authenticate, ledger.engine, key_id, secret)
    if owner is None:
        return render(request, "login.html", {"error": "That key id and secret do not match an active key."}, 401)
    home = "/ui/accounts" if isinstance(owner, AdminKey) else f"/ui/accounts/{_quote(owner.account)}"
    response = RedirectResponse(home, status_code=303)
    response.set_cookie(COOKIE_NAME, request.app.state.sessions.issue(owner.key_id), max_age=SESSION_SECONDS,
                        path="/ui", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request, who: ViewerDep) -> Response:
    if not who.sessions.csrf_ok(who.session, (await _form(request)).get("csrf_token")):
        return render(request, "message.html", {"title": "Refused", "message": "The form's token is not valid."}, 403)
    return sign_in_redirect(request, SignInRequired())


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


# -- pages ---------------------------------------------------------------------------------------------------
@router.get("/accounts")
def accounts_page(request: Request, who: ViewerDep) -> Response:
    with who.ledger.reading() as conn:
        if isinstance(who.owner, KeyOwner):
            summaries = [_account_summary(conn, who.owner.account_id)]
        else:
            summaries = [_account_summary(conn, int(row.id)) for row in conn.execute(queries.accounts_stmt())]
    return render(request, "accounts.html", {"who": who, "accounts": summaries})


def _account_summary(conn: Any, account_id: int) -> dict[str, Any]:
    row = queries.account_row(conn, account_id)
    equity = queries.portfolio_value(conn, account_id)
    capital = queries.capital(conn, account_id)
    return {
        "row": row, "equity": equity, "capital": capital, "return": queries.total_return(equity, capital),
        "available_cash": row.cash_e6 - row.reserved_cash_e6, "open_orders": queries.open_order_count(conn, account_id),
    }


@router.get("/accounts/{name}")
def account_page(request: Request, name: str, who: ViewerDep, range: str = "all") -> Response:  # noqa: A002
    account_id = _account(who, name).account_id
    try:
        zoom = _zoom(request)
    except ValueError as exc:
        return render(request, "message.html", {"title": "Bad range", "message": str(exc), "who": who}, 422)
    span = "custom" if zoom else range if range in display.RANGES else "all"
    since, until = zoom or (None, None)
    with who.ledger.reading() as conn:
        summary = _account_summary(conn, account_id)
        context = {
            "margin": queries.account_margin(conn, account_id),
            "positions": [queries.position_figures(row) for row in conn.execute(queries.held_positions_stmt(account_id))],
            "open_orders": conn.execute(queries.orders_page_stmt(account_id, status="open", limit=200)).all(),
            "fills": conn.execute(queries.fills_page_stmt(account_id, limit=RECENT_FILLS)).all(),
            "daily": queries.recent_daily_pnl(conn, account_id, DAILY_PNL_DAYS),
            "runs": conn.execute(queries.runs_stmt(account_id)).all(),
            "chart": display.equity_chart(equity_chart_points(
                conn, name, display.RANGES.get(span), display.CHART_MAX_POINTS, since=since, until=until)),
            "version": _version(conn, account_id),
        }
    return render(request, "account.html", {
        "who": who, "name": name, "account": summary, "span": span, "spans": display.RANGE_LABELS, **context,
        "chart_size": (display.CHART_WIDTH, display.CHART_HEIGHT, display.CHART_PAD),
        "zoom": {"from": request.query_params.get("from", ""), "to": request.query_params.get("to", "")},
    })


def _filters(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The listing filters of the query string, checked: symbol, side, status, run, since, until (UTC), before."""
    params = request.query_params
    chosen: dict[str, Any] = {}
    for field in allowed:
        text = params.get(field, "").strip()
        if not text:
            continue
        if field == "symbol":
            chosen[field] = normalize_symbol(text)
        elif field == "side":
            if text.upper() not in ("BUY", "SELL"):
                raise BadFilter(f"side must be BUY or SELL, not {text[:20]!r}")
            chosen[field] = text.upper()
        elif field == "status":
            if text not in (*ORDER_STATUSES, "open", "closed"):
                raise BadFilter(f"unknown status {text[:20]!r}")
            chosen[field] = text
        elif field == "run":
            if ledger_id(text) is None:
                raise BadFilter("a run id is 32 lower-case hex digits")
            chosen[field] = text
        elif field in ("since", "until"):
            chosen[field] = _utc_time(field, text)
        elif field == "before":
            if not text.isdigit():
                raise BadFilter("before must be a row id")
            chosen[field] = int(text)
    return chosen


def _utc_time(field: str, text: str) -> datetime:
    """A time of the query string (ISO 8601; UTC when it names no zone), as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{field} must be a time like 2024-01-02T14:30 (UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _zoom(request: Request) -> tuple[datetime | None, datetime | None] | None:
    """The chart's custom range (``from``, ``to``; either may be left out), None when neither is given."""
    chosen = {field: _utc_time(field, text) for field in ("from", "to")
              if (text := request.query_params.get(field, "").strip())}
    if not chosen:
        return None
    since, until = chosen.get("from"), chosen.get("to")
    if since is not None and until is not None and since >= until:
        raise BadFilter("from must be before to")
    return since, until


def _listing(request: Request, who: Viewer, name: str, kind: str) -> Response:
    """The fills or orders page: filters, one page of rows newest first, and the link to the next page."""
    account_id = _account(who, name).account_id
    allowed = ("symbol", "side", "run", "since", "until", "before") + (("status",) if kind == "orders" else ())
    try:
        chosen = _filters(request, allowed)
    except ValueError as exc:
        return render(request, "message.html", {"title": "Bad filter", "message": str(exc), "who": who}, 422)
    arguments = {"symbol": chosen.get("symbol"), "side": chosen.get("side"), "run_id": chosen.get("run"),
                 "since": chosen.get("since"), "until": chosen.get("until"), "before_id": chosen.get("before"),
                 "limit": PAGE_SIZE + 1}
    with who.ledger.reading() as conn:
        if kind == "fills":
            rows = conn.execute(queries.fills_page_stmt(account_id, **arguments)).all()
        else:
            rows = conn.execute(queries.orders_page_stmt(account_id, status=chosen.get("status"), **arguments)).all()
        runs = [run.run_id for run in conn.execute(queries.runs_stmt(account_id))]
        version = _version(conn, account_id)
    shown = {field: request.query_params.get(field, "").strip() for field in allowed if field != "before"}
    kept = {field: value for field, value in shown.items() if value}
    next_page = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_page = "?" + urlencode({**kept, "before": rows[-1].id})
    csv_query = urlencode({"format": "csv", **{field: kept[field] for field in ("symbol", "since") if field in kept}})
    return render(request, f"{kind}.html", {
        "who": who, "name": name, "rows": rows, "filters": shown, "runs": runs, "next_page": next_page,
        "first_page": "?" + urlencode(kept) if "before" in chosen else None, "statuses": ORDER_STATUSES,
        "version": version, "csv_query": csv_query,
    })


@router.get("/accounts/{name}/fills")
def fills_page(request: Request, name: str, who: ViewerDep, format: str = "html") -> Response:  # noqa: A002
    if format != "csv":
        return _listing(request, who, name, "fills")
    _account(who, name)
    try:
        chosen = _filters(request, ("symbol", "since"))
    except ValueError as exc:
        return render(request, "message.html", {"title": "Bad filter", "message": str(exc), "who": who}, 422)
    buffer = io.StringIO()
    with who.ledger.reading() as conn:
        write_fills_csv(conn, name, buffer, since=chosen.get("since"), symbol=chosen.get("symbol"))
    filename = f"fills-{_quote(name)}.csv"
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{filename}\"", **SECURITY_HEADERS})


@router.get("/accounts/{name}/orders")
def orders_page(request: Request, name: str, who: ViewerDep) -> Response:
    return _listing(request, who, name, "orders")


@router.get("/accounts/{name}/orders/{order_id}")
def order_page(request: Request, name: str, order_id: str, who: ViewerDep) -> Response:
    account_id = _account(who, name).account_id
    if ledger_id(order_id) is None:
        raise PageNotFound("No such order for this key.")
    with who.ledger.reading() as conn:
        order = conn.execute(queries.order_stmt(account_id, order_id)).one_or_none()
        if order is None:
            raise PageNotFound("No such order for this key.")
        events = conn.execute(queries.order_events_stmt(order.id)).all()
        fills = conn.execute(queries.order_fills_stmt(order.id)).all()
        version = _version(conn, account_id)
    return render(request, "order.html", {"who": who, "name": name, "order": order, "events": events,
                                          "fills": fills, "version": version})


@router.post("/accounts/{name}/orders/{order_id}/cancel")
async def cancel_order(request: Request, name: str, order_id: str, who: ViewerDep) -> Response:
    """Cancel through the API's use case (``PaperBroker.cancel_order``), then back to the page the form was on."""
    account = _account(who, name)
    fields = await _form(request)
    if not who.sessions.csrf_ok(who.session, fields.get("csrf_token")):
        return render(request, "message.html", {"title": "Refused", "message": "The form's token is not valid: "
                                                "reload the page and try again.", "who": who}, 403)
    if ledger_id(order_id) is None:
        raise PageNotFound("No such order for this key.")
    try:
        outcome = await run_in_threadpool(who.ledger.broker(account).cancel_order, order_id)
    except OrderNotFoundError:
        raise PageNotFound("No such order for this key.") from None
    if outcome["status"] != "canceled":
        return render(request, "message.html", {"title": "Not canceled", "who": who,
                                                "message": f"The order is {outcome['status']}: nothing to cancel."}, 409)
    back = fields.get("next", "")
    if not back.startswith(f"/ui/accounts/{_quote(name)}") or "//" in back:
        back = f"/ui/accounts/{_quote(name)}/orders/{order_id}"
    return RedirectResponse(back, status_code=303)


@router.get("/accounts/{name}/version")
def live_version(name: str, who: ViewerDep) -> JSONResponse:
    """What the live pages poll: a token that changes when the account's ledger rows do."""
    account_id = _account(who, name).account_id
    with who.ledger.reading() as conn:
        return JSONResponse({"version": _version(conn, account_id)}, headers={"Cache-Control": "no-store"})
