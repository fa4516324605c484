"""Identifiers of the e-mobility domain, validated where they enter the system.

VIN (ISO 3779), EVSE ID and eMAID (ISO 15118-1 / eMI3, with the contract-ID check digit),
PCID (ISO 15118-2 provisioning certificate ID) and the EVGI Entity Identifier (EID).
"""

from __future__ import annotations

import base64
import re
from enum import StrEnum

from evgi.core.errors import ValidationError
from evgi.core.keys import normalize_address

# --- VIN -------------------------------------------------------------------------------------

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit(vin: str) -> str:
    """The position-9 check digit (mandatory in North America, optional elsewhere)."""
    if not _VIN.fullmatch(vin):
        raise ValidationError(f"VIN {vin!r} is not 17 characters of A-Z/0-9 without I, O and Q")
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def validate_vin(vin: str, *, require_check_digit: bool = False) -> str:
    vin = vin.strip().upper()
    if not _VIN.match(vin):
        raise ValidationError(
            f"VIN {vin!r} is not 17 characters of A-Z/0-9 without I, O and Q (ISO 3779)"
        )
    if require_check_digit and vin[8] != vin_check_digit(vin):
        raise ValidationError(
            f"VIN {vin} has check digit {vin[8]}, expected {vin_check_digit(vin)}"
        )
    return vin


# --- EVSE ID and eMAID (eMI3 / ISO 15118-1) --------------------------------------------------

_EVSE_ID = re.compile(r"^([A-Z]{2})(\*?)([A-Z0-9]{3})\2E([A-Z0-9][A-Z0-9*]{0,30})$")
_EMAID = re.compile(r"^([A-Z]{2})(-?)([A-Z0-9]{3})\2([A-Z0-9]{9})(?:\2?([A-Z0-9]))?$")


def validate_evse_id(evse_id: str) -> str:
    """`<country>*<operator>*E<outlet>`, separators optional but consistent: DE*AB7*E840*6487."""
    normalized = evse_id.strip().upper()
    if not _EVSE_ID.match(normalized):
        raise ValidationError(
            f"EVSE ID {evse_id!r} does not match <country 2><operator 3>E<outlet> (ISO 15118-1)"
        )
    return normalized


def _mat_mul(a: tuple[int, ...], b: tuple[int, ...], mod: int) -> tuple[int, ...]:
    return (
        (a[0] * b[0] + a[1] * b[2]) % mod,
        (a[0] * b[1] + a[1] * b[3]) % mod,
        (a[2] * b[0] + a[3] * b[2]) % mod,
        (a[2] * b[1] + a[3] * b[3]) % mod,
    )


def _powers(base: tuple[int, ...], mod: int, count: int) -> list[tuple[int, ...]]:
    result, current = [], base
    for _ in range(count):
        result.append(current)
        current = _mat_mul(current, base, mod)
    return result


# Each character is an element of F2^2 x F3^2; position i is weighted by the (i+1)-th power of a
# 2x2 matrix over F2 and over F3, so every single error and adjacent transposition is detected.
_F2_WEIGHTS = _powers((0, 1, 1, 1), 2, 15)
_F3_WEIGHTS = _powers((0, 1, 1, 2), 3, 15)
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _contract_vector(character: str, position: int) -> tuple[int, int, int, int]:
    value = _ALPHANUMERIC.index(character)
    q1, rest = divmod(value, 18)
    q2, rest = divmod(rest, 9)
    r1, r2 = divmod(rest, 3)
    p, m = _F2_WEIGHTS[position], _F3_WEIGHTS[position]
    return (
        (q1 * p[0] + q2 * p[2]) % 2,
        (q1 * p[1] + q2 * p[3]) % 2,
        (r1 * m[0] + r2 * m[2]) % 3,
        (r1 * m[1] + r2 * m[3]) % 3,
    )


def emaid_check_digit(emaid14: str) -> str:
    """Check character of a 14-character contract ID (eMI3 "Check Digit Calculation")."""
    emaid14 = emaid14.upper()
    if len(emaid14) != 14 or any(c not in _ALPHANUMERIC for c in emaid14):
        raise ValidationError("the eMAID check digit covers exactly 14 alphanumeric characters")
    total = [0, 0, 0, 0]
    for i, c in enumerate(emaid14):
        for k, x in enumerate(_contract_vector(c, i)):
            total[k] += x
    for candidate in _ALPHANUMERIC:
        v = _contract_vector(candidate, 14)
        mods = (2, 2, 3, 3)
        if all((total[k] + v[k]) % mods[k] == 0 for k in range(4)):
            return candidate
    raise AssertionError("every residue has a check character")  # pragma: no cover


def validate_emaid(emaid: str, *, require_check_digit: bool = False) -> str:
    """eMAID `<country 2><provider 3><instance 9>[<check>]`, dashes optional; returns it without."""
    normalized = emaid.strip().upper()
    match = _EMAID.match(normalized)
    if not match:
        raise ValidationError(
            f"eMAID {emaid!r} does not match <country 2><provider 3><instance 9>[<check 1>]"
        )
    country, _, provider, instance, check = match.groups()
    body = country + provider + instance
    if check is None:
        if require_check_digit:
            raise ValidationError(f"eMAID {emaid} has no check digit")
        return body
    expected = emaid_check_digit(body)
    if check != expected:
        raise ValidationError(f"eMAID {emaid} has check digit {check}, expected {expected}")
    return body + check


# --- PCID -------------------------------------------------------------------------------------

_PCID = re.compile(r"^[A-Z0-9]{17}[A-Z0-9]?$")


def validate_pcid(pcid: str) -> str:
    """ISO 15118-2 provisioning certificate ID: 17 alphanumerics and an optional check character."""
    normalized = pcid.strip().upper()
    if not _PCID.match(normalized):
        raise ValidationError(f"PCID {pcid!r} is not 17 or 18 upper-case alphanumerics")
    return normalized


# --- EID --------------------------------------------------------------------------------------


class EntityKind(StrEnum):
    """Every entity kind of the MOBI EVGI identity subsystem."""

    USER = "user"
    VEHICLE = "vehicle"
    BATTERY = "battery"
    METER = "meter"
    CHARGER = "charger"
    CPO = "cpo"
    EMSP = "emsp"
    OEM = "oem"
    UTILITY = "utility"
    AGGREGATOR = "aggregator"
    INSURER = "insurer"
    DATA_HOST = "data_host"
    TRUST_ANCHOR = "trust_anchor"


_EID_PREFIX = {
    EntityKind.USER: "US",
    EntityKind.VEHICLE: "VH",
    EntityKind.BATTERY: "BT",
    EntityKind.METER: "MT",
    EntityKind.CHARGER: "CH",
    EntityKind.CPO: "CP",
    EntityKind.EMSP: "EM",
    EntityKind.OEM: "OE",
    EntityKind.UTILITY: "UT",
    EntityKind.AGGREGATOR: "AG",
    EntityKind.INSURER: "IN",
    EntityKind.DATA_HOST: "DH",
    EntityKind.TRUST_ANCHOR: "TA",
}
_EID = re.compile(r"^EVGI-([A-Z]{2})-([A-Z2-7]{16})([0-9A-Z*])$")
_MOD37 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


def _mod37_check(text: str) -> str:
    """ISO/IEC 7064 MOD 37-2 check character."""
    total = 0
    for c in text:
        total = ((total + _MOD37.index(c)) * 2) % 37
    return _MOD37[(38 - total) % 37]


def make_eid(kind: EntityKind, address: str) -> str:
    """Entity ID paired with an account: kind code, 80 bits of the address, a check character."""
    raw = bytes.fromhex(normalize_address(address)[2:])[:10]
    body = base64.b32encode(raw).decode()
    code = _EID_PREFIX[kind]
    return f"EVGI-{code}-{body}{_mod37_check(code + body)}"


def validate_eid(eid: str) -> tuple[EntityKind, str]:
    """Parse an EID into its kind and body; raise on a bad shape, kind code or check character."""
    match = _EID.match(eid.strip().upper())
    if not match:
        raise ValidationError(f"EID {eid!r} is not EVGI-<kind 2>-<16 base32><check>")
    code, body, check = match.groups()
    kinds = {v: k for k, v in _EID_PREFIX.items()}
    if code not in kinds:
        raise ValidationError(f"EID {eid} names unknown entity kind {code}")
    if _mod37_check(code + body) != check:
        raise ValidationError(f"EID {eid} has a bad check character")
    return kinds[code], body
