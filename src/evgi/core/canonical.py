"""RFC 8785 canonical JSON: the one byte form that every signature and hash in evgi covers."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from evgi.core.errors import ValidationError

_SAFE_INT = 2**53 - 1
_dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _plain(value: Any) -> bool:
    """True for values where the standard encoder already yields RFC 8785 bytes.

    That holds without floats, with integers that are exact doubles, and with strings below
    U+D800 (where sorting by code point equals RFC 8785's sort by UTF-16 code unit).
    """
    if isinstance(value, str):
        return not value or max(value) < "\ud800"
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and (not k or max(k) < "\ud800") and _plain(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def canonical_json(value: Any) -> bytes:
    if _plain(value):
        return _dumps(value).encode()
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
