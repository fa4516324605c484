"""Requests an entity signs with its DID key to ask a data host for something (an unlock, a new
container): bound to one host, fresh (a timestamp window), and never accepted twice (a nonce and
a request id the host remembers until the window has passed).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from evgi.core.clock import unix_seconds
from evgi.core.errors import SignatureError, ValidationError
from evgi.core.keys import Account
from evgi.identity import Did, did_for, sign_document, verify_document
from evgi.ledger import Ledger
from evgi.permissions.refusal import Reason, Refusal, problems

RequestId = Annotated[str, Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9:._-]+$")]
Nonce = Annotated[str, Field(pattern=r"^0x[0-9a-f]{32}$")]
DidText = Annotated[str, Field(max_length=120, pattern=r"^did:ethr:")]

# How old a request may be, and how far ahead of the host's clock a sender's clock may run.
WINDOW = timedelta(seconds=120)
SKEW = timedelta(seconds=30)


class SignedRequest(BaseModel):
    """Fields every signed request carries; subclasses name the signer's field in `signer_field`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    signer_field: ClassVar[str]

    type: str
    id: RequestId
    nonce: Nonce
    host: DidText
    created: AwareDatetime
    proof: dict[str, Any] | None = None

    @property
    def signer(self) -> str:
        value: str = getattr(self, self.signer_field)
        return value


R = TypeVar("R", bound=SignedRequest)


def sign_request(
    account: Account, chain_id: int, body: dict[str, Any], host_did: str, now: datetime
) -> dict[str, Any]:
    """A fresh request from `account` to the host `host_did`, signed for authentication."""
    did = did_for(chain_id, account.address)
    document = {
        **body,
        "id": f"urn:uuid:{uuid.uuid4()}",
        "nonce": "0x" + secrets.token_hex(16),
        "host": host_did,
        "created": now.isoformat().replace("+00:00", "Z"),
    }
    return sign_document(document, account, f"{did}#controller", now, "authentication")


class RequestGate:
    """Checks signed requests for one host and remembers the ids it accepted."""

    def __init__(self, host_did: str) -> None:
        self.host_did = host_did
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_prune = 0

    def remember(self, request_id: str, created: datetime) -> None:
        """Mark a request id as used (at start-up, from the access log of a previous run)."""
        with self._lock:
            self._seen[request_id] = unix_seconds(created + WINDOW + SKEW)

    def check(self, ledger: Ledger, document: Any, model: type[R], now: datetime) -> R:
        """Parse and verify `document`; raise a Refusal naming the first problem found."""
        if not isinstance(document, dict):
            raise Refusal(Reason.MALFORMED, "a signed request is a JSON object")
        try:
            request = model.model_validate(document)
        except PydanticValidationError as exc:
            raise Refusal(Reason.MALFORMED, f"malformed {model.__name__}: {problems(exc)}") from exc
        if request.host != self.host_did:
            raise Refusal(Reason.WRONG_HOST, f"the request is addressed to {request.host}")
        if request.created < now - WINDOW or request.created > now + SKEW:
            raise Refusal(
                Reason.STALE,
                f"request time {request.created.isoformat()} is outside the accepted window "
                f"({int(WINDOW.total_seconds())} s back, {int(SKEW.total_seconds())} s ahead)",
            )
        if request.proof is None:
            raise Refusal(Reason.MISSING_SIGNATURE, "the request carries no proof")
        if request.proof.get("proofPurpose") != "authentication":
            raise Refusal(Reason.BAD_SIGNATURE, "the request's proof purpose is not authentication")
        try:
            if Did.parse(request.signer, ledger.chain_id).chain_id != ledger.chain_id:
                raise ValidationError(f"{request.signer} is a DID of another chain")
            verify_document(ledger, document, request.signer)
        except SignatureError as exc:
            raise Refusal(Reason.BAD_SIGNATURE, exc.message) from exc
        except ValidationError as exc:
            raise Refusal(Reason.MALFORMED, exc.message) from exc
        self._admit(request.id, unix_seconds(now), unix_seconds(request.created + WINDOW + SKEW))
        return request

    def _admit(self, request_id: str, now: int, forget_after: int) -> None:
        with self._lock:
            if request_id in self._seen:
                raise Refusal(Reason.REPLAYED, f"request {request_id} was already used")
            self._seen[request_id] = forget_after
            if now >= self._next_prune:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                self._next_prune = now + int(WINDOW.total_seconds())
