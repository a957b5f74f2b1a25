"""API keys of the HTTP service: create, list, revoke, and authenticate a key id + secret.

A key belongs to one account, or is an admin key (no account): an admin key signs in to the dashboard, which
then shows every account, and the HTTP API refuses it. The secret is shown once, at creation, and stored only as a salted scrypt hash:
a dump of ``api_keys`` reveals no usable credential, and a presented secret is compared in constant time.
scrypt is deliberately slow (tens of milliseconds), so a process remembers, per key, the SHA-256 of the last
secret that verified: a request then costs one indexed SELECT (which still sees a revocation at once) and a
hash, not an scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from ledger.db.engine import read_transaction, translate_db_errors, write_transaction
from ledger.db.models import Account, ApiKey
from ledger.exceptions import LedgerError

KEY_ID_PREFIX = "PK"
KEY_ID_LENGTH = 20  # as Alpaca's: "PK" + 18 upper-case letters and digits
SECRET_LENGTH = 40
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
# scrypt cost: n=2^14, r=8, p=1 (16 MiB, ~30-50 ms); the parameters are stored with each hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SALT_BYTES = 16

api_keys = ApiKey.__table__
accounts = Account.__table__


class ApiKeyNotFoundError(LedgerError):
    """No API key with this id exists."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        super().__init__(f"no API key {key_id!r} (list an account's keys with `paper-ledger keys list ACCOUNT`)")


@dataclass(frozen=True)
class KeyOwner:
    """The account an authenticated key belongs to."""

    key_id: str
    account_id: int
    account: str


@dataclass(frozen=True)
class AdminKey:
    """An authenticated admin key: it belongs to no account and may look at every one (the dashboard only)."""

    key_id: str


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt_hex$hash_hex`` of ``secret`` with a fresh random salt (or ``salt``)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (compared in constant time); False for a malformed hash."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p),
                                dklen=len(digest_hex) // 2)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def _account_id(conn: Any, account: str) -> int:
    found = conn.execute(select(accounts.c.id).where(accounts.c.name == account)).scalar_one_or_none()
    if found is None:
        raise LedgerError(f"no such account {account!r} (create one with `paper-ledger account create NAME --cash N`)")
    return int(found)


def _new_key(conn: Any, account_id: int | None, now: datetime | None) -> tuple[str, str]:
    key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_ID_LENGTH - 2))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    conn.execute(insert(api_keys).values(
        key_id=key_id, account_id=account_id, is_admin=account_id is None, secret_hash=hash_secret(secret),
        created_at=now or datetime.now(UTC), revoked_at=None,
    ))
    return key_id, secret


def create_key(engine: Engine, account: str, now: datetime | None = None) -> tuple[str, str]:
    """A new key of the existing ``account``: returns ``(key_id, secret_key)``; the secret is not kept."""
    with translate_db_errors(engine), engine.connect() as conn, write_transaction(conn):
        return _new_key(conn, _account_id(conn, account), now)


def create_admin_key(engine: Engine, now: datetime | None = None) -> tuple[str, str]:
    """A new admin key (it sees every account on the dashboard): returns ``(key_id, secret_key)``."""
    with translate_db_errors(engine), engine.connect() as conn, write_transaction(conn):
        return _new_key(conn, None, now)


def list_keys(engine: Engine, account: str | None) -> list[dict[str, Any]]:
    """The keys of ``account`` (None: the admin keys), oldest first: ``key_id``, ``created_at``, ``revoked_at``
    (never a secret)."""
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        owner = api_keys.c.is_admin.is_(True) if account is None else api_keys.c.account_id == _account_id(conn, account)
        rows = conn.execute(
            select(api_keys.c.key_id, api_keys.c.created_at, api_keys.c.revoked_at).where(owner).order_by(api_keys.c.id)
        )
        return [dict(row._mapping) for row in rows]


def revoke_key(engine: Engine, key_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Revoke a key (it stops authenticating at once); revoking a revoked key keeps its first revocation time."""
    with translate_db_errors(engine), engine.connect() as conn, write_transaction(conn):
        row = conn.execute(select(api_keys.c.revoked_at).where(api_keys.c.key_id == key_id)).one_or_none()
        if row is None:
            raise ApiKeyNotFoundError(key_id)
        revoked_at = row.revoked_at
        if revoked_at is None:
            revoked_at = now or datetime.now(UTC)
            conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=revoked_at))
    return {"key_id": key_id, "revoked_at": revoked_at}


_verified: dict[str, tuple[str, bytes]] = {}  # key_id -> (its stored hash, SHA-256 of a secret that matched it)
_verified_lock = threading.Lock()


def authenticate(engine: Engine, key_id: str, secret: str) -> KeyOwner | AdminKey | None:
    """The owner of an active key whose secret matches (an AdminKey for an admin key); None for an unknown,
    revoked or wrong key."""
    if not key_id or not secret or len(key_id) > 64 or len(secret) > 256:
        return None
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        row = conn.execute(
            select(api_keys.c.secret_hash, api_keys.c.revoked_at, api_keys.c.is_admin, accounts.c.id, accounts.c.name)
            .select_from(api_keys.outerjoin(accounts, accounts.c.id == api_keys.c.account_id))
            .where(api_keys.c.key_id == key_id)
        ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    fingerprint = hashlib.sha256(secret.encode()).digest()
    with _verified_lock:
        remembered = _verified.get(key_id)
    if remembered is not None and remembered[0] == row.secret_hash:
        ok = hmac.compare_digest(remembered[1], fingerprint)
    else:
        ok = secret_matches(secret, row.secret_hash)
        if ok:
            with _verified_lock:
                _verified[key_id] = (row.secret_hash, fingerprint)
    if not ok:
        return None
    return AdminKey(key_id) if row.is_admin else KeyOwner(key_id, int(row.id), row.name)
