"""2.x security: security events, and the station certificate the CSMS CA signs (A02/A03).

V2G certificates are the Plug & Charge PKI's to sign, not the CSMS CA's: the CPO sub-CA of the
ISO 15118 hierarchies signs them (`evgi.csms.plug_and_charge`).
"""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import parse_time
from evgi.csms.plug_and_charge import V2G_CERTIFICATE, sign_v2g

STATION_CERTIFICATE = "ChargingStationCertificate"


class Security(ChargePoint):
    @on(Action.security_event_notification)
    async def on_security_event(
        self, type: str, timestamp: str, tech_info: str | None = None, **_: Any
    ) -> Any:
        await self.record_security_event(type, parse_time(timestamp), tech_info)
        return self.dialect.call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(
        self, csr: str, certificate_type: str | None = None, **_: Any
    ) -> Any:
        answer = self.dialect.call_result.SignCertificate
        if certificate_type == V2G_CERTIFICATE:
            return answer(**await sign_v2g(self, csr))
        if certificate_type not in (None, STATION_CERTIFICATE):
            return answer(
                status="Rejected",
                status_info={
                    "reason_code": "UnsupportedCertType",
                    "additional_info": f"this CA signs only {STATION_CERTIFICATE} requests",
                },
            )
        refusal = await self.sign_certificate(csr)
        if refusal is None:
            return answer(status="Accepted")
        return answer(
            status="Rejected",
            status_info={
                "reason_code": "InvalidCSR",
                "additional_info": refusal.message[:512],
            },
        )

    async def certificate_signed(self, chain: str) -> Any:
        return await self.call(
            self.dialect.call.CertificateSigned(
                certificate_chain=chain, certificate_type=STATION_CERTIFICATE
            )
        )
