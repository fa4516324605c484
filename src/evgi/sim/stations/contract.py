"""A vehicle's ISO 15118 identity, as a station relays it: the OEM provisioning certificate
the vehicle leaves the factory with, the V2G roots it trusts, and the contract it gets
installed through a station and then authorizes with (Plug & Charge).

CertificateInstallationReq/Res travel in OCPP's exiRequest/exiResponse in the form
`evgi.csms.plug_and_charge` documents.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.csms import PnCRefusal, decode_exi, encode_exi
from evgi.pnc import (
    CertificateInstallationResponse,
    ContractKey,
    InstallationError,
    InstalledContract,
    install_contract,
    provisioning_pcid,
    update_contract,
)

ISO15118_2_SCHEMA = "urn:iso:15118:2:2013:MsgDef"


@dataclass
class ContractVehicle:
    """The EV's side of Plug & Charge: provisioning key and chain (leaf first), trusted V2G
    roots, and the installed contract once there is one."""

    provisioning_key: ContractKey
    provisioning_chain: Sequence[x509.Certificate]
    v2g_roots: Sequence[x509.Certificate]
    contract: InstalledContract | None = field(default=None)

    @property
    def pcid(self) -> str:
        return provisioning_pcid(self.provisioning_chain[0])

    @property
    def emaid(self) -> str | None:
        return None if self.contract is None else self.contract.emaid

    def installation_request(self) -> dict[str, Any]:
        """Get15118EVCertificate's body (camelCase) carrying the CertificateInstallationReq."""
        der = self.provisioning_chain[0].public_bytes(serialization.Encoding.DER)
        exi = encode_exi({"oemProvisioningCert": base64.b64encode(der).decode()})
        return {"iso15118SchemaVersion": ISO15118_2_SCHEMA, "action": "Install", "exiRequest": exi}

    def install(self, exi_response: str) -> InstalledContract:
        """Check the CPS signature against the vehicle's V2G roots, decrypt the contract key."""
        response = _contract_data(exi_response)
        self.contract = install_contract(response, self.provisioning_key, self.pcid, self.v2g_roots)
        return self.contract

    def update_request(self) -> dict[str, Any]:
        """Get15118EVCertificate's body (camelCase) carrying the CertificateUpdateReq: the
        installed contract's chain and eMAID, signed with its key (ISO 15118-2)."""
        exi = encode_exi(self._installed().update_request().to_json())
        return {"iso15118SchemaVersion": ISO15118_2_SCHEMA, "action": "Update", "exiRequest": exi}

    def update(self, exi_response: str) -> InstalledContract:
        """Check the CPS signature, decrypt the new contract key with the current one's."""
        response = _contract_data(exi_response)
        self.contract = update_contract(response, self._installed(), self.v2g_roots)
        return self.contract

    def _installed(self) -> InstalledContract:
        if self.contract is None:
            raise InstallationError(f"vehicle {self.pcid} has no contract installed")
        return self.contract

    def authorize_request(self) -> dict[str, Any]:
        """Authorize's body (camelCase): the eMAID and the contract chain, PEM."""
        contract = self._installed()
        chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in contract.chain)
        return {
            "idToken": {"idToken": contract.emaid, "type": "eMAID"},
            "certificate": chain,
        }


def _contract_data(exi_response: str) -> CertificateInstallationResponse:
    try:
        body = decode_exi(exi_response)
    except PnCRefusal as exc:
        raise InstallationError(f"unreadable contract response: {exc.message}") from exc
    return CertificateInstallationResponse.from_json(body)
