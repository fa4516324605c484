"""DER programs as the utility or aggregator runs them: programs with their primacy and default
control, curves, and the DERControl events they schedule or cancel.

Everything here is stored before any device sees it, and a device only ever reads it: whatever
the consumer layer does, these limits stay as the operator set them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from evgi.core.clock import Clock
from evgi.core.errors import NotFoundError, ValidationError
from evgi.grid.resources import (
    CONTROL_FIELDS,
    CURVE_TYPES,
    ControlBase,
    DerControl,
    DerCurve,
    DerProgram,
    check_control_base,
)
from evgi.grid.schedule import EventState, ScheduledEvent, event_states
from evgi.storage.grid import GridStore

# mRIDs end in the IANA Private Enterprise Number of their creator (2030.5 mRIDType); evgi
# holds none, and 0 is the number reserved for that case.
_PEN = "00000000"
_ONE_HOUR = 3600
_CURVE_FIELDS = {name for name, kind in CONTROL_FIELDS if kind == "curve"}
# Integer fields with their ranges and units (2030.5: per cents in hundredths of the rating,
# rampTms a UInt16 in hundredths of a second).
_RANGES = {
    "opModMaxLimW": (0, 10000, "hundredths of a per cent of the rating"),
    "opModFixedW": (-10000, 10000, "hundredths of a per cent of the rating"),
    "rampTms": (0, 65535, "hundredths of a second"),
}


def new_mrid() -> str:
    """A fresh 128-bit master resource id: 96 random bits, then the PEN."""
    return secrets.token_hex(12).upper() + _PEN


def program_href(program_id: int) -> str:
    return f"/derp/{program_id}"


class DerPrograms:
    def __init__(self, store: GridStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create_program(
        self, description: str, primacy: int, default_control: Mapping[str, Any] | None = None
    ) -> Row[Any]:
        if not 0 <= primacy <= 255:
            raise ValidationError("primacy is 0 to 255 (lower wins)")
        _check_description(description)
        base = None if default_control is None else self._checked(default_control, None)
        key = self.store.add_program(
            {
                "mrid": new_mrid(),
                "description": description,
                "primacy": primacy,
                "default_control": None if base is None else json.dumps(base),
                "created_at": self.clock.now(),
            }
        )
        return self.program(key)

    def program(self, key: int | str) -> Row[Any]:
        """A program by id, or by mRID or description as an operator types it."""
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        found = self.store.program(key if isinstance(key, int) else key.upper())
        if found is None and isinstance(key, str):
            found = next((p for p in self.store.programs() if p.description == key), None)
        if found is None:
            raise NotFoundError(f"no DER program {key!r}")
        return found

    def create_curve(
        self,
        program: int | str,
        curve: str,
        points: Sequence[tuple[int, int]],
        description: str = "",
        x_multiplier: int = 0,
        y_multiplier: int = 0,
        y_ref_type: int = 0,
    ) -> str:
        """A curve of the program (type as its DERControlBase field, e.g. opModVoltVar)."""
        row = self.program(program)
        if curve not in CURVE_TYPES:
            raise ValidationError(f"{curve!r} is not a curve type: {', '.join(CURVE_TYPES)}")
        if not 1 <= len(points) <= 10:
            raise ValidationError("a DERCurve has 1 to 10 points")
        _check_description(description)
        mrid = new_mrid()
        self.store.add_curve(
            {
                "program_id": row.id,
                "mrid": mrid,
                "description": description or curve,
                "curve_type": CURVE_TYPES[curve],
                "creation_time": self.clock.now(),
                "points": json.dumps([list(point) for point in points]),
                "x_multiplier": x_multiplier,
                "y_multiplier": y_multiplier,
                "y_ref_type": y_ref_type,
            }
        )
        return mrid

    def create_control(
        self,
        program: int | str,
        base: Mapping[str, Any],
        start: datetime,
        duration_s: int,
        description: str = "",
        randomize_start_s: int | None = None,
        randomize_duration_s: int | None = None,
    ) -> str:
        """Schedule a DERControl event; curve fields may name a curve of the program by mRID."""
        row = self.program(program)
        if start.tzinfo is None:
            raise ValidationError("the start time must be timezone-aware (UTC)")
        if not 0 < duration_s < 2**32:
            raise ValidationError("the duration is a positive number of seconds")
        for name, value in (
            ("randomizeStart", randomize_start_s),
            ("randomizeDuration", randomize_duration_s),
        ):
            if value is not None and not -_ONE_HOUR <= value <= _ONE_HOUR:
                raise ValidationError(f"{name} is -3600 to 3600 seconds")
        _check_description(description)
        mrid = new_mrid()
        self.store.add_control(
            {
                "program_id": row.id,
                "mrid": mrid,
                "description": description or "DER control",
                "creation_time": self.clock.now(),
                "start": start,
                "duration_s": duration_s,
                "randomize_start_s": randomize_start_s,
                "randomize_duration_s": randomize_duration_s,
                "base": json.dumps(self._checked(base, row.id)),
                "cancelled_at": None,
            }
        )
        return mrid

    def cancel_control(self, mrid: str) -> None:
        if not self.store.cancel_control(mrid.upper(), self.clock.now()):
            raise NotFoundError(f"no DER control {mrid!r} that is not already cancelled")

    def events(self, program_id: int | None = None) -> list[ScheduledEvent]:
        """Every control as a scheduled event, across programs (supersession needs them all)."""
        rows = self.store.controls(program_id)
        return [_event(row) for row in rows]

    def control_documents(self, program_id: int, now: datetime) -> list[DerControl]:
        """The program's controls with their status, as devices read them."""
        states = event_states(self.events(), now)
        return [_document(row, states[row.mrid]) for row in self.store.controls(program_id)]

    def program_document(self, row: Row[Any]) -> DerProgram:
        href = program_href(row.id)
        return DerProgram(
            href,
            row.mrid,
            row.description,
            row.primacy,
            f"{href}/derc",
            f"{href}/actderc",
            f"{href}/dderc" if row.default_control else None,
            f"{href}/dc",
            len(self.store.controls(row.id)),
            len(self.store.curves(row.id)),
        )

    def curve_documents(self, program_id: int) -> list[DerCurve]:
        return [
            DerCurve(
                f"{program_href(program_id)}/dc/{row.mrid}",
                row.mrid,
                row.description,
                row.curve_type,
                row.creation_time,
                tuple((int(x), int(y)) for x, y in json.loads(row.points)),
                row.x_multiplier,
                row.y_multiplier,
                row.y_ref_type,
            )
            for row in self.store.curves(program_id)
        ]

    def _checked(self, base: Mapping[str, Any], program_id: int | None) -> ControlBase:
        checked = check_control_base(base)
        for name, (low, high, unit) in _RANGES.items():
            value = checked.get(name)
            if isinstance(value, int) and not low <= value <= high:
                raise ValidationError(f"{name} is in {unit}: {low} to {high}")
        curves = {} if program_id is None else {c.mrid: c for c in self.store.curves(program_id)}
        for name in _CURVE_FIELDS & set(checked):
            value = checked[name]
            assert isinstance(value, dict)
            reference = str(value.get("href", "")).rsplit("/", 1)[-1].upper()
            curve = curves.get(reference)
            if curve is None or program_id is None:
                raise ValidationError(f"{name} names no curve of this program ({reference!r})")
            if curve.curve_type != CURVE_TYPES[name]:
                raise ValidationError(
                    f"{name} needs a curve of that type, not {curve.description!r}"
                )
            checked[name] = {"href": f"{program_href(program_id)}/dc/{curve.mrid}"}
        return checked


def _check_description(description: str) -> None:
    if len(description.encode()) > 32:
        raise ValidationError("a description has at most 32 bytes (2030.5 String32)")


def _event(row: Row[Any]) -> ScheduledEvent:
    return ScheduledEvent(
        row.mrid,
        row.program_mrid,
        row.primacy,
        row.creation_time,
        row.start,
        row.duration_s,
        row.randomize_start_s,
        row.randomize_duration_s,
        row.cancelled_at,
    )


def _document(row: Row[Any], state: EventState) -> DerControl:
    return DerControl(
        f"{program_href(row.program_id)}/derc/{row.mrid}",
        row.mrid,
        row.description,
        row.creation_time,
        row.start,
        row.duration_s,
        json.loads(row.base),
        state.status,
        state.since,
        state.potentially_superseded,
        state.potentially_superseded_time,
        row.randomize_start_s,
        row.randomize_duration_s,
        "/rsp",
    )
