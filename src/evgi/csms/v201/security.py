"""2.x security: security events the station reports."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import parse_time


class Security(ChargePoint):
    @on(Action.security_event_notification)
    async def on_security_event(self, type: str, timestamp: str, tech_info: str | None = None,
                                **_: Any) -> Any:
        await self.record_security_event(type, parse_time(timestamp), tech_info)
        return self.dialect.call_result.SecurityEventNotification()
