"""The CSMS's composite schedule on cases the HTTP tests (tests/api/test_charging.py) leave out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from evgi.core.errors import ValidationError
from evgi.csms.composite_schedule import composite_schedule
from evgi.storage.charging import ChargingProfileRecord

START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # a Monday
INSTALLED = datetime(2025, 3, 3, 11, 0, tzinfo=UTC)


def record(
    profile_id: int, purpose: str, body: dict[str, Any], evse_id: int = 1
) -> ChargingProfileRecord:
    return ChargingProfileRecord(
        "S", profile_id, evse_id, purpose, body.get("stackLevel", 0), None, body, INSTALLED
    )


def default_2x(kind: str, schedules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": kind,
        "chargingSchedule": schedules,
        **fields,
    }


def limits(records: list[ChargingProfileRecord], duration: int, unit: Any = "A") -> list[Any]:
    schedule = composite_schedule(records, 1, START, duration, unit)
    return [(p.start_period, p.limit) for p in schedule.periods]


def test_weekly_recurrence_and_valid_from() -> None:
    """Weekly from last Tuesday 00:00 for a day, valid only from Wednesday noon."""
    body = default_2x(
        "Recurring",
        [
            {
                "id": 1,
                "startSchedule": "2025-02-25T00:00:00Z",
                "duration": 86400,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}],
            }
        ],
        recurrencyKind="Weekly",
        validFrom="2025-03-11T12:00:00Z",
    )
    week = 7 * 86400
    # Tuesday 4 March is before validFrom; Tuesday 11 March from noon; 18 March in full.
    assert limits([record(1, "TxDefaultProfile", body)], 3 * week) == [
        (0, None),
        (8 * 86400, 10.0),  # Tue 11 March 12:00
        (8 * 86400 + 43200, None),
        (14 * 86400 + 43200, 10.0),  # Tue 18 March 00:00
        (15 * 86400 + 43200, None),
    ]


def test_relative_without_transaction_first_schedule_and_open_limits() -> None:
    """A Relative default with no transaction starts with the requested schedule; of a 2.x
    profile's alternative schedules the first counts; a 2.1 period without a limit limits
    nothing; an Absolute schedule without startSchedule starts when it was accepted."""
    relative = default_2x(
        "Relative",
        [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "minChargingRate": 1380,
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 7360, "numberPhases": 1},
                    {"startPeriod": 600},
                ],
            },
            {
                "id": 2,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1}],
            },
        ],
    )
    schedule = composite_schedule([record(1, "TxDefaultProfile", relative)], 1, START, 900, "A")
    assert [(p.start_period, p.limit, p.number_phases) for p in schedule.periods] == [
        (0, 32.0, 1),
        (600, None, None),
    ]
    assert schedule.min_charging_rate == 6.0  # 1,380 W on the schedule's one phase, in A
    absolute = default_2x(
        "Absolute",
        [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}],
                "duration": 4200,
            }
        ],
    )
    # Accepted at 11:00 for 70 minutes: ten minutes left at noon.
    assert limits([record(1, "TxDefaultProfile", absolute)], 3600) == [(0, 6.0), (600, None)]
    # Other EVSEs' profiles and TxProfiles without a transaction do not count.
    assert limits([record(2, "TxDefaultProfile", absolute, evse_id=2)], 60) == [(0, None)]
    assert limits([record(3, "TxProfile", absolute)], 60) == [(0, None)]


def test_bad_requests() -> None:
    with pytest.raises(ValidationError):
        composite_schedule([], 1, START, 0)
    with pytest.raises(ValidationError):
        composite_schedule([], 1, START, 60, "kW")  # type: ignore[arg-type]
    assert composite_schedule([], 1, START, 60).charging_rate_unit == "W"
