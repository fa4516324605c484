"""2.1's Plug & Charge additions over 2.0.1's block M: GetCertificateChainStatus, by which a
station asks the CSMS the OCSP or CRL status of the certificates of a chain (an ISO 15118-20
EV's, say) in one message."""

from __future__ import annotations

from typing import Any

from ocpp.v21.enums import Action

from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.plug_and_charge import get_certificate_chain_status


class CertificateChainStatus(ChargePoint):
    @on(Action.get_certificate_chain_status)
    async def on_get_certificate_chain_status(
        self, certificate_status_requests: list[dict[str, Any]], **_: Any
    ) -> Any:
        answer = await get_certificate_chain_status(self, certificate_status_requests)
        return self.dialect.call_result.GetCertificateChainStatus(certificate_status=answer)
