"""Checks every message a CSMS sends against the official OCA JSON schemas of its OCPP version.

The schemas are the ones shipped inside the `ocpp` package; each is compiled once with
fastjsonschema, on first use, and shared by every station of the process. This check is
independent of the `ocpp` library's own validation, which answers bad input with a CALLERROR
but leaves no record: here each violation is kept, so a test can prove the CSMS sent none.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

import fastjsonschema

VERSIONS = ("1.6", "2.0.1", "2.1")

MessageKind = Literal["CALL", "CALLRESULT"]


@dataclass(frozen=True)
class SchemaViolation:
    version: str
    kind: MessageKind
    action: str
    problem: str
    payload: Any


def schema_name(version: str, kind: MessageKind, action: str) -> str:
    """File name of the schema: 1.6 names requests by action, 2.x adds `Request`."""
    if kind == "CALLRESULT":
        return f"{action}Response"
    return action if version == "1.6" else f"{action}Request"


@functools.cache
def _validator(version: str, name: str) -> Callable[[Any], Any] | None:
    folder = files("ocpp") / ("v" + version.replace(".", "")) / "schemas"
    resource = folder / f"{name}.json"
    if not resource.is_file():
        return None
    # Some OCA schema files start with a byte order mark.
    schema = json.loads(resource.read_text(encoding="utf-8-sig"))
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


class MessageSchemas:
    """The schema check of one OCPP version."""

    def __init__(self, version: str) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown OCPP version {version!r}; expected one of {VERSIONS}")
        self.version = version

    def check(self, kind: MessageKind, action: str, payload: Any) -> SchemaViolation | None:
        validate = _validator(self.version, schema_name(self.version, kind, action))
        if validate is None:
            return SchemaViolation(
                self.version, kind, action, f"OCPP {self.version} has no {action}", payload
            )
        try:
            validate(payload)
        except fastjsonschema.JsonSchemaException as exc:
            return SchemaViolation(self.version, kind, action, str(exc), payload)
        return None
