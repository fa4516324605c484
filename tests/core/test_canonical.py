"""RFC 8785 canonical JSON: the bytes every signature and hash covers must be the standard ones.

`canonical_json` takes a fast path through the standard library for plain values; the property
test holds it to the reference implementation (`rfc8785`) on values built to hit the edges.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from evgi.core import ValidationError, canonical_json, parse_json

# RFC 8785 section 3.2.2 (serialization of primitive data types), input and output.
RFC_INPUT = (
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
    ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
    ' "literals": [null, true, false]}'
)
RFC_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()

# RFC 8785 section 3.2.4: the UTF-8 bytes of that output.
RFC_OUTPUT_HEX = (
    "7b226c69746572616c73223a5b6e756c6c2c747275652c66616c73655d2c226e756d62657273223a"
    "5b3333333333333333332e333333333333332c31652b33302c342e352c302e3030322c31652d3237"
    "5d2c22737472696e67223a22e282ac245c75303030665c6e4127425c225c5c5c5c5c222f227d"
)

# RFC 8785 section 3.2.3: properties sort by UTF-16 code units, so U+1F600 (a surrogate pair,
# 0xD83D...) comes before U+FB33 although its code point is larger.
RFC_SORT_INPUT = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}
RFC_SORT_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()

# RFC 8785 appendix B: IEEE 754 doubles (as hex) and their canonical text.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(hex_bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_bits))[0]
    return value


def test_rfc8785_primitive_example() -> None:
    assert bytes.fromhex(RFC_OUTPUT_HEX) == RFC_OUTPUT
    assert canonical_json(json.loads(RFC_INPUT)) == RFC_OUTPUT


def test_rfc8785_sorting_example() -> None:
    assert canonical_json(RFC_SORT_INPUT) == RFC_SORT_OUTPUT


@pytest.mark.parametrize(("bits", "text"), RFC_NUMBERS)
def test_rfc8785_number_serialization(bits: str, text: str) -> None:
    assert canonical_json(_double(bits)) == text.encode()
    assert canonical_json([_double(bits)]) == f"[{text}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused(bits: str) -> None:
    with pytest.raises(ValidationError):
        canonical_json({"x": _double(bits)})


def test_plain_values_take_the_standard_form() -> None:
    value = {"b": [1, True, None, "x"], "a": {"d": -5, "c": ""}, "": "\u00e9\n\t\u2028"}
    expected = '{"":"\u00e9\\n\\t\u2028","a":{"c":"","d":-5},"b":[1,true,null,"x"]}'
    assert canonical_json(value) == expected.encode()


def test_integers_beyond_double_precision_are_refused() -> None:
    assert canonical_json(2**53 - 1) == b"9007199254740991"
    assert canonical_json(-(2**53 - 1)) == b"-9007199254740991"
    for value in (2**53, -(2**53), 10**30):
        with pytest.raises(ValidationError):
            canonical_json({"n": value})


def test_lone_surrogates_and_non_string_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        canonical_json({"k": "\ud800"})
    with pytest.raises(ValidationError):
        canonical_json({1: "one"})
    with pytest.raises(ValidationError):
        canonical_json({"k": b"bytes"})


class _Colour(StrEnum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


class _Point(NamedTuple):
    x: int
    y: int


def test_subclasses_and_deep_nesting_match_the_reference() -> None:
    """What the fast encoder handles its own way or not at all (enums, a named tuple, a dict
    subclass, nesting deeper than it goes, text from U+D000) comes out as the reference's bytes."""
    value = {
        "colour": _Colour.RED,
        "level": _Level.HIGH,
        "point": _Point(1, 2),
        "ordered": OrderedDict(b=1, a=2),
        "\ud7ff": "\ud000",
    }
    assert canonical_json(value) == rfc8785.dumps(value)
    deep: Any = 0
    for _ in range(300):
        deep = [deep]
    assert canonical_json(deep) == rfc8785.dumps(deep)


def test_parse_json_round_trip_and_errors() -> None:
    value = {"a": [1, 2.5, "\U0001f600"], "b": None}
    assert parse_json(canonical_json(value)) == value
    assert parse_json(canonical_json(value).decode()) == value
    with pytest.raises(ValidationError):
        parse_json(b"{not json")
    with pytest.raises(ValidationError):
        parse_json(b"\xff\xfe\x00")


# -- property: canonical_json agrees with the reference implementation -------------------------

_characters = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),  # ASCII, controls and escapes
    st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),  # BMP below the surrogates
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),  # sorts after astral in UTF-16
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),  # astral: surrogate pairs
    st.characters(categories=["Cs"]),  # lone surrogates: not encodable, must be refused
)
_text = st.text(_characters, max_size=8)
_integers = st.one_of(
    st.integers(),
    st.integers(min_value=2**53 - 3, max_value=2**53 + 3),
    st.integers(min_value=-(2**53) - 3, max_value=-(2**53) + 3),
)
_scalars = st.one_of(st.none(), st.booleans(), _integers, st.floats(), _text)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_text, inner, max_size=5)),
    max_leaves=20,
)


# Values the fast path takes (no floats, safe integers, text below U+D800): held to the same bytes.
_plain_text = st.text(st.characters(max_codepoint=0xD7FF), max_size=8)
_plain_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _plain_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(_plain_text, inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(_plain_json)
def test_fast_path_matches_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=300)
@given(_json)
def test_canonical_json_matches_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except ValueError:  # CanonicalizationError, or UnicodeEncodeError for a lone-surrogate key
        with pytest.raises(ValidationError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=200)
@given(st.dictionaries(_text, _scalars, max_size=6))
def test_key_order_does_not_change_bytes(value: dict[str, Any]) -> None:
    try:
        encoded = canonical_json(value)
    except ValidationError:
        return
    assert canonical_json(dict(reversed(list(value.items())))) == encoded
