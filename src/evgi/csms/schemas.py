"""OCPP payload validation with compiled validators over the schemas the `ocpp` package ships.

The library validates each message with `jsonschema` on a worker thread; compiling each schema
once into Python code (fastjsonschema) keeps validation on for every message at a fraction of
the cost. A failed check becomes the CALLERROR that OCPP-J names for it, in the version's own
spelling.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

import fastjsonschema

from evgi.csms.protocol import DIALECTS, CallFailure, Dialect, OcppVersion

Direction = Literal["request", "response"]
Validator = Callable[[Any], Any]

# Which OCPP-J error a broken schema rule is (rules not named here are a formation violation).
_TYPE_RULES = frozenset({"type", "maxLength", "minLength", "format", "pattern"})
_PROPERTY_RULES = frozenset(
    {"enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_OCCURRENCE_RULES = frozenset({"required", "minItems", "maxItems"})


class Schemas:
    """Compiled validators, built on first use of each (version, action, direction)."""

    def __init__(self) -> None:
        self._validators: dict[tuple[OcppVersion, str, Direction], Validator] = {}
        self._lock = threading.Lock()

    def validator(self, version: OcppVersion, action: str, direction: Direction) -> Validator:
        key = (version, action, direction)
        found = self._validators.get(key)
        if found is not None:
            return found
        with self._lock:
            if key not in self._validators:
                self._validators[key] = fastjsonschema.compile(
                    _load_schema(DIALECTS[version], action, direction)
                )
            return self._validators[key]

    def check(self, version: OcppVersion, action: str, direction: Direction, payload: Any) -> None:
        """Raise the version's CALLERROR for a payload that breaks its schema."""
        try:
            self.validator(version, action, direction)(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise schema_error(DIALECTS[version], exc) from exc


def schema_error(dialect: Dialect, exc: fastjsonschema.JsonSchemaValueException) -> CallFailure:
    rule = exc.rule or ""
    if rule in _TYPE_RULES:
        code = "TypeConstraintViolation"
    elif rule in _PROPERTY_RULES:
        code = "PropertyConstraintViolation"
    elif rule in _OCCURRENCE_RULES:
        code = dialect.occurrence_violation
    else:
        code = dialect.formation_violation
    return CallFailure(code, exc.message, {"field": exc.name or "", "rule": rule})


def _load_schema(dialect: Dialect, action: str, direction: Direction) -> Any:
    suffix = dialect.request_suffix if direction == "request" else "Response"
    name = f"{action}{suffix}.json"
    path = resources.files("ocpp").joinpath(dialect.schema_folder, "schemas", name)
    # The 2.x schema files start with a byte order mark.
    return json.loads(path.read_text(encoding="utf-8-sig"))
