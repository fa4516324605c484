"""OCPP 2.0.1: the functional blocks the CSMS implements, written against the dialect's message
modules so that 2.1 runs the same blocks on its own messages."""

from evgi.csms.charge_point import ChargePoint as BaseChargePoint
from evgi.csms.plug_and_charge import PlugAndCharge
from evgi.csms.protocol import DIALECTS, OcppVersion
from evgi.csms.v201.authorization import Authorization
from evgi.csms.v201.availability import Availability
from evgi.csms.v201.data_transfer import DataTransfer
from evgi.csms.v201.firmware import Firmware
from evgi.csms.v201.provisioning import Provisioning
from evgi.csms.v201.remote_control import RemoteControl
from evgi.csms.v201.reservations import Reservations
from evgi.csms.v201.security import Security
from evgi.csms.v201.smart_charging import SmartCharging
from evgi.csms.v201.transactions import Transactions


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
    PlugAndCharge,
    DataTransfer,
    BaseChargePoint,
):
    dialect = DIALECTS[OcppVersion.V201]


__all__ = ["ChargePoint"]
