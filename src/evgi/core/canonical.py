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


def _plain_text(text: str) -> bool:
    return text.isascii() or max(text) < "\ud800"


def _plain(value: Any) -> bool:
    """True for values where the standard encoder already yields RFC 8785 bytes.

    That holds without floats, with integers that are exact doubles, and with strings below
    U+D800 (where sorting by code point equals RFC 8785's sort by UTF-16 code unit). Walked
    with a stack rather than recursion: this check runs on every document hashed or signed.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _plain_text(item):
                return False
        elif isinstance(item, dict):
            # One check over all keys at once: a key that is not a string fails the join.
            try:
                keys = "".join(item)
            except TypeError:
                return False
            if not _plain_text(keys):
                return False
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif item is not None and not isinstance(item, bool):
            return False
    return True


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
