"""Access Session Setup: the Unlock Request an accessor signs with its DID key, and the Unlock
Response that either rejects it (with the reason) or accepts it (a session token with its scope
and expiry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from evgi.core.keys import Account
from evgi.identity import did_for
from evgi.ledger.permissions import Role
from evgi.permissions.refusal import Refusal
from evgi.permissions.signed_request import DidText, SignedRequest, sign_request

ContainerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]


class UnlockRequest(SignedRequest):
    """Session Request Packet: who asks, for which container, in which role."""

    signer_field: ClassVar[str] = "accessor"

    type: Literal["UnlockRequest"]
    accessor: DidText
    container: ContainerId
    role: Literal["reader", "writer", "auditor"]


def sign_unlock_request(
    account: Account, chain_id: int, host_did: str, container: str, role: Role, now: datetime
) -> dict[str, object]:
    body = {
        "type": "UnlockRequest",
        "accessor": did_for(chain_id, account.address),
        "container": container,
        "role": role.value,
    }
    return sign_request(account, chain_id, body, host_did, now)


class SessionScope(BaseModel):
    container: str
    uri: str
    role: Literal["reader", "writer", "auditor"]


class Session(BaseModel):
    """Session Acceptance: the token to present, what it covers and until when."""

    token: str
    scope: SessionScope
    expires: AwareDatetime
    grant: str = Field(description="`owner`, the AC hash or `group:<name>` that allowed it")


class RefusalReason(BaseModel):
    code: str
    message: str


class UnlockResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type: Literal["UnlockResponse"] = "UnlockResponse"
    request_id: str | None = Field(default=None, alias="requestId")
    accepted: bool
    session: Session | None = None
    reason: RefusalReason | None = None
    dbc: str | None = Field(default=None, description="hash of the host's DBC for the data type")

    @classmethod
    def rejected(cls, request_id: str | None, refusal: Refusal) -> UnlockResponse:
        return cls(
            request_id=request_id,
            accepted=False,
            reason=RefusalReason(code=refusal.reason.value, message=refusal.message),
        )
