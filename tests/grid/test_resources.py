"""The resource documents: every one the server builds is valid 2030.5, and reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from evgi.core.errors import ConfigError, ValidationError
from evgi.grid import Schema
from evgi.grid.resources import (
    DerControl,
    DerCurve,
    DeviceCapability,
    DocumentError,
    EndDevice,
    LogEvent,
    MirrorMeterReading,
    MirrorUsagePoint,
    Reading,
    Registration,
    Response,
    Subscription,
    check_control_base,
    control_base_of_default,
    default_der_control,
    list_document,
    notification,
    parse_document,
    serialize,
    time_document,
)
from tests.grid.conftest import SEP_XSD

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LFDI = "3E4F45AB31EDFE5B67E343E5E4562E31984E23E5"
MRID = "0123456789ABCDEF0123456700000000"


@pytest.fixture(scope="module")
def schema() -> Schema:
    if not SEP_XSD.exists():
        pytest.skip(f"the IEEE 2030.5 XSD is not at {SEP_XSD}")
    return Schema(SEP_XSD)


def _again(document: etree._Element, schema: Schema) -> etree._Element:
    """Serialize, then parse back through the same checks a peer's document gets."""
    return parse_document(serialize(document), etree.QName(document).localname, schema)


def test_control_documents_round_trip(schema: Schema) -> None:
    base = check_control_base(
        {
            "opModConnect": True,
            "opModFixedPFInjectW": {"displacement": 95, "excitation": False, "multiplier": -2},
            "opModMaxLimW": 5000,
            "opModTargetW": {"multiplier": 1, "value": 1100},
            "opModVoltVar": {"href": "/derp/1/dc/" + MRID},
            "opModFreqDroop": {"dBOF": 36, "dBUF": 36, "kOF": 5, "kUF": 5, "openLoopTms": 500},
        }
    )
    control = DerControl(
        "/derp/1/derc/" + MRID,
        MRID,
        "limit",
        NOW,
        NOW + timedelta(hours=1),
        900,
        base,
        status=1,
        status_time=NOW,
        potentially_superseded=True,
        potentially_superseded_time=NOW,
        randomize_start=-60,
        randomize_duration=120,
        reply_to="/rsp",
    )
    assert DerControl.from_xml(_again(control.to_xml(), schema)) == control
    default = default_der_control("/derp/1/dderc", MRID, base)
    assert control_base_of_default(_again(default, schema)) == base
    curve = DerCurve(
        "/derp/1/dc/" + MRID, MRID, "volt-var", 11, NOW, ((92, 30), (108, -30)), -2, 0, 2
    )
    assert DerCurve.from_xml(_again(curve.to_xml(), schema)) == curve


def test_device_documents_round_trip(schema: Schema) -> None:
    device = EndDevice(
        LFDI,
        167261211391,
        NOW,
        True,
        "/edev/1",
        300,
        {
            "DERListLink": "/edev/1/der",
            "LogEventListLink": "/edev/1/lel",
            "FunctionSetAssignmentsListLink": "/edev/1/fsa",
            "RegistrationLink": "/edev/1/rg",
            "SubscriptionListLink": "/edev/1/sub",
        },
    )
    again = EndDevice.from_xml(_again(device.to_xml(), schema))
    assert (again.lfdi, again.sfdi, again.changed, again.links) == (
        device.lfdi,
        device.sfdi,
        device.changed,
        device.links,
    )
    registration = Registration("/edev/1/rg", NOW, 111115)
    assert Registration.from_xml(_again(registration.to_xml(), schema)) == registration
    capability = DeviceCapability("/dcap", "/tm", "/edev", "/mup")
    assert DeviceCapability.from_xml(_again(capability.to_xml(), schema)) == capability
    response = Response(LFDI, MRID, 2, NOW, "/rsp/1")
    assert Response.from_xml(_again(response.to_xml(), schema)) == response
    reading = MirrorMeterReading(MRID, "power", Reading(-3600, NOW, 0), 38, 0)
    point = MirrorUsagePoint(MRID, "meter", LFDI, "49", 0, 1, (reading,), "/mup/1")
    assert MirrorUsagePoint.from_xml(_again(point.to_xml(), schema)) == point
    subscription = Subscription("/derp/1/derc", "https://127.0.0.1:1/n", 5, "+S1", "/edev/1/sub/1")
    assert Subscription.from_xml(_again(subscription.to_xml(), schema)) == subscription
    event = LogEvent(NOW, 11, 3, 7, 0, 0, "ride-through", "/edev/1/lel/1")
    assert LogEvent.from_xml(_again(event.to_xml(), schema)) == event
    schema.validate(time_document("/tm", NOW))
    listing = list_document("EndDeviceList", "/edev", [device.to_xml()], 1)
    schema.validate(listing)
    schema.validate(notification("/edev/1/sub/1", "/edev", 0, listing))


def test_hostile_and_foreign_documents_are_refused(schema: Schema) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<Time xmlns="urn:ieee:std:2030.5:ns"><currentTime>&b;</currentTime></Time>'
    )
    with pytest.raises(DocumentError, match="document type declaration"):
        parse_document(bomb, "Time", schema)
    with pytest.raises(DocumentError, match="malformed"):
        parse_document(b"<Time", "Time", None)
    with pytest.raises(DocumentError, match="expected a Time"):
        parse_document(b"<Time xmlns='urn:example'/>", "Time", None)
    with pytest.raises(DocumentError, match="not valid"):
        parse_document(b"<Time xmlns='urn:ieee:std:2030.5:ns'/>", "Time", schema)
    with pytest.raises(DocumentError, match="has no sFDI"):
        EndDevice.from_xml(
            parse_document(
                b"<EndDevice xmlns='urn:ieee:std:2030.5:ns'>"
                b"<changedTime>1</changedTime></EndDevice>",
                "EndDevice",
                None,
            )
        )


def test_setpoints_outside_the_2018_schema_are_refused() -> None:
    with pytest.raises(ValidationError, match="opModExpLimW"):
        check_control_base({"opModExpLimW": 5000})
    with pytest.raises(ValidationError, match="true or false"):
        check_control_base({"opModConnect": 1})
    with pytest.raises(ValidationError, match="at least one"):
        check_control_base({})


def test_a_missing_schema_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Schema(tmp_path / "absent.xsd")
