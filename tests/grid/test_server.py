"""Acceptance: an independent 2030.5 client over real mutual TLS against `evgi serve`."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evgi.core.clock import SystemClock
from evgi.grid import EndDevices
from tests.grid.conftest import GridSite
from tests.grid.sep_client import SEP, href, text, tls_context


def _now() -> int:
    return int(time.time())


def _end_device(sfdi: int, lfdi: str | None = None) -> str:
    lfdi_element = f"<lFDI>{lfdi}</lFDI>" if lfdi else ""
    return (
        f'<EndDevice xmlns="urn:ieee:std:2030.5:ns">{lfdi_element}<sFDI>{sfdi}</sFDI>'
        f"<changedTime>{_now()}</changedTime></EndDevice>"
    )


def _der_status(connect: int = 1, charge: int = 5000) -> str:
    return (
        '<DERStatus xmlns="urn:ieee:std:2030.5:ns">'
        f"<genConnectStatus><dateTime>{_now()}</dateTime><value>0{connect}</value></genConnectStatus>"
        f"<readingTime>{_now()}</readingTime>"
        f"<stateOfChargeStatus><dateTime>{_now()}</dateTime><value>{charge}</value>"
        "</stateOfChargeStatus></DERStatus>"
    )


def test_device_discovers_registers_reads_and_reports(grid_site: GridSite) -> None:
    site = grid_site
    programs = site.programs
    now = datetime.now(UTC)
    curve = programs.create_curve(
        "utility",
        "opModVoltVar",
        [(9200, 3000), (9670, 0), (10300, 0), (10800, -3000)],
        x_multiplier=-2,  # 92.00 % of VRef ...
        y_multiplier=-2,  # ... to 30.00 % of the var reference
        y_ref_type=2,
    )
    limit = programs.create_control("utility", {"opModMaxLimW": 5000}, now, 3600, "limit")
    volt_var = programs.create_control(
        "utility",
        {"opModVoltVar": {"href": curve}, "opModConnect": True},
        now + timedelta(hours=2),
        600,
        "volt-var",
        60,
        30,
    )
    older = programs.create_control("utility", {"opModMaxLimW": 0}, now + timedelta(hours=4), 600)
    newer = programs.create_control(
        "utility", {"opModMaxLimW": 2000}, now + timedelta(hours=4, minutes=5), 600
    )
    export = programs.create_control(
        "aggregator", {"opModFixedW": -5000}, now - timedelta(minutes=1), 1800, "discharge"
    )
    later = programs.create_control(
        "aggregator", {"opModEnergize": False}, now + timedelta(hours=3), 60
    )
    programs.cancel_control(later)

    evse = site.devices["evse-1"]
    client = site.client("evse-1")
    try:
        dcap = client.get("/dcap")
        assert dcap.tag == f"{{{SEP['s']}}}DeviceCapability"
        time_doc = client.get(href(dcap, "s:TimeLink"))
        assert abs(int(text(time_doc, "s:currentTime")) - _now()) < 60

        devices_href = href(dcap, "s:EndDeviceListLink")
        registered = client.status("POST", devices_href, _end_device(evse.sfdi, evse.lfdi))
        assert registered.status_code == 201, registered.text
        own = registered.headers["Location"]
        listing = client.get(f"{devices_href}?l=10")
        assert listing.get("results") == "1" and listing.get("all") == "1"
        assert text(listing, "s:EndDevice/s:lFDI") == evse.lfdi
        device = client.get(own)
        assert text(device, "s:sFDI") == str(evse.sfdi)
        assert text(client.get(href(device, "s:RegistrationLink")), "s:pIN") == "111115"

        fsa_list = client.get(href(device, "s:FunctionSetAssignmentsListLink") + "?l=10")
        program_list = client.get(
            href(fsa_list, "s:FunctionSetAssignments/s:DERProgramListLink") + "?l=10"
        )
        assert [text(p, "s:description") for p in program_list.findall("s:DERProgram", SEP)] == [
            "utility",
            "aggregator",
        ]
        utility, aggregator = program_list.findall("s:DERProgram", SEP)
        assert text(utility, "s:primacy") == "1"
        default = client.get(href(utility, "s:DefaultDERControlLink"))
        assert text(default, "s:DERControlBase/s:opModMaxLimW") == "10000"

        controls = client.get(href(utility, "s:DERControlListLink") + "?l=10")
        by_mrid = {text(c, "s:mRID"): c for c in controls.findall("s:DERControl", SEP)}
        status = {mrid: text(c, "s:EventStatus/s:currentStatus") for mrid, c in by_mrid.items()}
        # active, scheduled, superseded by a newer overlapping event of the same program
        assert status == {limit: "1", volt_var: "0", older: "4", newer: "0"}
        assert text(by_mrid[limit], "s:DERControlBase/s:opModMaxLimW") == "5000"
        assert text(by_mrid[volt_var], "s:randomizeStart") == "60"
        assert text(by_mrid[volt_var], "s:randomizeDuration") == "30"
        curve_href = href(by_mrid[volt_var], "s:DERControlBase/s:opModVoltVar")
        curve_doc = client.get(curve_href)
        assert text(curve_doc, "s:curveType") == "11"
        assert len(curve_doc.findall("s:CurveData", SEP)) == 4

        theirs = client.get(href(aggregator, "s:DERControlListLink") + "?l=10")
        states = {
            text(c, "s:mRID"): (
                text(c, "s:EventStatus/s:currentStatus"),
                text(c, "s:EventStatus/s:potentiallySuperseded"),
            )
            for c in theirs.findall("s:DERControl", SEP)
        }
        assert states[export] == ("1", "true")  # the utility's events outrank it
        assert states[later][0] == "2"  # cancelled
        active = client.get(href(utility, "s:ActiveDERControlListLink") + "?l=10")
        assert active.get("all") == "1"

        der = client.get(href(device, "s:DERListLink") + "?l=1").find("s:DER", SEP)
        assert der is not None
        status_href = href(der, "s:DERStatusLink")
        assert client.status("PUT", status_href, _der_status(charge=4200)).status_code == 201
        assert client.status("PUT", status_href, _der_status(charge=4100)).status_code == 204
        assert text(client.get(status_href), "s:stateOfChargeStatus/s:value") == "4100"
        capability = (
            '<DERCapability xmlns="urn:ieee:std:2030.5:ns">'
            "<modesSupported>00500088</modesSupported>"
            "<rtgMaxW><multiplier>3</multiplier><value>11</value></rtgMaxW><type>80</type>"
            "</DERCapability>"
        )
        assert client.status("PUT", href(der, "s:DERCapabilityLink"), capability).status_code == 201

        response = (
            '<DERControlResponse xmlns="urn:ieee:std:2030.5:ns">'
            f"<createdDateTime>{_now()}</createdDateTime><endDeviceLFDI>{evse.lfdi}</endDeviceLFDI>"
            f"<status>1</status><subject>{limit}</subject></DERControlResponse>"
        )
        reply_to = by_mrid[limit].get("replyTo")
        assert client.status("POST", reply_to, response).status_code == 201

        mirror = (
            '<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns">'
            "<mRID>AA01000000000000000000000000BEEF</mRID>"
            "<description>evse meter</description><roleFlags>49</roleFlags>"
            "<serviceCategoryKind>0</serviceCategoryKind><status>1</status>"
            f"<deviceLFDI>{evse.lfdi}</deviceLFDI>"
            "<MirrorMeterReading><mRID>AA02000000000000000000000000BEEF</mRID>"
            "<description>power</description>"
            f"<Reading><timePeriod><duration>0</duration><start>{_now()}</start></timePeriod>"
            "<value>-3600</value></Reading>"
            "<ReadingType><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38</uom></ReadingType>"
            "</MirrorMeterReading></MirrorUsagePoint>"
        )
        mup_list = href(dcap, "s:MirrorUsagePointListLink")
        created = client.status("POST", mup_list, mirror)
        assert created.status_code == 201, created.text
        point = created.headers["Location"]
        energy = (
            '<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns">'
            "<mRID>AA03000000000000000000000000BEEF</mRID>"
            "<description>energy</description><Reading><value>12345</value></Reading>"
            "<ReadingType><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>72</uom></ReadingType>"
            "</MirrorMeterReading>"
        )
        assert client.status("POST", point, energy).status_code == 201
        assert client.status("POST", point, energy.replace("12345", "12400")).status_code == 204
        mirrored = client.get(point)
        values = {
            text(r, "s:description"): text(r, "s:Reading/s:value")
            for r in mirrored.findall("s:MirrorMeterReading", SEP)
        }
        assert values == {"power": "-3600", "energy": "12400"}

        log_event = (
            '<LogEvent xmlns="urn:ieee:std:2030.5:ns">'
            f"<createdDateTime>{_now()}</createdDateTime><details>ride-through</details>"
            "<functionSet>11</functionSet><logEventCode>3</logEventCode><logEventID>7</logEventID>"
            "<logEventPEN>0</logEventPEN><profileID>0</profileID></LogEvent>"
        )
        assert (
            client.status("POST", href(device, "s:LogEventListLink"), log_event).status_code == 201
        )
        assert client.get(href(device, "s:LogEventListLink") + "?l=5").get("all") == "1"
    finally:
        client.close()

    # What the operator sees: the device's last status, its telemetry and its response.
    report = {r.lfdi: r for r in EndDevices(site.programs.store, SystemClock()).reports()}[
        evse.lfdi
    ]
    assert report.documents["ders"]["stateOfChargeStatus.value"] == "4100"
    assert report.telemetry["energy"]["value"] == 12400
    assert [r.status for r in site.programs.store.responses(subject=limit)] == [1]


def test_devices_see_only_their_own_resources(grid_site: GridSite) -> None:
    site = grid_site
    one = site.devices["evse-1"]
    first, second = site.client("evse-1"), site.client("evse-2")
    try:
        ders = f"/edev/{one.sfdi}/der/1/ders"
        assert first.status("PUT", ders, _der_status()).status_code == 201
        # Another device's EndDevice and DER resources do not exist for evse-2.
        for path in (f"/edev/{one.sfdi}", ders, f"/edev/{one.sfdi}/rg", f"/edev/{one.sfdi}/sub"):
            assert second.status("GET", path).status_code == 404, path
        assert second.status("PUT", ders, _der_status(connect=0)).status_code == 404
        # evse-2's own list holds only itself.
        assert second.get("/edev?l=10").get("all") == "1"
        # A client cannot register, or respond, as another device.
        assert second.status("POST", "/edev", _end_device(one.sfdi, one.lfdi)).status_code == 403
        control = site.programs.create_control(
            "utility", {"opModMaxLimW": 8000}, datetime.now(UTC), 60
        )
        forged = (
            '<DERControlResponse xmlns="urn:ieee:std:2030.5:ns">'
            f"<endDeviceLFDI>{one.lfdi}</endDeviceLFDI><status>4</status>"
            f"<subject>{control}</subject></DERControlResponse>"
        )
        assert second.status("POST", "/rsp", forged).status_code == 403
        assert first.get(ders).find("s:genConnectStatus", SEP) is not None
        assert text(first.get(ders), "s:genConnectStatus/s:value") == "01"
    finally:
        first.close()
        second.close()


def test_refusals_keep_the_server_serving(grid_site: GridSite) -> None:
    site = grid_site
    evse = site.devices["evse-1"]
    client = site.client("evse-1")
    stranger = site.client("stranger")
    try:
        ders = f"/edev/{evse.sfdi}/der/1/ders"
        assert client.status("PUT", ders, _der_status(charge=7000)).status_code == 201
        malformed = client.status(
            "PUT", ders, "<DERStatus xmlns='urn:ieee:std:2030.5:ns'><readingTime>"
        )
        assert malformed.status_code == 400 and "malformed" in malformed.text
        wrong_type = client.status(
            "PUT",
            ders,
            "<DERStatus xmlns='urn:ieee:std:2030.5:ns'><readingTime>1</readingTime></DERStatus>",
            "application/json",
        )
        assert wrong_type.status_code == 415
        if site.schema is not None:
            invalid = client.status(
                "PUT",
                ders,
                "<DERStatus xmlns='urn:ieee:std:2030.5:ns'>"
                "<readingTime>soon</readingTime></DERStatus>",
            )
            assert invalid.status_code == 400 and "not valid" in invalid.text
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<DERStatus xmlns="urn:ieee:std:2030.5:ns"><readingTime>&x;</readingTime></DERStatus>'
        )
        assert client.status("PUT", ders, bomb).status_code == 400
        other_root = client.status("PUT", ders, _end_device(evse.sfdi))
        assert other_root.status_code == 400
        no_sfdi = client.status(
            "POST",
            "/edev",
            "<EndDevice xmlns='urn:ieee:std:2030.5:ns'><changedTime>1</changedTime></EndDevice>",
        )
        assert no_sfdi.status_code == 400
        # Nothing stored was lost to the bad documents.
        assert text(client.get(ders), "s:stateOfChargeStatus/s:value") == "7000"

        # A certificate of the grid CA whose LFDI the operator never admitted.
        unknown = site.devices["stranger"]
        assert stranger.status("GET", "/derp?l=5").status_code == 403
        assert stranger.status("GET", f"/edev/{unknown.sfdi}").status_code == 404
        assert stranger.status("POST", "/edev", _end_device(unknown.sfdi)).status_code == 403
        assert stranger.get("/edev?l=5").get("all") == "0"

        # Certificates not from the grid CA, or none at all, never finish the handshake.
        certificate, key = _foreign_identity(site.folder)
        for context in (
            tls_context(site.ca, certificate, key),
            tls_context(site.ca, None, None),
        ):
            with (
                pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
                httpx.Client(verify=context) as outsider,
            ):
                outsider.get(f"{site.base}/dcap")

        # The server still serves, with the 2030.5 cipher suite on TLS 1.2.
        assert client.get("/dcap") is not None
        context = tls_context(site.ca, evse.certificate, evse.key)
        with (
            socket.create_connection(("127.0.0.1", site.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0] == (
                "ECDHE-ECDSA-AES128-CCM8" if _offers_ccm8() else "ECDHE-ECDSA-AES128-GCM-SHA256"
            )
    finally:
        client.close()
        stranger.close()


def _offers_ccm8() -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("ECDHE-ECDSA-AES128-CCM8")
    except ssl.SSLError:
        return False
    return True


def _foreign_identity(folder: Path) -> tuple[Path, Path]:
    """A P-256 client certificate from a CA the grid server has never heard of."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("intruder"))
        .issuer_name(name("rogue CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "intruder.pem", folder / "intruder.key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path
