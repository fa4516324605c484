"""Domain identifiers: VIN, EVSE ID, eMAID, PCID and EID are checked where they enter evgi."""

from __future__ import annotations

import pytest

from evgi.core import (
    Account,
    EntityKind,
    ValidationError,
    emaid_check_digit,
    make_eid,
    validate_eid,
    validate_emaid,
    validate_evse_id,
    validate_pcid,
    validate_vin,
    vin_check_digit,
)

# -- VIN (ISO 3779, North American check digit) ----------------------------------------------

KNOWN_VIN = "1M8GDM9AXKP042788"  # the textbook example, check digit X


def test_known_vin_check_digit() -> None:
    assert vin_check_digit(KNOWN_VIN) == "X"
    assert validate_vin(KNOWN_VIN, require_check_digit=True) == KNOWN_VIN
    assert validate_vin(" 1m8gdm9axkp042788 ", require_check_digit=True) == KNOWN_VIN


def test_wrong_vin_check_digit_is_rejected_only_when_required() -> None:
    wrong = KNOWN_VIN[:8] + "5" + KNOWN_VIN[9:]
    assert validate_vin(wrong) == wrong  # outside North America the digit is optional
    with pytest.raises(ValidationError, match="check digit"):
        validate_vin(wrong, require_check_digit=True)


@pytest.mark.parametrize("letter", ["I", "O", "Q"])
def test_vin_refuses_i_o_q(letter: str) -> None:
    vin = KNOWN_VIN[:5] + letter + KNOWN_VIN[6:]
    with pytest.raises(ValidationError):
        validate_vin(vin)
    with pytest.raises(ValidationError):
        vin_check_digit(vin)


@pytest.mark.parametrize("vin", [KNOWN_VIN[:-1], KNOWN_VIN + "1", "", "1M8GDM9AX-P042788"])
def test_vin_refuses_wrong_length_and_characters(vin: str) -> None:
    with pytest.raises(ValidationError):
        validate_vin(vin)
    with pytest.raises(ValidationError):
        vin_check_digit(vin)


def test_vin_check_digit_takes_the_bare_vin() -> None:
    """validate_vin trims input; the check-digit function gets exactly 17 characters."""
    assert validate_vin(KNOWN_VIN + "\n") == KNOWN_VIN
    with pytest.raises(ValidationError):
        vin_check_digit(KNOWN_VIN + "\n")


# -- EVSE ID ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evse_id", "normalized"),
    [
        ("DE*AB7*E840*6487", "DE*AB7*E840*6487"),
        ("DEAB7E8406487", "DEAB7E8406487"),
        ("de*ab7*e840*6487", "DE*AB7*E840*6487"),
        ("NL*TNM*E1", "NL*TNM*E1"),
    ],
)
def test_valid_evse_ids(evse_id: str, normalized: str) -> None:
    assert validate_evse_id(evse_id) == normalized


@pytest.mark.parametrize(
    "evse_id",
    [
        "DE*AB7E8406487",  # separators must be used consistently
        "DEAB7*E8406487",
        "DE*AB7*X840*6487",  # the ID type of an EVSE is E
        "D*AB7*E840",  # two-letter country code
        "DE*AB*E840",  # three-character operator
        "DE*AB7*E",  # an outlet ID is required
        "DE*AB7*E*840",  # the outlet ID starts with an alphanumeric
        "DE-AB7-E840",
    ],
)
def test_invalid_evse_ids(evse_id: str) -> None:
    with pytest.raises(ValidationError):
        validate_evse_id(evse_id)


# -- eMAID and the contract-ID check digit ----------------------------------------------------

# The examples of the eMI3 check-digit specification.
EMAID_CHECKS = list(
    zip(
        [
            "NN123ABCDEFGHI",
            "FRXYZ123456789",
            "ITA1B2C3E4F5G6",
            "ESZU8WOX834H1D",
            "PT73902837ABCZ",
            "DE83DUIEN83QGZ",
            "DE83DUIEN83ZGQ",
            "DE8AA001234567",
        ],
        "T24RZDM0",
        strict=True,
    )
)


@pytest.mark.parametrize(("body", "check"), EMAID_CHECKS)
def test_emaid_check_digit_examples(body: str, check: str) -> None:
    assert emaid_check_digit(body) == check
    assert emaid_check_digit(body.lower()) == check
    assert validate_emaid(body + check, require_check_digit=True) == body + check


@pytest.mark.parametrize(("body", "check"), EMAID_CHECKS)
def test_every_wrong_emaid_check_digit_is_rejected(body: str, check: str) -> None:
    for wrong in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if wrong != check:
            with pytest.raises(ValidationError, match="check digit"):
                validate_emaid(body + wrong)


def test_emaid_check_digit_detects_single_substitutions() -> None:
    body = "DE8AA001234567"
    check = emaid_check_digit(body)
    for position in range(2, 14):
        for replacement in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            if replacement != body[position]:
                changed = body[:position] + replacement + body[position + 1 :]
                assert emaid_check_digit(changed) != check, changed


def test_emaid_forms() -> None:
    assert validate_emaid("DE-8AA-001234567-0") == "DE8AA0012345670"
    assert validate_emaid("DE-8AA-0012345670") == "DE8AA0012345670"
    assert validate_emaid("de8aa001234567") == "DE8AA001234567"
    with pytest.raises(ValidationError, match="no check digit"):
        validate_emaid("DE8AA001234567", require_check_digit=True)


@pytest.mark.parametrize(
    "emaid",
    ["DE8AA00123456", "DE-8AA001234567", "D18AA001234567", "DE8AA0012345670X", "DE8AA00123456_"],
)
def test_malformed_emaids(emaid: str) -> None:
    with pytest.raises(ValidationError):
        validate_emaid(emaid)


@pytest.mark.parametrize("body", ["DE8AA00123456", "DE8AA0012345678", "DE8AA00123456-"])
def test_emaid_check_digit_needs_14_alphanumerics(body: str) -> None:
    with pytest.raises(ValidationError):
        emaid_check_digit(body)


# -- PCID -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pcid", ["WMIV1234567890ABC", "WMIV1234567890ABC1", " wmiv1234567890abc "])
def test_valid_pcids(pcid: str) -> None:
    assert validate_pcid(pcid) == pcid.strip().upper()


@pytest.mark.parametrize(
    "pcid", ["WMIV1234567890AB", "WMIV1234567890ABC12", "WMIV-234567890ABC", ""]
)
def test_invalid_pcids(pcid: str) -> None:
    with pytest.raises(ValidationError):
        validate_pcid(pcid)


# -- EID --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EntityKind))
def test_eid_round_trip(kind: EntityKind) -> None:
    address = Account.generate().address
    eid = make_eid(kind, address)
    assert eid.startswith("EVGI-")
    assert validate_eid(eid) == (kind, eid[8:24])
    assert validate_eid(eid.lower()) == (kind, eid[8:24])
    assert make_eid(kind, address.upper().replace("0X", "0x")) == eid


def test_eid_detects_every_single_character_change() -> None:
    eid = make_eid(EntityKind.VEHICLE, Account.generate().address)
    alphabets = {
        **dict.fromkeys(range(8, 24), "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        24: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*",
    }
    for position, alphabet in alphabets.items():
        for replacement in alphabet:
            if replacement != eid[position]:
                flipped = eid[:position] + replacement + eid[position + 1 :]
                with pytest.raises(ValidationError, match="check character"):
                    validate_eid(flipped)


def test_eid_refuses_unknown_kinds_and_shapes() -> None:
    eid = make_eid(EntityKind.USER, Account.generate().address)
    with pytest.raises(ValidationError, match="unknown entity kind"):
        validate_eid("EVGI-ZZ-" + eid[8:])
    for bad in (eid[:-1], eid + "0", eid.replace("EVGI-", "EVGX-"), "EVGI-US-" + "1" * 16 + "0"):
        with pytest.raises(ValidationError):
            validate_eid(bad)


def test_make_eid_refuses_non_addresses() -> None:
    for bad in ("0x1234", "not an address", "0x" + "g" * 40):
        with pytest.raises(ValidationError):
            make_eid(EntityKind.USER, bad)
