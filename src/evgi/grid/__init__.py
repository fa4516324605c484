"""Grid security layer: the IEEE 2030.5 (CSIP) server of a utility or aggregator, its own
certificate authority, DER programs and the controls they put in force; the EVSE-side client
and the IEEE 1547-2018 inverter functions that keep every consumer setpoint inside the limits.

It imports nothing of the consumer layer (csms, pnc, settlement, v2g, roaming, market), so its
limits hold whatever that layer does.
"""

from evgi.grid.active_power import FrequencyDroop, FrequencyWatt, VoltWatt
from evgi.grid.authority import (
    GridAuthority,
    GridCertificate,
    client_ssl_context,
    grid_authority,
    grid_ca_certificate_path,
    notification_ssl_context,
    read_device_identity,
)
from evgi.grid.client import GridClient, GridUnreachable, NotificationListener, ServerRefused
from evgi.grid.curve import Curve
from evgi.grid.der_programs import DerPrograms
from evgi.grid.end_devices import DeviceReport, EndDevices
from evgi.grid.identifiers import lfdi, normalize_lfdi, sfdi
from evgi.grid.inverter import (
    Command,
    Coupling,
    GridControl,
    Inverter,
    Output,
    Rating,
    Setpoint,
    dispatch,
)
from evgi.grid.reactive_power import ConstantPowerFactor, ConstantVar, VoltVar, WattVar
from evgi.grid.resources import CONTROL_FIELDS, NS, RESPONSE_STATUS, DocumentError, Schema
from evgi.grid.ride_through import (
    CATEGORY_II,
    CATEGORY_III,
    AbnormalCategory,
    Condition,
    EnterService,
    RideThrough,
)
from evgi.grid.schedule import EventState, ScheduledEvent, event_states, in_force
from evgi.grid.server import CsipServer

__all__ = [
    "CATEGORY_II",
    "CATEGORY_III",
    "CONTROL_FIELDS",
    "NS",
    "RESPONSE_STATUS",
    "AbnormalCategory",
    "Command",
    "Condition",
    "ConstantPowerFactor",
    "ConstantVar",
    "Coupling",
    "CsipServer",
    "Curve",
    "DerPrograms",
    "DeviceReport",
    "DocumentError",
    "EndDevices",
    "EnterService",
    "EventState",
    "FrequencyDroop",
    "FrequencyWatt",
    "GridAuthority",
    "GridCertificate",
    "GridClient",
    "GridControl",
    "GridUnreachable",
    "Inverter",
    "NotificationListener",
    "Output",
    "Rating",
    "RideThrough",
    "ScheduledEvent",
    "Schema",
    "ServerRefused",
    "Setpoint",
    "VoltVar",
    "VoltWatt",
    "WattVar",
    "client_ssl_context",
    "dispatch",
    "event_states",
    "grid_authority",
    "grid_ca_certificate_path",
    "in_force",
    "lfdi",
    "normalize_lfdi",
    "notification_ssl_context",
    "read_device_identity",
    "sfdi",
]
