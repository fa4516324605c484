"""Session tokens of accepted unlocks: the scope and expiry, MACed with a key only the host has.

A token carries no secret and grants nothing by itself: every use is re-authorized against the
ledger, so a revocation, a block or an off-boarding ends open sessions too.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

from evgi.core.canonical import compact_json, parse_json
from evgi.core.digest import keccak256
from evgi.core.errors import ValidationError
from evgi.core.keys import Account
from evgi.ledger.permissions import Role
from evgi.permissions.refusal import Reason, Refusal


@dataclass(frozen=True)
class SessionClaims:
    session: str
    accessor: str
    container: str
    role: Role
    expires: int
    via: str


_KEPT_TOKENS = 100_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionKeys:
    """Mints and opens tokens; the key derives from the host's account, so every process that
    runs the same host accepts the tokens of the others."""

    def __init__(self, host: Account) -> None:
        self._key = keccak256(b"EVGI data host session key:" + host.private_key)
        # Tokens already checked, with their claims: a token's bytes fix its claims, so a
        # session's next use costs a lookup (its expiry is still checked every time).
        self._opened: dict[str, SessionClaims] = {}

    def _keep(self, token: str, claims: SessionClaims) -> None:
        if len(self._opened) >= _KEPT_TOKENS:
            self._opened = {}
        self._opened[token] = claims

    def _mac(self, payload: str) -> str:
        # The one-shot form: no HMAC object per token, on every unlock and unknown token.
        return _b64(hmac.digest(self._key, payload.encode(), "sha256"))

    def mint(self, claims: SessionClaims) -> str:
        fields = {
            "session": claims.session,
            "accessor": claims.accessor,
            "container": claims.container,
            "role": claims.role.value,
            "expires": claims.expires,
            "via": claims.via,
        }
        payload = _b64(compact_json(fields).encode())
        token = f"{payload}.{self._mac(payload)}"
        self._keep(token, claims)
        return token

    def open(self, token: str, now: int) -> SessionClaims:
        claims = self._opened.get(token)
        if claims is None:
            claims = self._check(token)
            self._keep(token, claims)
        if claims.expires <= now:
            raise Refusal(Reason.SESSION_EXPIRED, "the session has expired; unlock again")
        return claims

    def _check(self, token: str) -> SessionClaims:
        payload, _, mac = token.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise Refusal(Reason.BAD_TOKEN, "the session token is not one this host issued")
        try:
            fields = parse_json(_unb64(payload))
            return SessionClaims(**{**fields, "role": Role(fields["role"])})
        except (ValidationError, TypeError, KeyError, ValueError) as exc:
            raise Refusal(Reason.BAD_TOKEN, "the session token is malformed") from exc
