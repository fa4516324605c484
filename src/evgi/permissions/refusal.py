"""Why the permissioning subsystem says no: a stable reason code, a message and an HTTP status.

Messages name only what the asker sent or may know (its own DID, the certificate it relies on);
never data content, other accessors or the owner's other permissions.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ValidationError as PydanticValidationError

from evgi.core.errors import PermissionDenied


class Reason(StrEnum):
    MALFORMED = "malformed"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    REPLAYED = "replayed"
    WRONG_HOST = "wrong_host"
    UNKNOWN_CONTAINER = "unknown_container"
    NOT_ONBOARDED = "not_onboarded"
    OFFBOARDED = "offboarded"
    BLOCKED = "blocked"
    NOT_GRANTED = "not_granted"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NOT_ANCHORED = "not_anchored"
    OTHER_HOST = "other_host"
    DATA_TYPE = "data_type"
    BAD_TOKEN = "bad_token"
    SESSION_EXPIRED = "session_expired"
    OUT_OF_SCOPE = "out_of_scope"
    INVALID_DATA = "invalid_data"


STATUS: dict[Reason, int] = {
    Reason.MALFORMED: 400,
    Reason.MISSING_SIGNATURE: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.STALE: 401,
    Reason.REPLAYED: 409,
    Reason.WRONG_HOST: 421,
    Reason.UNKNOWN_CONTAINER: 404,
    Reason.NOT_ONBOARDED: 403,
    Reason.OFFBOARDED: 403,
    Reason.BLOCKED: 403,
    Reason.NOT_GRANTED: 403,
    Reason.EXPIRED: 403,
    Reason.REVOKED: 403,
    Reason.NOT_ANCHORED: 400,
    Reason.OTHER_HOST: 403,
    Reason.DATA_TYPE: 403,
    Reason.BAD_TOKEN: 401,
    Reason.SESSION_EXPIRED: 401,
    Reason.OUT_OF_SCOPE: 403,
    Reason.INVALID_DATA: 422,
}


class Refusal(PermissionDenied):
    """A request the host refused; `reason` is for machines, `message` for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def status(self) -> int:
        return STATUS[self.reason]

    def to_json(self) -> dict[str, str]:
        return {"code": self.reason.value, "message": self.message}


def problems(exc: PydanticValidationError) -> str:
    """A pydantic validation error as one line: each field's path and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
