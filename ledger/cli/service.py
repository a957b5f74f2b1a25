"""``paper-ledger serve`` (the Alpaca-compatible HTTP service) and ``paper-ledger keys`` (its API keys)."""

from __future__ import annotations

import ipaddress
import json

import click

from ledger.cli.common import db_option, fmt_time, open_ledger, print_rows, row_format_options

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each keeps one PaperBroker per account; the database is shared).")
@db_option
def serve(host: str, port: int, workers: int, db: str | None) -> None:
    """Serve the ledger over HTTP as Alpaca's Trading API v2 (alpaca-py runs against it unmodified).

    Clients authenticate with keys from `paper-ledger keys create ACCOUNT`; the dashboard is at /ui (sign in
    with the same key). The schema is brought to head
    before the first request; the service keeps no state of its own, so changes made by other processes
    (`paper-ledger quote set`, another server) are visible at once.
    """
    import os
    import secrets

    import uvicorn

    url, _ = open_ledger(db, must_exist=False)
    if not is_loopback(host):
        click.echo(f"warning: binding {host}: this service speaks plain HTTP (no TLS); API keys and orders "
                   "travel unencrypted. Put it behind a TLS proxy or bind 127.0.0.1.", err=True)
    os.environ["LEDGER_DATABASE_URL"] = url  # the workers (separate processes with --workers) read it
    # The dashboard's sessions are signed with a secret of this start, the same in every worker: a restart
    # signs everyone out.
    os.environ["LEDGER_WEB_SESSION_SECRET"] = secrets.token_hex(32)
    uvicorn.run("ledger.service.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", server_header=False, access_log=False)


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
