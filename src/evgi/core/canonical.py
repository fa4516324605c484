"""RFC 8785 canonical JSON: the one byte form that every signature and hash in evgi covers."""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

from evgi.core.errors import ValidationError

_SAFE_INT = 2**53 - 1
_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
# UTF-8 lead bytes from here on start U+D000 and above: from U+D800, RFC 8785's sort by UTF-16
# code unit can differ from the sort by code point (and surrogates are not text at all).
_UTF16_ORDER_MAY_DIFFER = 0xED


def _plain(value: Any) -> bool:
    """True for values where orjson's sorted, compact output is RFC 8785's, provided no string
    reaches U+D800 (checked once on the output): JSON types only (subclasses too), string keys,
    no floats, and integers that are exact doubles.

    Walked with a stack rather than recursion, strings passed over by exact type: this check
    runs on every document hashed or signed.
    """
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int or (kind is not float and isinstance(item, int)):
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif kind is dict or isinstance(item, dict):
            for key in item:
                if type(key) is not str:
                    return False
            push(item.values())
        elif kind is list or kind is tuple or isinstance(item, list | tuple):
            push(item)
        elif not isinstance(item, str):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    if _plain(value):
        try:
            encoded: bytes = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. nested deeper than orjson goes: the reference path decides
        else:
            if encoded.isascii() or max(encoded) < _UTF16_ORDER_MAY_DIFFER:
                return encoded
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationError(f"value cannot be canonicalized: {exc}") from exc


def compact_json(value: Any) -> str:
    """Compact, key-sorted JSON for storage, where the bytes are never hashed or signed."""
    text: str = _dumps(value)
    return text


def parse_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"malformed JSON: {exc}") from exc
