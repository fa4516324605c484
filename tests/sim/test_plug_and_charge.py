"""The Plug & Charge part of the demo on its own: the foundation's vehicles get contracts
installed through a 2.0.1 and a 1.6 station, charge by contract, and the one whose contract
the MO revoked is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from evgi.app import open_platform
from evgi.config import Settings
from evgi.csms import decode_exi, encode_exi
from evgi.pnc import ContractKey, Hierarchies, InstallationError
from evgi.sim.plug_and_charge import ECOSYSTEM, PlugAndChargePart
from evgi.sim.report import Report
from evgi.sim.scenario import FoundationScenario
from evgi.sim.stations.contract import ContractVehicle
from evgi.storage import open_database


def test_plug_and_charge_part(tmp_path: Path) -> None:
    platform = open_platform(Settings(data_dir=tmp_path / "data"))
    report = Report("Plug & Charge")
    try:
        scenario = FoundationScenario(platform, report)
        scenario.service_providers()
        scenario.drivers_and_vehicles()
        for _, step in PlugAndChargePart(scenario).steps():
            step()
    finally:
        platform.close()
    assert report.ok, report.failures
    (section,) = [s for s in report.sections if s.title.startswith("Plug & Charge")]
    rows = [
        (r["vehicle"], r["version"], r["installation"], r["certificate"], r["authorization"])
        for r in section.rows
    ]
    assert rows == [
        ("vehicle-1", "2.0.1", "Accepted", "Accepted", "Accepted"),
        ("vehicle-2", "1.6", "Accepted", "Accepted", "Accepted"),
        ("vehicle-3", "2.0.1", "Accepted", "CertificateRevoked", "Invalid"),
    ]
    charged = [r["energy Wh"] for r in section.rows]
    assert charged[0] > 0 and charged[1] > 0 and charged[2] == 0
    assert section.rows[2]["transaction"] == ""
    assert all(r["eMAID"].startswith("NLRPYC") and len(r["PCID"]) == 18 for r in section.rows)
    assert section.data["messages_checked"] > 10


def test_vehicle_refuses_what_is_no_contract(tmp_path: Path) -> None:
    """An answer that is not a signed installation response installs nothing."""
    settings = Settings(data_dir=tmp_path / "data")
    engine = open_database(settings.db_url)
    try:
        hierarchies = Hierarchies(settings, engine)
        hierarchies.init(ECOSYSTEM)
        provisioning = hierarchies.issue_provisioning("DEAURPC00000000991")
        key = provisioning.private_key
        assert isinstance(key, ContractKey)
        vehicle = ContractVehicle(key, provisioning.chain, hierarchies.roots())
        with pytest.raises(InstallationError, match="no contract installed"):
            vehicle.authorize_request()
        with pytest.raises(InstallationError, match="unreadable"):
            vehicle.install("not base64!")
        with pytest.raises(InstallationError, match="lacks"):
            vehicle.install(encode_exi({"profile": "iso15118-2"}))
        assert vehicle.contract is None
        request = vehicle.installation_request()
        assert request["action"] == "Install"
        assert decode_exi(request["exiRequest"])["oemProvisioningCert"]
    finally:
        engine.dispose()
