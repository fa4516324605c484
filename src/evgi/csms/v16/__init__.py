"""OCPP 1.6J: the core, firmware, local list, reservation, smart charging and remote trigger
profiles, and the security extension's notifications."""

from evgi.csms.charge_point import ChargePoint as BaseChargePoint
from evgi.csms.protocol import DIALECTS, OcppVersion
from evgi.csms.v16.authorization import Authorization
from evgi.csms.v16.availability import Availability
from evgi.csms.v16.data_transfer import DataTransfer
from evgi.csms.v16.firmware import Firmware
from evgi.csms.v16.provisioning import Provisioning
from evgi.csms.v16.remote_control import RemoteControl
from evgi.csms.v16.reservations import Reservations
from evgi.csms.v16.security import Security
from evgi.csms.v16.smart_charging import SmartCharging
from evgi.csms.v16.transactions import Transactions


class ChargePoint(
    Provisioning,
    Authorization,
    Availability,
    Transactions,
    RemoteControl,
    SmartCharging,
    Reservations,
    Firmware,
    Security,
    DataTransfer,
    BaseChargePoint,
):
    dialect = DIALECTS[OcppVersion.V16]


__all__ = ["ChargePoint"]
