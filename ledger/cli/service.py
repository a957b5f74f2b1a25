"""``paper-ledger serve`` (the Alpaca-compatible HTTP service) and ``paper-ledger keys`` (its API keys)."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ledger.cli.common import db_option, fmt_time, open_ledger, print_rows, row_format_options
from ledger.data import sample_bars_path
from ledger.exceptions import LedgerError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.service.quote_feed import QuoteSource

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port(host: str) -> int:
    """A port free on ``host`` now (the OS picks it; uvicorn binds it a moment later)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
            return int(probe.getsockname()[1])
    except OSError as exc:
        raise click.ClickException(f"cannot bind {host}: {exc}") from exc


def _service_url(host: str, port: int) -> str:
    """The URL clients on this machine reach the service at (a wildcard address reads as the loopback one)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


DEMO_ACCOUNT = "demo"
DEMO_SNIPPET = """\
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest
client = TradingClient("{key_id}", "{secret}", paper=True, url_override="{url}")
print(client.get_account().cash)
client.submit_order(LimitOrderRequest(symbol="SYN_A", qty=1, side="buy", time_in_force="gtc", limit_price=101))
"""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each keeps one PaperBroker per account; the database is shared).")
@click.option("--feed", default=None, metavar="yfinance|replay:FILE",
              help="Move quotes by itself: yfinance (with --symbols) or replay:FILE (bars as `paper-ledger replay "
              "--data` reads them, played in a loop). One feed per server, whatever --workers.")
@click.option("--symbols", default=None, help="With --feed yfinance: comma-separated tickers.")
@click.option("--poll", type=click.FloatRange(1, 86_400), default=60, show_default=True,
              help="With --feed yfinance: seconds between two fetches.")
@click.option("--speed", type=click.FloatRange(0, 1000, min_open=True), default=1, show_default=True,
              help="With --feed replay:FILE or --demo: bar times played per second.")
@click.option("--accounts", default=None,
              help="Comma-separated accounts the feed quotes (default: every account holding an active API key).")
@click.option("--demo", is_flag=True,
              help="Offline demo: an account 'demo' with an API key (printed once) and a feed of the packaged "
              "synthetic bars, so prices move and orders fill.")
@db_option
def serve(host: str, port: int, workers: int, feed: str | None, symbols: str | None, poll: float, speed: float,
          accounts: str | None, demo: bool, db: str | None) -> None:
    """Serve the ledger over HTTP as Alpaca's Trading API v2 (alpaca-py runs against it unmodified).

    Clients authenticate with keys from `paper-ledger keys create ACCOUNT`; the dashboard is at /ui (sign in
    with the same key). The schema is brought to head
    before the first request; the service keeps no state of its own, so changes made by other processes
    (`paper-ledger quote set`, another server) are visible at once.

    With --feed the server stores quotes by itself, stamped with wall time, for every account holding an active
    API key (or the --accounts): resting orders fill as after `paper-ledger quote set`. --demo runs offline with
    zero setup.
    """
    import os
    import secrets

    import uvicorn

    from ledger.service.quote_feed import QuoteFeed

    source = _feed_source(feed, symbols, poll, speed, accounts, demo)
    url, engine = open_ledger(db, must_exist=False)
    if not is_loopback(host):
        click.echo(f"warning: binding {host}: this service speaks plain HTTP (no TLS); API keys and orders "
                   "travel unencrypted. Put it behind a TLS proxy or bind 127.0.0.1.", err=True)
    if port == 0:  # any free port: chosen here, so that it can be printed (and put in the demo's snippet)
        port = _free_port(host)
        click.echo(f"listening on {_service_url(host, port)} (--port 0: a free port)", err=True)
    if demo:
        _ensure_demo_account(url)
        _print_demo_key(engine, _service_url(host, port))
    fed = [DEMO_ACCOUNT] if demo else _existing_accounts(engine, accounts)
    quote_feed = None if source is None else QuoteFeed(url, source, fed)
    os.environ["LEDGER_DATABASE_URL"] = url  # the workers (separate processes with --workers) read it
    # The dashboard's sessions are signed with a secret of this start, the same in every worker: a restart
    # signs everyone out.
    os.environ["LEDGER_WEB_SESSION_SECRET"] = secrets.token_hex(32)
    if quote_feed is not None:
        click.echo(f"feed: {quote_feed.source.description}; quoting "
                   f"{', '.join(quote_feed.accounts) if quote_feed.accounts else 'every account with an API key'}",
                   err=True)
        quote_feed.start()
    try:
        uvicorn.run("ledger.service.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", server_header=False, access_log=False)
    finally:
        if quote_feed is not None:
            quote_feed.stop()


def _feed_source(feed: str | None, symbols: str | None, poll: float, speed: float, accounts: str | None,
                 demo: bool) -> QuoteSource | None:
    """The quote source the options ask for (None: no feed); a wrong combination is a usage error (exit 2)."""
    from ledger.service.quote_feed import ReplaySource, YFinanceSource

    kind, _, argument = (feed or "").partition(":")
    if demo and feed:
        raise click.UsageError("--demo runs its own feed (the packaged synthetic bars); drop --feed")
    if feed and kind not in ("yfinance", "replay"):
        raise click.BadParameter(f"unknown feed {feed!r}: use yfinance or replay:FILE", param_hint="--feed")
    if symbols is not None and kind != "yfinance":
        raise click.UsageError("--symbols goes with --feed yfinance")
    if accounts is not None and not feed:
        raise click.UsageError("--accounts names the accounts a feed quotes: give --feed")
    if kind == "yfinance":
        tickers = [symbol.strip().upper() for symbol in (symbols or "").split(",") if symbol.strip()]
        if argument or not tickers:
            raise click.UsageError("--feed yfinance needs --symbols, e.g. --symbols AAPL,MSFT")
        return YFinanceSource(tickers, poll)
    if kind != "replay" and not demo:
        return None
    if kind == "replay" and not argument:
        raise click.BadParameter("replay needs a bar file: replay:FILE", param_hint="--feed")
    path = Path(argument) if kind == "replay" else sample_bars_path()
    if not path.is_file():
        raise click.BadParameter(f"no bar file {str(path)!r}", param_hint="--feed")
    try:
        return ReplaySource(path, speed, None if kind == "replay" else "packaged synthetic sample")
    except (ValueError, LedgerError) as exc:
        raise click.BadParameter(f"cannot replay {str(path)!r}: {exc}", param_hint="--feed") from exc


def _existing_accounts(engine: Engine, accounts: str | None) -> list[str] | None:
    if accounts is None:
        return None
    from ledger.book.store import find_account

    names = [name.strip() for name in accounts.split(",") if name.strip()]
    with engine.connect() as conn, conn.begin():
        unknown = [name for name in names if find_account(conn, name) is None]
    if unknown or not names:
        raise click.BadParameter(f"no account {', '.join(map(repr, unknown)) or 'given'}", param_hint="--accounts")
    return names


def _ensure_demo_account(url: str) -> None:
    from ledger.brokers.paper import PaperBroker

    PaperBroker(account=DEMO_ACCOUNT, db_url=url).close()  # creates the account (config initial_cash) if absent


def _print_demo_key(engine: Engine, url: str) -> None:
    """A new key for the demo account when it has none active, printed once with the alpaca-py snippet."""
    from ledger.book.keys import create_key, list_keys

    active = [key["key_id"] for key in list_keys(engine, DEMO_ACCOUNT) if key["revoked_at"] is None]
    if active:
        click.echo(f"demo account {DEMO_ACCOUNT!r}: key {active[-1]} (its secret was shown when it was created; "
                   f"`paper-ledger keys create {DEMO_ACCOUNT}` makes a new one)")
        return
    key_id, secret = create_key(engine, DEMO_ACCOUNT)
    click.echo(f"demo account {DEMO_ACCOUNT!r}, new API key (the secret is shown only now):\n"
               f"key_id      {key_id}\nsecret_key  {secret}\n\nwith alpaca-py:\n"
               + DEMO_SNIPPET.format(key_id=key_id, secret=secret, url=url))


@click.group("keys")
def keys() -> None:
    """Create, list and revoke the API keys clients of `paper-ledger serve` authenticate with."""


def _owner(account: str | None, admin: bool) -> str | None:
    """The ACCOUNT argument, or None with --admin; one of the two is required."""
    if admin == (account is not None):
        raise click.UsageError("give ACCOUNT or --admin (an admin key belongs to no account)")
    return account


@keys.command("create")
@click.argument("account", required=False)
@click.option("--admin", is_flag=True, help="An admin key: it signs in to the dashboard and sees every account "
              "(the HTTP API refuses it).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="json: {\"key_id\": ..., \"secret_key\": ...} for scripts.")
@db_option
def keys_create(account: str | None, admin: bool, fmt: str, db: str | None) -> None:
    """Create an API key for ACCOUNT (or --admin) and print it once: the secret is stored only as a hash."""
    from ledger.book.keys import create_admin_key, create_key

    owner = _owner(account, admin)
    _, engine = open_ledger(db)
    key_id, secret = create_admin_key(engine) if owner is None else create_key(engine, owner)
    if fmt == "json":
        click.echo(json.dumps({"key_id": key_id, "secret_key": secret}))
    else:
        click.echo(f"key_id      {key_id}\nsecret_key  {secret}\n(the secret is shown only now: store it)")


@keys.command("list")
@click.argument("account", required=False)
@click.option("--admin", is_flag=True, help="List the admin keys instead of an account's.")
@row_format_options
@db_option
def keys_list(account: str | None, admin: bool, fmt: str, out: object, db: str | None) -> None:
    """List ACCOUNT's API keys, or the admin keys (ids and times; secrets are never shown again)."""
    from ledger.book.keys import list_keys

    owner = _owner(account, admin)
    _, engine = open_ledger(db)
    rows = [(key["key_id"], key["created_at"], key["revoked_at"]) for key in list_keys(engine, owner)]
    print_rows(fmt, out, (("key_id", "text"), ("created_at", "time"), ("revoked_at", "time")), rows)  # type: ignore[arg-type]


@keys.command("revoke")
@click.argument("key_id")
@db_option
def keys_revoke(key_id: str, db: str | None) -> None:
    """Revoke the API key KEY_ID: it stops authenticating at once."""
    from ledger.book.keys import revoke_key

    _, engine = open_ledger(db)
    revoked = revoke_key(engine, key_id)
    click.echo(f"revoked {key_id} at {fmt_time(revoked['revoked_at'])}")


COMMANDS = (serve, keys)
