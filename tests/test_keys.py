"""API keys: created once per account, stored only as a salted hash, compared in constant time, revocable."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from ledger.book.keys import AdminKey, authenticate, create_key, list_keys, revoke_key
from ledger.cli import cli
from ledger.db.engine import get_engine
from ledger.db.models import ApiKey


def test_a_key_authenticates_its_account_and_the_database_holds_no_usable_secret(make_broker, db_url):
    make_broker(account="alice")
    make_broker(account="bob")
    engine = get_engine(db_url)
    key_id, secret = create_key(engine, "alice")
    owner = authenticate(engine, key_id, secret)
    assert owner is not None and owner.account == "alice"
    assert authenticate(engine, key_id, secret) == owner  # the remembered verification answers the same
    assert authenticate(engine, key_id, secret + "x") is None
    assert authenticate(engine, "PKUNKNOWN", secret) is None
    with engine.connect() as conn:
        stored = conn.execute(select(ApiKey.__table__.c.secret_hash)).scalar_one()
    assert secret not in stored and stored.startswith("scrypt$")


def test_a_revoked_key_stops_authenticating_at_once_and_stays_listed(make_broker, db_url):
    make_broker(account="alice")
    engine = get_engine(db_url)
    key_id, secret = create_key(engine, "alice")
    assert authenticate(engine, key_id, secret) is not None
    first = revoke_key(engine, key_id)
    assert authenticate(engine, key_id, secret) is None
    assert revoke_key(engine, key_id)["revoked_at"] == first["revoked_at"]
    [listed] = list_keys(engine, "alice")
    assert listed["key_id"] == key_id and listed["revoked_at"] is not None


def test_keys_cli_prints_the_pair_once_lists_and_revokes(make_broker, db_url):
    make_broker(account="alice")
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "alice", "--format", "json", "--db", db_url])
    assert created.exit_code == 0, created.output
    pair = json.loads(created.output)
    assert set(pair) == {"key_id", "secret_key"}
    listed = runner.invoke(cli, ["keys", "list", "alice", "--format", "json", "--db", db_url])
    assert pair["key_id"] in listed.output and pair["secret_key"] not in listed.output
    assert runner.invoke(cli, ["keys", "revoke", pair["key_id"], "--db", db_url]).exit_code == 0
    missing = runner.invoke(cli, ["keys", "create", "nobody", "--db", db_url])
    assert missing.exit_code == 1 and "no such account" in missing.output


def test_an_admin_key_belongs_to_no_account_is_listed_apart_and_revocable_from_the_cli(make_broker, db_url):
    make_broker(account="alice")
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--admin", "--format", "json", "--db", db_url])
    assert created.exit_code == 0, created.output
    pair = json.loads(created.output)
    engine = get_engine(db_url)
    assert authenticate(engine, pair["key_id"], pair["secret_key"]) == AdminKey(pair["key_id"])
    with engine.connect() as conn:
        stored = conn.execute(select(ApiKey.__table__).where(ApiKey.key_id == pair["key_id"])).one()
    assert stored.account_id is None and stored.is_admin and pair["secret_key"] not in stored.secret_hash
    admins = runner.invoke(cli, ["keys", "list", "--admin", "--format", "json", "--db", db_url])
    assert pair["key_id"] in admins.output and pair["secret_key"] not in admins.output
    assert pair["key_id"] not in runner.invoke(cli, ["keys", "list", "alice", "--db", db_url]).output
    both = runner.invoke(cli, ["keys", "create", "alice", "--admin", "--db", db_url])
    assert both.exit_code == 2 and "ACCOUNT or --admin" in both.output
    assert runner.invoke(cli, ["keys", "revoke", pair["key_id"], "--db", db_url]).exit_code == 0
    assert authenticate(engine, pair["key_id"], pair["secret_key"]) is None
    assert list_keys(engine, None)[0]["revoked_at"] is not None
