"""Authentication with Alpaca's three schemes: APCA headers, ``Authorization: Basic`` and ``Authorization: Bearer``.

``APCA-API-KEY-ID`` + ``APCA-API-SECRET-KEY`` is what TradingClient sends; Basic carries ``key:secret`` in
base64 (data clients with ``use_basic_auth``); Bearer carries ``key:secret`` as the token (this service has no
OAuth server; a token is a key pair). Missing or wrong credentials answer 401 with code 40110000; an admin key
(which belongs to no account) answers 403 with code 40310001.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from ledger.book.keys import AdminKey, KeyOwner, authenticate
from ledger.brokers.paper import PaperBroker
from ledger.service.errors import ADMIN_KEY_REFUSED, UNAUTHORIZED, ApiError
from ledger.service.state import ServiceLedger


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the key's account, its broker and the ledger."""

    owner: KeyOwner
    ledger: ServiceLedger

    @property
    def broker(self) -> PaperBroker:
        return self.ledger.broker(self.owner)

    @property
    def account_id(self) -> int:
        return self.owner.account_id


def credentials(headers: dict[str, str] | object) -> tuple[str, str] | None:
    """(key_id, secret) from request headers in any of the three schemes, else None."""
    get = headers.get  # type: ignore[attr-defined]
    key_id, secret = get("apca-api-key-id"), get("apca-api-secret-key")
    if key_id and secret:
        return key_id, secret
    authorization = get("authorization") or ""
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    key_id, sep, secret = value.partition(":")
    return (key_id, secret) if sep and key_id and secret else None


def check_key(ledger: ServiceLedger, pair: tuple[str, str] | None) -> KeyOwner:
    """The key's owner, or the 401 ApiError; an admin key (it has no account to trade) the 403 ApiError."""
    owner = None if pair is None else authenticate(ledger.engine, *pair)
    if owner is None:
        raise ApiError(401, UNAUTHORIZED, "request is not authorized: send APCA-API-KEY-ID and APCA-API-SECRET-KEY "
                                          "of an active key (paper-ledger keys create ACCOUNT)")
    if isinstance(owner, AdminKey):
        raise ApiError(403, ADMIN_KEY_REFUSED, "admin keys sign in to the dashboard only: use a key of the account "
                                               "(paper-ledger keys create ACCOUNT)")
    return owner


async def caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller of this request."""
    ledger: ServiceLedger = request.app.state.ledger
    owner = await run_in_threadpool(check_key, ledger, credentials(request.headers))
    return Caller(owner, ledger)
