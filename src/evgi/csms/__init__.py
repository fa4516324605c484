"""CSMS: the OCPP 1.6J / 2.0.1 / 2.1 server for charging stations, and its command service."""

from evgi.csms.authorization import (
    AuthorizationHook,
    AuthorizationRequest,
    Refusal,
    TokenDecision,
)
from evgi.csms.charge_point import VariableRef
from evgi.csms.commands import Commands
from evgi.csms.composite_schedule import CompositeSchedule, SchedulePeriod
from evgi.csms.connection import wire_body
from evgi.csms.errors import StationCallError, StationOffline, StationTimeout, UnsupportedCommand
from evgi.csms.events import (
    MeterValuesReceived,
    StationBooted,
    StationStatusChanged,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from evgi.csms.plug_and_charge import (
    PNC_VENDOR,
    V2G_CERTIFICATE,
    PnCRefusal,
    decode_exi,
    encode_exi,
)
from evgi.csms.protocol import OcppVersion
from evgi.csms.registry import StationRegistry
from evgi.csms.server import OcppServer
from evgi.csms.system import BOOT_STATUSES, TOKEN_STATUSES, Csms, ocpp_tls

__all__ = [
    "BOOT_STATUSES",
    "PNC_VENDOR",
    "TOKEN_STATUSES",
    "V2G_CERTIFICATE",
    "AuthorizationHook",
    "AuthorizationRequest",
    "Commands",
    "CompositeSchedule",
    "Csms",
    "MeterValuesReceived",
    "OcppServer",
    "OcppVersion",
    "PnCRefusal",
    "Refusal",
    "SchedulePeriod",
    "StationBooted",
    "StationCallError",
    "StationOffline",
    "StationRegistry",
    "StationStatusChanged",
    "StationTimeout",
    "TokenDecision",
    "TransactionEnded",
    "TransactionStarted",
    "TransactionUpdated",
    "UnsupportedCommand",
    "VariableRef",
    "decode_exi",
    "encode_exi",
    "ocpp_tls",
    "wire_body",
]
