"""OCPP 2.1: the 2.0.1 functional blocks on 2.1's messages, plus bidirectional power transfer
and the certificate chain status of Plug & Charge.

Any 2.1 action without a handler here is answered with CALLERROR NotImplemented by the link
(`evgi.csms.connection`), never dropped.
"""

from evgi.csms import v201
from evgi.csms.protocol import DIALECTS, OcppVersion
from evgi.csms.v21.bidirectional import Bidirectional
from evgi.csms.v21.plug_and_charge import CertificateChainStatus
from evgi.storage.bidirectional import DerAlarm, EvChargingNeeds


class ChargePoint(Bidirectional, CertificateChainStatus, v201.ChargePoint):
    dialect = DIALECTS[OcppVersion.V21]


__all__ = ["ChargePoint", "DerAlarm", "EvChargingNeeds"]
