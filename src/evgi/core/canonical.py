"""RFC 8785 canonical JSON: the one byte form that every signature and hash in evgi covers."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from evgi.core.errors import ValidationError


def canonical_json(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise ValidationError(f"value cannot be canonicalized: {exc}") from exc


def parse_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"malformed JSON: {exc}") from exc
