"""Meter values as stations send them, turned into `MeterSample`s with OCPP's defaults filled in.

An absent measurand is the active energy import register, an absent unit is Wh, an absent
context is a periodic sample and an absent location is the outlet, in every version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from evgi.core.canonical import compact_json
from evgi.csms.connection import to_camel_case
from evgi.storage.charging import MeterSample

ENERGY_REGISTER = "Energy.Active.Import.Register"
_WH_PER_UNIT = {"Wh": 1, "kWh": 1000}


def parse_time(text: str) -> datetime:
    """An OCPP date-time (RFC 3339, validated by the schema) as aware UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # the schema allows none, but stay safe
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def samples_from_16(meter_values: Iterable[dict[str, Any]]) -> list[MeterSample]:
    """1.6 meterValue entries (snake_case keys); values are decimal strings or signed blobs."""
    out = []
    for entry in meter_values:
        timestamp = parse_time(entry["timestamp"])
        for sampled in entry["sampled_value"]:
            signed = sampled.get("format") == "SignedData"
            out.append(
                MeterSample(
                    timestamp=timestamp,
                    measurand=sampled.get("measurand", ENERGY_REGISTER),
                    value=None if signed else _number(sampled["value"]),
                    unit=sampled.get("unit", "Wh"),
                    phase=sampled.get("phase"),
                    context=sampled.get("context", "Sample.Periodic"),
                    location=sampled.get("location", "Outlet"),
                    signed=sampled["value"] if signed else None,
                )
            )
    return out


def samples_from_2x(meter_values: Iterable[dict[str, Any]]) -> list[MeterSample]:
    """2.0.1 / 2.1 meterValue entries (snake_case keys)."""
    out = []
    for entry in meter_values:
        timestamp = parse_time(entry["timestamp"])
        for sampled in entry["sampled_value"]:
            unit = sampled.get("unit_of_measure") or {}
            signed = sampled.get("signed_meter_value")
            out.append(
                MeterSample(
                    timestamp=timestamp,
                    measurand=sampled.get("measurand", ENERGY_REGISTER),
                    value=float(sampled["value"]),
                    unit=unit.get("unit", "Wh"),
                    multiplier=int(unit.get("multiplier", 0)),
                    phase=sampled.get("phase"),
                    context=sampled.get("context", "Sample.Periodic"),
                    location=sampled.get("location", "Outlet"),
                    signed=None if signed is None else compact_json(to_camel_case(signed)),
                )
            )
    return out


def energy_register_wh(samples: Sequence[MeterSample]) -> int | None:
    """The latest whole-meter active energy import reading in Wh, if any sample carries one."""
    best: MeterSample | None = None
    for sample in samples:
        if (
            sample.measurand == ENERGY_REGISTER
            and sample.phase is None
            and sample.value is not None
            and sample.unit in _WH_PER_UNIT
            and (best is None or sample.timestamp >= best.timestamp)
        ):
            best = sample
    if best is None or best.value is None or best.unit is None:
        return None
    return round(best.value * _WH_PER_UNIT[best.unit] * 10.0**best.multiplier)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
