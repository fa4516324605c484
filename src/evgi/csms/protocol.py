"""The OCPP-J versions the CSMS speaks, and what differs between them on the wire.

OCPP-J names some CALLERROR codes differently per version (1.6 keeps its errata's
"FormationViolation" and "OccurenceConstraintViolation"), and only 2.x has codes for broken RPC
frames and unknown message types. Everything version-specific about framing lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType

from ocpp.exceptions import OCPPError
from ocpp.v16 import call as v16_call
from ocpp.v16 import call_result as v16_call_result
from ocpp.v16.enums import Action as V16Action
from ocpp.v21 import call as v21_call
from ocpp.v21 import call_result as v21_call_result
from ocpp.v21.enums import Action as V21Action
from ocpp.v201 import call as v201_call
from ocpp.v201 import call_result as v201_call_result
from ocpp.v201.enums import Action as V201Action


class OcppVersion(StrEnum):
    """A WebSocket subprotocol name; the server prefers the newest one a station offers."""

    V21 = "ocpp2.1"
    V201 = "ocpp2.0.1"
    V16 = "ocpp1.6"


@dataclass(frozen=True)
class Dialect:
    """The wire details of one OCPP version."""

    version: OcppVersion
    schema_folder: str  # folder of the JSON schemas inside the `ocpp` package
    request_suffix: str  # 1.6 request schemas carry no "Request" suffix
    actions: frozenset[str]
    call: ModuleType
    call_result: ModuleType
    formation_violation: str
    occurrence_violation: str
    rpc_framework_error: str  # frame that is not an RPC message at all
    message_type_not_supported: str
    rpc_rule_violation: str  # a second call in flight, a message id used twice
    unanswered_types: frozenset[int]  # message types that must never be answered


DIALECTS: dict[OcppVersion, Dialect] = {
    OcppVersion.V16: Dialect(
        OcppVersion.V16,
        "v16",
        "",
        frozenset(V16Action),
        v16_call,
        v16_call_result,
        formation_violation="FormationViolation",
        occurrence_violation="OccurenceConstraintViolation",
        rpc_framework_error="FormationViolation",
        message_type_not_supported="FormationViolation",
        rpc_rule_violation="GenericError",
        unanswered_types=frozenset(),
    ),
    OcppVersion.V201: Dialect(
        OcppVersion.V201,
        "v201",
        "Request",
        frozenset(V201Action),
        v201_call,
        v201_call_result,
        formation_violation="FormatViolation",
        occurrence_violation="OccurenceConstraintViolation",
        rpc_framework_error="RpcFrameworkError",
        message_type_not_supported="MessageTypeNotSupported",
        rpc_rule_violation="RpcFrameworkError",
        unanswered_types=frozenset(),
    ),
    OcppVersion.V21: Dialect(
        OcppVersion.V21,
        "v21",
        "Request",
        frozenset(V21Action),
        v21_call,
        v21_call_result,
        formation_violation="FormatViolation",
        occurrence_violation="OccurrenceConstraintViolation",
        rpc_framework_error="RpcFrameworkError",
        message_type_not_supported="MessageTypeNotSupported",
        rpc_rule_violation="RpcFrameworkError",
        # CALLRESULTERROR (5) and SEND (6) are new in 2.1 and expect no answer.
        unanswered_types=frozenset({5, 6}),
    ),
}

SUBPROTOCOLS: tuple[str, ...] = tuple(v.value for v in OcppVersion)


class CallFailure(OCPPError):  # type: ignore[misc]  # the library is untyped
    """A CALLERROR with any code: the `ocpp` library has one class per code, and lacks 2.x's
    RpcFrameworkError and MessageTypeNotSupported, whose codes also depend on the version."""

    code = "GenericError"

    def __init__(self, code: str, description: str, details: dict[str, object] | None = None):
        super().__init__(description, details)
        self.code = code
