"""OCPP 2.1: the 2.0.1 station's behaviour bound to 2.1's payload classes and schemas.

Every message the simulator exchanges exists in 2.1 with the shape it has in 2.0.1 (2.1 adds
optional fields and new messages around them), so only the version binding differs.
"""

from __future__ import annotations

import ocpp.v21

from evgi.sim.stations.v201 import Ocpp2Station


class Station21(Ocpp2Station):
    """A charging station speaking OCPP 2.1."""

    version = "2.1"
    subprotocol = "ocpp2.1"
    _call = ocpp.v21.call
    _call_result = ocpp.v21.call_result
    _types = ocpp.v21.datatypes
    _ocpp_version = "2.1"
