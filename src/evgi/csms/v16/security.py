"""1.6 security extension: security events the station reports."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import parse_time


class Security(ChargePoint):
    @on(Action.security_event_notification)
    async def on_security_event(self, type: str, timestamp: str, tech_info: str | None = None,
                                **_: Any) -> call_result.SecurityEventNotification:
        await self.record_security_event(type, parse_time(timestamp), tech_info)
        return call_result.SecurityEventNotification()
