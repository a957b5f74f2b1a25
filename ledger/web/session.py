"""Dashboard sessions: a signed cookie naming the API key that signed in, and CSRF tokens derived from it.

The cookie is ``payload.signature``: the payload is the key id and the sign-in time, the signature an
HMAC-SHA256 of it under the server's secret, so a client can neither forge nor alter one. It is HttpOnly and
SameSite=Strict. The key is looked up on every request, so revoking it (``paper-ledger keys revoke``) ends its
sessions at once. A form that changes the ledger carries a CSRF token, an HMAC of the session under the same
secret: another site can neither read it nor send the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

COOKIE_NAME = "ledger_session"
SESSION_SECONDS = 12 * 3600


class SignInRequired(Exception):
    """The request has no valid session: answered by a redirect to the sign-in page."""


@dataclass(frozen=True)
class Session:
    """A signed-in key: its id and the cookie value it came from."""

    key_id: str
    token: str


class Sessions:
    """Makes and checks session cookies and CSRF tokens under one secret."""

    def __init__(self, secret: bytes):
        self._secret = secret

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str, now: float | None = None) -> str:
        """A cookie value for ``key_id``, valid for SESSION_SECONDS."""
        payload = json.dumps({"key_id": key_id, "at": int(now if now is not None else time.time())})
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{encoded}.{self._sign('session', encoded)}"

    def read(self, token: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie value, or None when it is missing, altered or expired."""
        if not token or token.count(".") != 1 or len(token) > 512:
            return None
        encoded, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign("session", encoded)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            key_id, issued = str(payload["key_id"]), int(payload["at"])
        except (ValueError, KeyError, TypeError):
            return None
        current = now if now is not None else time.time()
        if not issued <= current < issued + SESSION_SECONDS:
            return None
        return Session(key_id, token)

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf", session.token)

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented, self.csrf_token(session))  # type: ignore[arg-type]
