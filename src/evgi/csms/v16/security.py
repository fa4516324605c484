"""1.6 security extension: security events, and the station certificate the CSMS CA signs."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, GenericStatus

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import parse_time


class Security(ChargePoint):
    @on(Action.security_event_notification)
    async def on_security_event(
        self, type: str, timestamp: str, tech_info: str | None = None, **_: Any
    ) -> call_result.SecurityEventNotification:
        await self.record_security_event(type, parse_time(timestamp), tech_info)
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **_: Any) -> call_result.SignCertificate:
        refusal = await self.sign_certificate(csr)
        return call_result.SignCertificate(
            status=GenericStatus.rejected if refusal else GenericStatus.accepted
        )

    async def certificate_signed(self, chain: str) -> Any:
        return await self.call(call.CertificateSigned(certificate_chain=chain))
