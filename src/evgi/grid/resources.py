"""IEEE 2030.5-2018 resource documents: typed models, their XML form and the schema check.

The server and a device-side client both speak through this module, so one definition of each
document serves both ends. Parsing refuses anything a hostile peer could use against the parser
(entities, DTDs, network access, huge trees) and, when the official schema is configured, any
document the schema refuses; the error names the line and the rule, as 2030.5's 400 should.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from evgi.core.errors import ConfigError, ValidationError

NS = "urn:ieee:std:2030.5:ns"
MEDIA_TYPE = "application/sep+xml"
_Q = f"{{{NS}}}"

# Table 27 of 2030.5: what a device answers to a DERControl.
RESPONSE_STATUS = {
    1: "event received",
    2: "event started",
    3: "event completed",
    4: "opted out",
    5: "opted in",
    6: "event cancelled",
    7: "event superseded",
    8: "partially completed (opt out)",
    9: "partially completed (opt in)",
    10: "completed, no user participation",
    11: "user acknowledged",
    12: "rejected: invalid event",
    13: "rejected: event expired",
    253: "rejected: invalid event",
    254: "rejected: programmed event not supported",
}

# EventStatus.currentStatus
SCHEDULED, ACTIVE, CANCELLED, CANCELLED_RANDOMIZED, SUPERSEDED = 0, 1, 2, 3, 4

# DERCurveType: the curve a DERControlBase field refers to, in the schema's numbering.
CURVE_TYPES = {
    "opModFreqWatt": 0,
    "opModHFRTMayTrip": 1,
    "opModHFRTMustTrip": 2,
    "opModHVRTMayTrip": 3,
    "opModHVRTMomentaryCessation": 4,
    "opModHVRTMustTrip": 5,
    "opModLFRTMayTrip": 6,
    "opModLFRTMustTrip": 7,
    "opModLVRTMayTrip": 8,
    "opModLVRTMomentaryCessation": 9,
    "opModLVRTMustTrip": 10,
    "opModVoltVar": 11,
    "opModVoltWatt": 12,
    "opModWattPF": 13,
    "opModWattVar": 14,
}

# DERControlBase in schema order: each field's name and the shape of its value.
_BOOL, _INT, _POWER, _PF, _FIXED_VAR, _CURVE = "bool", "int", "power", "pf", "fixedvar", "curve"
CONTROL_FIELDS: tuple[tuple[str, str], ...] = (
    ("opModConnect", _BOOL),
    ("opModEnergize", _BOOL),
    ("opModFixedPFAbsorbW", _PF),
    ("opModFixedPFInjectW", _PF),
    ("opModFixedVar", _FIXED_VAR),
    ("opModFixedW", _INT),
    ("opModFreqDroop", "freqdroop"),
    ("opModFreqWatt", _CURVE),
    ("opModHFRTMayTrip", _CURVE),
    ("opModHFRTMustTrip", _CURVE),
    ("opModHVRTMayTrip", _CURVE),
    ("opModHVRTMomentaryCessation", _CURVE),
    ("opModHVRTMustTrip", _CURVE),
    ("opModLFRTMayTrip", _CURVE),
    ("opModLFRTMustTrip", _CURVE),
    ("opModLVRTMayTrip", _CURVE),
    ("opModLVRTMomentaryCessation", _CURVE),
    ("opModLVRTMustTrip", _CURVE),
    ("opModMaxLimW", _INT),
    ("opModTargetVar", _POWER),
    ("opModTargetW", _POWER),
    ("opModVoltVar", _CURVE),
    ("opModVoltWatt", _CURVE),
    ("opModWattPF", _CURVE),
    ("opModWattVar", _CURVE),
    ("rampTms", _INT),
)
_CONTROL_KINDS = dict(CONTROL_FIELDS)
# The parts of the structured DERControlBase values, in schema order.
_PARTS = {
    _POWER: ("multiplier", "value"),
    _PF: ("displacement", "excitation", "multiplier"),
    _FIXED_VAR: ("refType", "value"),
    "freqdroop": ("dBOF", "dBUF", "kOF", "kUF", "openLoopTms"),
    _CURVE: ("href",),
}

ControlValue = bool | int | dict[str, Any]
ControlBase = dict[str, ControlValue]


class DocumentError(ValidationError):
    """A document refused: not XML, not 2030.5, or not valid against the schema (HTTP 400)."""

    code = "bad_document"


class Schema:
    """The official 2030.5-2018 XSD. IEEE's terms do not allow evgi to ship it: its path is
    configured (EVGI_GRID_SCHEMA), and without it documents are checked by the parsers alone."""

    def __init__(self, path: Path) -> None:
        try:
            self._schema = etree.XMLSchema(etree.parse(str(path), _parser()))
        except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise ConfigError(f"cannot load the IEEE 2030.5 schema {path}: {exc}") from exc

    def validate(self, element: etree._Element) -> None:
        try:
            self._schema.assertValid(element)
        except (etree.DocumentInvalid, etree.XMLSchemaValidateError) as exc:
            raise DocumentError(f"not valid IEEE 2030.5: {exc}") from exc


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True
    )


def parse_document(
    body: bytes, expected: str | tuple[str, ...], schema: Schema | None
) -> etree._Element:
    """The root element of `body`, which must be a 2030.5 `expected` (one of them, when several
    are acceptable) and schema-valid when a schema is configured."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"malformed XML: {exc}") from exc
    # DocInfo.doctype is missing from lxml's type stubs, hence getattr.
    if getattr(root.getroottree().docinfo, "doctype", ""):
        # Entities are how XML bombs and file reads get in; 2030.5 documents never need them.
        raise DocumentError("a 2030.5 document carries no document type declaration")
    names = (expected,) if isinstance(expected, str) else expected
    if root.tag not in {_Q + name for name in names}:
        raise DocumentError(f"expected a {' or '.join(names)} in {NS}, got {root.tag}")
    if schema is not None:
        schema.validate(root)
    return root


def serialize(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))


# -- building and reading elements -----------------------------------------------------------


def element(name: str, attributes: Mapping[str, str | None] | None = None) -> etree._Element:
    """A root element of the namespace, with the attributes that are set."""
    root = etree.Element(_Q + name, nsmap={None: NS})  # type: ignore[dict-item]
    for key, value in (attributes or {}).items():
        if value is not None:
            root.set(key, value)
    return root


def _add(parent: etree._Element, name: str, value: object = None) -> etree._Element:
    child = etree.SubElement(parent, _Q + name)
    if value is not None:
        child.text = _text(value)
    return child


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(to_time(value))
    return str(value)


def _link(parent: etree._Element, name: str, href: str, count: int | None = None) -> None:
    link = _add(parent, name)
    link.set("href", href)
    if count is not None:
        link.set("all", str(count))


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return parent.find(_Q + name)


def _required(parent: etree._Element, name: str) -> str:
    found = _child(parent, name)
    if found is None or found.text is None:
        raise DocumentError(f"{etree.QName(parent).localname} has no {name}")
    return found.text.strip()


def _optional(parent: etree._Element, name: str) -> str | None:
    found = _child(parent, name)
    return None if found is None or found.text is None else found.text.strip()


def _required_int(parent: etree._Element, name: str) -> int:
    return _int(_required(parent, name), name)


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise DocumentError(f"{name} must be an integer, not {text!r}") from exc


def _bool(text: str, name: str) -> bool:
    if text not in ("true", "false", "1", "0"):
        raise DocumentError(f"{name} must be a boolean, not {text!r}")
    return text in ("true", "1")


def to_time(moment: datetime) -> int:
    """TimeType: seconds since the Unix epoch, UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; use timezone-aware UTC")
    return int(moment.timestamp())


def from_time(seconds: int | str) -> datetime:
    return datetime.fromtimestamp(_int(str(seconds), "TimeType"), UTC)


def list_document(
    name: str,
    href: str,
    items: Iterable[etree._Element],
    total: int,
    subscribable: bool = True,
    poll_rate: int | None = None,
) -> etree._Element:
    """A 2030.5 list resource holding `items` out of `total` (attributes `all` and `results`)."""
    entries = list(items)
    attributes = {"href": href, "all": str(total), "results": str(len(entries))}
    if subscribable:
        attributes["subscribable"] = "1"
    if poll_rate is not None:
        attributes["pollRate"] = str(poll_rate)
    root = element(name, attributes)
    root.extend(entries)
    return root


def summary(root: etree._Element) -> dict[str, str]:
    """The leaf values of a document as `path: text`, for operators' listings."""
    values: dict[str, str] = {}
    for leaf in root.iter():
        if len(leaf) == 0 and leaf.text is not None and leaf is not root:
            path = [etree.QName(node).localname for node in leaf.iterancestors()][::-1][1:]
            values[".".join([*path, etree.QName(leaf).localname])] = leaf.text
    return values


# -- DERControlBase ----------------------------------------------------------------------------


def check_control_base(base: Mapping[str, Any]) -> ControlBase:
    """A DERControlBase given as JSON (operators, storage), checked field by field."""
    checked: ControlBase = {}
    for name, value in base.items():
        kind = _CONTROL_KINDS.get(name)
        if kind is None:
            raise ValidationError(
                f"{name!r} is not a DERControlBase field of IEEE 2030.5-2018 "
                f"(known: {', '.join(_CONTROL_KINDS)})"
            )
        if kind == _BOOL:
            if not isinstance(value, bool):
                raise ValidationError(f"{name} must be true or false")
            checked[name] = value
        elif kind == _INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{name} must be an integer")
            checked[name] = value
        else:
            parts = _PARTS[kind]
            if not isinstance(value, dict) or not set(value) <= set(parts):
                raise ValidationError(f"{name} must be an object with {', '.join(parts)}")
            checked[name] = dict(value)
    if not checked:
        raise ValidationError("a DERControlBase needs at least one setpoint")
    return checked


def _control_base_xml(parent: etree._Element, base: Mapping[str, ControlValue]) -> None:
    node = _add(parent, "DERControlBase")
    for name, kind in CONTROL_FIELDS:
        if name not in base:
            continue
        value = base[name]
        if kind == _CURVE:
            assert isinstance(value, dict)
            _link(node, name, str(value["href"]))
        elif isinstance(value, dict):
            inner = _add(node, name)
            for part in _PARTS[kind]:
                if part in value:
                    _add(inner, part, value[part])
        else:
            _add(node, name, value)


def _control_base_of(node: etree._Element) -> ControlBase:
    base: ControlBase = {}
    for child in node:
        name = etree.QName(child).localname
        kind = _CONTROL_KINDS.get(name)
        if kind is None:
            raise DocumentError(f"unknown DERControlBase element {name}")
        if kind == _CURVE:
            base[name] = {"href": child.get("href", "")}
        elif kind == _BOOL:
            base[name] = _bool((child.text or "").strip(), name)
        elif kind == _INT:
            base[name] = _int((child.text or "").strip(), name)
        else:
            base[name] = {
                part: (_bool(text, part) if part == "excitation" else _int(text, f"{name}.{part}"))
                for part in _PARTS[kind]
                if (text := _optional(child, part)) is not None
            }
    return base


# -- the resources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCapability:
    """/dcap: where a client finds everything else."""

    href: str
    time: str
    end_devices: str
    mirror_usage_points: str
    poll_rate: int = 900

    def to_xml(self) -> etree._Element:
        root = element("DeviceCapability", {"href": self.href, "pollRate": str(self.poll_rate)})
        _link(root, "TimeLink", self.time)
        _link(root, "EndDeviceListLink", self.end_devices, 1)
        _link(root, "MirrorUsagePointListLink", self.mirror_usage_points)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> DeviceCapability:
        def href(name: str) -> str:
            node = _child(root, name)
            if node is None or not node.get("href"):
                raise DocumentError(f"DeviceCapability has no {name}")
            return str(node.get("href"))

        return cls(
            str(root.get("href", "")),
            href("TimeLink"),
            href("EndDeviceListLink"),
            href("MirrorUsagePointListLink"),
            int(root.get("pollRate", "900")),
        )


def time_document(href: str, now: datetime) -> etree._Element:
    """Time: UTC with no daylight saving; quality 7 is "intentionally uncoordinated" (the
    server's own clock, as 2030.5 names it when no better source is claimed)."""
    root = element("Time", {"href": href, "pollRate": "900"})
    _add(root, "currentTime", now)
    _add(root, "dstEndTime", 0)
    _add(root, "dstOffset", 0)
    _add(root, "dstStartTime", 0)
    _add(root, "quality", 7)
    _add(root, "tzOffset", 0)
    return root


@dataclass(frozen=True)
class EndDevice:
    lfdi: str
    sfdi: int
    changed: datetime
    enabled: bool = True
    href: str | None = None
    post_rate: int | None = None
    links: Mapping[str, str] = field(default_factory=dict)

    def to_xml(self, tag: str = "EndDevice") -> etree._Element:
        root = element(tag, {"href": self.href, "subscribable": "0"})
        self._link(root, "DERListLink", 1)
        _add(root, "lFDI", self.lfdi)
        self._link(root, "LogEventListLink", 1)
        _add(root, "sFDI", self.sfdi)
        _add(root, "changedTime", self.changed)
        _add(root, "enabled", self.enabled)
        self._link(root, "FunctionSetAssignmentsListLink", 1)
        if self.post_rate is not None:
            _add(root, "postRate", self.post_rate)
        self._link(root, "RegistrationLink", None)
        self._link(root, "SubscriptionListLink", 1)
        return root

    def _link(self, root: etree._Element, name: str, count: int | None) -> None:
        if name in self.links:
            _link(root, name, self.links[name], count)

    @classmethod
    def from_xml(cls, root: etree._Element) -> EndDevice:
        lfdi = _optional(root, "lFDI")
        sfdi = _required_int(root, "sFDI")
        links = {
            etree.QName(child).localname: str(child.get("href"))
            for child in root
            if etree.QName(child).localname.endswith("Link") and child.get("href")
        }
        enabled = _optional(root, "enabled")
        return cls(
            (lfdi or "").upper(),
            sfdi,
            from_time(_required(root, "changedTime")),
            True if enabled is None else _bool(enabled, "enabled"),
            root.get("href"),
            None,
            links,
        )


@dataclass(frozen=True)
class Registration:
    href: str
    registered: datetime
    pin: int

    def to_xml(self) -> etree._Element:
        root = element("Registration", {"href": self.href, "pollRate": "86400"})
        _add(root, "dateTimeRegistered", self.registered)
        _add(root, "pIN", self.pin)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> Registration:
        return cls(
            str(root.get("href", "")),
            from_time(_required(root, "dateTimeRegistered")),
            _required_int(root, "pIN"),
        )


def function_set_assignments(
    href: str, mrid: str, programs_href: str, count: int
) -> etree._Element:
    """The one FunctionSetAssignments of a device: its DER programs."""
    root = element("FunctionSetAssignments", {"href": href, "subscribable": "0"})
    _link(root, "DERProgramListLink", programs_href, count)
    _link(root, "TimeLink", "/tm")
    _add(root, "mRID", mrid)
    _add(root, "description", "grid security layer")
    return root


@dataclass(frozen=True)
class DerProgram:
    href: str
    mrid: str
    description: str
    primacy: int
    controls: str
    active_controls: str
    default_control: str | None
    curves: str
    control_count: int = 0
    curve_count: int = 0

    def to_xml(self) -> etree._Element:
        root = element("DERProgram", {"href": self.href, "subscribable": "0"})
        _add(root, "mRID", self.mrid)
        _add(root, "description", self.description)
        _link(root, "ActiveDERControlListLink", self.active_controls)
        if self.default_control is not None:
            _link(root, "DefaultDERControlLink", self.default_control)
        _link(root, "DERControlListLink", self.controls, self.control_count)
        _link(root, "DERCurveListLink", self.curves, self.curve_count)
        _add(root, "primacy", self.primacy)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> DerProgram:
        def href(name: str) -> str | None:
            node = _child(root, name)
            return None if node is None else node.get("href")

        return cls(
            str(root.get("href", "")),
            _required(root, "mRID"),
            _optional(root, "description") or "",
            _required_int(root, "primacy"),
            href("DERControlListLink") or "",
            href("ActiveDERControlListLink") or "",
            href("DefaultDERControlLink"),
            href("DERCurveListLink") or "",
        )


@dataclass(frozen=True)
class DerControl:
    """A DERControl event with its server-side status."""

    href: str
    mrid: str
    description: str
    creation_time: datetime
    start: datetime
    duration: int
    base: ControlBase
    status: int = SCHEDULED
    status_time: datetime | None = None
    potentially_superseded: bool = False
    potentially_superseded_time: datetime | None = None
    randomize_start: int | None = None
    randomize_duration: int | None = None
    reply_to: str | None = None

    def to_xml(self) -> etree._Element:
        root = element(
            "DERControl",
            {
                "href": self.href,
                "replyTo": self.reply_to,
                "responseRequired": "03" if self.reply_to else None,
                "subscribable": "0",
            },
        )
        _add(root, "mRID", self.mrid)
        _add(root, "description", self.description)
        _add(root, "creationTime", self.creation_time)
        status = _add(root, "EventStatus")
        _add(status, "currentStatus", self.status)
        _add(status, "dateTime", self.status_time or self.creation_time)
        _add(status, "potentiallySuperseded", self.potentially_superseded)
        if self.potentially_superseded_time is not None:
            _add(status, "potentiallySupersededTime", self.potentially_superseded_time)
        interval = _add(root, "interval")
        _add(interval, "duration", self.duration)
        _add(interval, "start", self.start)
        if self.randomize_duration is not None:
            _add(root, "randomizeDuration", self.randomize_duration)
        if self.randomize_start is not None:
            _add(root, "randomizeStart", self.randomize_start)
        _control_base_xml(root, self.base)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> DerControl:
        status = _child(root, "EventStatus")
        interval = _child(root, "interval")
        base = _child(root, "DERControlBase")
        if status is None or interval is None or base is None:
            raise DocumentError("DERControl needs EventStatus, interval and DERControlBase")
        superseded_time = _optional(status, "potentiallySupersededTime")
        randomize_start = _optional(root, "randomizeStart")
        randomize_duration = _optional(root, "randomizeDuration")
        return cls(
            str(root.get("href", "")),
            _required(root, "mRID"),
            _optional(root, "description") or "",
            from_time(_required(root, "creationTime")),
            from_time(_required(interval, "start")),
            _required_int(interval, "duration"),
            _control_base_of(base),
            _required_int(status, "currentStatus"),
            from_time(_required(status, "dateTime")),
            _bool(_required(status, "potentiallySuperseded"), "potentiallySuperseded"),
            None if superseded_time is None else from_time(superseded_time),
            None if randomize_start is None else _int(randomize_start, "randomizeStart"),
            None if randomize_duration is None else _int(randomize_duration, "randomizeDuration"),
            root.get("replyTo"),
        )


def default_der_control(href: str, mrid: str, base: ControlBase) -> etree._Element:
    """DefaultDERControl: what a device applies when no event of the program is active."""
    root = element("DefaultDERControl", {"href": href, "subscribable": "0"})
    _add(root, "mRID", mrid)
    _add(root, "description", "default control")
    _control_base_xml(root, base)
    return root


def control_base_of_default(root: etree._Element) -> ControlBase:
    base = _child(root, "DERControlBase")
    if base is None:
        raise DocumentError("DefaultDERControl has no DERControlBase")
    return _control_base_of(base)


@dataclass(frozen=True)
class DerCurve:
    """A DERCurve: up to ten (x, y) points; the units follow from the curve type and
    `y_ref_type` (2030.5 DERUnitRefType), scaled by the powers of ten."""

    href: str
    mrid: str
    description: str
    curve_type: int
    creation_time: datetime
    points: tuple[tuple[int, int], ...]
    x_multiplier: int = 0
    y_multiplier: int = 0
    y_ref_type: int = 0

    def to_xml(self) -> etree._Element:
        root = element("DERCurve", {"href": self.href})
        _add(root, "mRID", self.mrid)
        _add(root, "description", self.description)
        _add(root, "creationTime", self.creation_time)
        for x, y in self.points:
            point = _add(root, "CurveData")
            _add(point, "xvalue", x)
            _add(point, "yvalue", y)
        _add(root, "curveType", self.curve_type)
        _add(root, "xMultiplier", self.x_multiplier)
        _add(root, "yMultiplier", self.y_multiplier)
        _add(root, "yRefType", self.y_ref_type)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> DerCurve:
        points = tuple(
            (_required_int(p, "xvalue"), _required_int(p, "yvalue"))
            for p in root.findall(_Q + "CurveData")
        )
        return cls(
            str(root.get("href", "")),
            _required(root, "mRID"),
            _optional(root, "description") or "",
            _required_int(root, "curveType"),
            from_time(_required(root, "creationTime")),
            points,
            _required_int(root, "xMultiplier"),
            _required_int(root, "yMultiplier"),
            _required_int(root, "yRefType"),
        )


def der_document(href: str, links: Mapping[str, str]) -> etree._Element:
    """A device's DER: where it PUTs its capability, settings, status and availability."""
    root = element("DER", {"href": href, "subscribable": "0"})
    for name in (
        "AssociatedDERProgramListLink",
        "CurrentDERProgramLink",
        "DERAvailabilityLink",
        "DERCapabilityLink",
        "DERSettingsLink",
        "DERStatusLink",
    ):
        if name in links:
            _link(root, name, links[name], 1 if name.endswith("ListLink") else None)
    return root


# The documents a device PUTs to describe its DER, by the last path segment it PUTs them to.
DER_DOCUMENTS = {
    "dercap": "DERCapability",
    "derg": "DERSettings",
    "ders": "DERStatus",
    "dera": "DERAvailability",
}


@dataclass(frozen=True)
class Response:
    """A device's answer to an event (status codes in RESPONSE_STATUS)."""

    lfdi: str
    subject: str
    status: int | None
    created: datetime | None = None
    href: str | None = None

    def to_xml(self, tag: str = "DERControlResponse") -> etree._Element:
        root = element(tag, {"href": self.href})
        if self.created is not None:
            _add(root, "createdDateTime", self.created)
        _add(root, "endDeviceLFDI", self.lfdi)
        if self.status is not None:
            _add(root, "status", self.status)
        _add(root, "subject", self.subject)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> Response:
        created = _optional(root, "createdDateTime")
        status = _optional(root, "status")
        return cls(
            _required(root, "endDeviceLFDI").upper(),
            _required(root, "subject").upper(),
            None if status is None else _int(status, "status"),
            None if created is None else from_time(created),
            root.get("href"),
        )


@dataclass(frozen=True)
class Reading:
    value: int
    at: datetime | None = None
    duration: int | None = None

    def _xml(self, parent: etree._Element) -> None:
        node = _add(parent, "Reading")
        if self.at is not None:
            period = _add(node, "timePeriod")
            _add(period, "duration", self.duration or 0)
            _add(period, "start", self.at)
        _add(node, "value", self.value)


@dataclass(frozen=True)
class MirrorMeterReading:
    """Telemetry a device mirrors to the server: a reading with its unit (2030.5 UomType:
    38 = W, 72 = Wh, 29 = V, 33 = A) and power of ten."""

    mrid: str
    description: str
    reading: Reading | None
    uom: int | None = None
    power_of_ten: int = 0

    def to_xml(self, parent: etree._Element | None = None) -> etree._Element:
        root = (
            element("MirrorMeterReading") if parent is None else _add(parent, "MirrorMeterReading")
        )
        _add(root, "mRID", self.mrid)
        _add(root, "description", self.description)
        if self.reading is not None:
            self.reading._xml(root)
        reading_type = _add(root, "ReadingType")
        _add(reading_type, "powerOfTenMultiplier", self.power_of_ten)
        if self.uom is not None:
            _add(reading_type, "uom", self.uom)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> MirrorMeterReading:
        reading = None
        node = _child(root, "Reading")
        if node is not None:
            value = _optional(node, "value")
            period = _child(node, "timePeriod")
            reading = Reading(
                _int(value or "", "Reading.value"),
                None if period is None else from_time(_required(period, "start")),
                None if period is None else _required_int(period, "duration"),
            )
        reading_type = _child(root, "ReadingType")
        uom = None if reading_type is None else _optional(reading_type, "uom")
        power = None if reading_type is None else _optional(reading_type, "powerOfTenMultiplier")
        return cls(
            _required(root, "mRID"),
            _optional(root, "description") or "",
            reading,
            None if uom is None else _int(uom, "uom"),
            0 if power is None else _int(power, "powerOfTenMultiplier"),
        )


@dataclass(frozen=True)
class MirrorUsagePoint:
    mrid: str
    description: str
    lfdi: str
    role_flags: str = "49"
    service_kind: int = 0
    status: int = 1
    readings: tuple[MirrorMeterReading, ...] = ()
    href: str | None = None

    def to_xml(self) -> etree._Element:
        root = element("MirrorUsagePoint", {"href": self.href})
        _add(root, "mRID", self.mrid)
        _add(root, "description", self.description)
        _add(root, "roleFlags", self.role_flags)
        _add(root, "serviceCategoryKind", self.service_kind)
        _add(root, "status", self.status)
        _add(root, "deviceLFDI", self.lfdi)
        for reading in self.readings:
            reading.to_xml(root)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> MirrorUsagePoint:
        return cls(
            _required(root, "mRID").upper(),
            _optional(root, "description") or "",
            _required(root, "deviceLFDI").upper(),
            _required(root, "roleFlags"),
            _required_int(root, "serviceCategoryKind"),
            _required_int(root, "status"),
            tuple(
                MirrorMeterReading.from_xml(node)
                for node in root.findall(_Q + "MirrorMeterReading")
            ),
            root.get("href"),
        )


@dataclass(frozen=True)
class Subscription:
    """A device asks the server to POST a Notification to `notification_uri` when
    `resource` changes."""

    resource: str
    notification_uri: str
    limit: int = 1
    level: str = "+S1"
    href: str | None = None

    def to_xml(self) -> etree._Element:
        root = element("Subscription", {"href": self.href})
        _add(root, "subscribedResource", self.resource)
        _add(root, "encoding", 0)
        _add(root, "level", self.level)
        _add(root, "limit", self.limit)
        _add(root, "notificationURI", self.notification_uri)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> Subscription:
        encoding = _required_int(root, "encoding")
        if encoding != 0:
            raise DocumentError("only encoding 0 (application/sep+xml) is served")
        return cls(
            _required(root, "subscribedResource"),
            _required(root, "notificationURI"),
            _required_int(root, "limit"),
            _required(root, "level"),
            root.get("href"),
        )


def notification(
    subscription_href: str, resource_href: str, status: int, resource: etree._Element | None
) -> etree._Element:
    """Notification (status 0 = default: the resource changed and is carried inside; 3 =
    the resource was deleted). The resource travels as `Resource xsi:type=...`."""
    root = element("Notification")
    _add(root, "subscribedResource", resource_href)
    if resource is not None:
        carried = _add(root, "Resource")
        xsi = "http://www.w3.org/2001/XMLSchema-instance"
        carried.set(f"{{{xsi}}}type", etree.QName(resource).localname)
        for key, value in resource.attrib.items():
            carried.set(key, value)
        for child in resource:
            carried.append(child)
    _add(root, "status", status)
    _add(root, "subscriptionURI", subscription_href)
    return root


@dataclass(frozen=True)
class LogEvent:
    created: datetime
    function_set: int
    code: int
    event_id: int
    pen: int
    profile_id: int = 0
    details: str | None = None
    href: str | None = None

    def to_xml(self) -> etree._Element:
        root = element("LogEvent", {"href": self.href})
        _add(root, "createdDateTime", self.created)
        if self.details is not None:
            _add(root, "details", self.details)
        _add(root, "functionSet", self.function_set)
        _add(root, "logEventCode", self.code)
        _add(root, "logEventID", self.event_id)
        _add(root, "logEventPEN", self.pen)
        _add(root, "profileID", self.profile_id)
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> LogEvent:
        return cls(
            from_time(_required(root, "createdDateTime")),
            _required_int(root, "functionSet"),
            _required_int(root, "logEventCode"),
            _required_int(root, "logEventID"),
            _required_int(root, "logEventPEN"),
            _required_int(root, "profileID"),
            _optional(root, "details"),
            root.get("href"),
        )
