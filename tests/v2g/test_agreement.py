"""Discharge programs, driver consent and the agreement-to-discharge rules of the V2X paper,
each refusal kept with its reason in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from evgi.core.errors import NotFoundError, ValidationError
from evgi.storage.v2g import DECISIONS
from evgi.v2g import (
    REFUSED_BY,
    SEP2_STATUS_OPTED_OUT,
    Consent,
    DischargeProgram,
    Evse,
    Executor,
    ProgramOperator,
    Refusal,
    V2gRegister,
    Vehicle,
    decide,
    without_discharging,
)

NOW = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
VIN = "WEVG0R00000000001"


def program(**change: object) -> DischargeProgram:
    values: dict[str, object] = {
        "id": "utility-peak",
        "name": "Evening peak support",
        "operator": ProgramOperator.UTILITY,
        "operator_id": "EVGI-UT-AAAAAAAAAAAAAAAAA",
        "executed_by": Executor.EVSE,
        "priority": 0,
        "max_discharge_w": 11_000,
        "created_at": NOW,
    }
    values.update(change)
    return DischargeProgram(**values)  # type: ignore[arg-type]


def consent(**change: object) -> Consent:
    values: dict[str, object] = {
        "driver": "did:ethr:1337:0x00000000000000000000000000000000000000d1",
        "vehicle": VIN,
        "program_id": "utility-peak",
        "min_soc_percent": 30,
        "departure_at": NOW + timedelta(hours=14),
        "departure_energy_wh": 60_000,
        "energy_transfer": frozenset({"AC_three_phase", "AC_BPT", "AC_BPT_DER"}),
        "given_at": NOW - timedelta(days=1),
    }
    values.update(change)
    return Consent(**values)  # type: ignore[arg-type]


GOOD_EVSE = Evse("US*KIT*E0001", grid_integrated=True, site_owner_allows=True, current="AC")
GOOD_EV = Vehicle(VIN, soc_wh=50_000, capacity_wh=75_000, receives_1547=True)


def test_everything_in_place_agrees() -> None:
    decision = decide(program(), GOOD_EVSE, GOOD_EV, consent(), NOW)
    assert decision.agreed and decision.refusals == ()


@pytest.mark.parametrize(
    ("evse", "vehicle", "given", "reason"),
    [
        (
            Evse("US*KIT*E0001", grid_integrated=False, site_owner_allows=True, current="DC"),
            GOOD_EV,
            consent(),
            Refusal.EVSE_NOT_GRID_INTEGRATED,
        ),
        (
            Evse("US*KIT*E0001", grid_integrated=True, site_owner_allows=False, current="DC"),
            GOOD_EV,
            consent(),
            Refusal.SITE_OWNER_NOT_ALLOWING,
        ),
        (
            GOOD_EVSE,
            Vehicle(VIN, soc_wh=50_000, capacity_wh=75_000, receives_1547=False),
            consent(),
            Refusal.EV_CANNOT_RECEIVE_1547,
        ),
        (
            GOOD_EVSE,
            Vehicle(VIN, soc_wh=22_000, capacity_wh=75_000, receives_1547=True),
            consent(),  # 30% of 75 kWh is 22.5 kWh
            Refusal.EV_BELOW_SOC_FLOOR,
        ),
        (
            GOOD_EVSE,
            Vehicle(
                VIN,
                soc_wh=50_000,
                capacity_wh=75_000,
                receives_1547=True,
                known_evses=frozenset({"US*KIT*E0002"}),
            ),
            consent(),
            Refusal.EVSE_NOT_RECOGNISED,
        ),
        (GOOD_EVSE, GOOD_EV, consent().opt_out(NOW), Refusal.DRIVER_OPTED_OUT),
        (GOOD_EVSE, GOOD_EV, None, Refusal.DRIVER_OPTED_OUT),
    ],
)
def test_each_rule_refuses_alone_with_its_reason(
    evse: Evse, vehicle: Vehicle, given: Consent | None, reason: Refusal
) -> None:
    decision = decide(program(), evse, vehicle, given, NOW)
    assert not decision.agreed
    assert decision.refusals == (reason,)


def test_a_dc_evse_needs_no_1547_in_the_ev() -> None:
    dc = Evse("US*KIT*E0001", grid_integrated=True, site_owner_allows=True, current="DC")
    ev = Vehicle(VIN, soc_wh=50_000, capacity_wh=75_000, receives_1547=False)
    assert decide(program(), dc, ev, consent(), NOW).agreed


def test_a_program_limited_to_some_evses_refuses_the_others() -> None:
    oem = program(
        operator=ProgramOperator.OEM,
        executed_by=Executor.EV,
        evse_ids=frozenset({"US*KIT*E0009"}),
    )
    decision = decide(oem, GOOD_EVSE, GOOD_EV, consent(), NOW)
    assert decision.refusals == (Refusal.EVSE_NOT_RECOGNISED,)
    assert REFUSED_BY[Refusal.EVSE_NOT_RECOGNISED] == "ev"


def test_all_reasons_are_kept_together() -> None:
    evse = Evse("US*KIT*E0001", grid_integrated=False, site_owner_allows=False, current="AC")
    ev = Vehicle(VIN, soc_wh=1_000, capacity_wh=75_000, receives_1547=False)
    decision = decide(program(), evse, ev, consent().opt_out(NOW), NOW)
    assert set(decision.refusals) == set(Refusal) - {Refusal.EVSE_NOT_RECOGNISED}


def test_opt_out_maps_to_2030_5_and_ocpp_2_1() -> None:
    given = consent()
    assert given.opted_in and given.allowed_energy_transfer == given.energy_transfer
    out = given.opt_out(NOW)
    assert not out.opted_in and out.opted_out_at == NOW
    assert out.sep2_status == SEP2_STATUS_OPTED_OUT == 4
    assert out.allowed_energy_transfer == frozenset({"AC_three_phase"})
    assert out.opt_out(NOW + timedelta(hours=1)).opted_out_at == NOW  # the first one counts
    assert without_discharging(frozenset({"DC", "DC_BPT"})) == frozenset({"DC"})


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValidationError, match="percentage"):
        consent(min_soc_percent=120)
    with pytest.raises(ValidationError, match="energy transfer modes"):
        consent(energy_transfer=frozenset({"AC_FAST"}))
    with pytest.raises(ValidationError, match="timezone"):
        consent(given_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="utility program"):
        program(executed_by=Executor.EV)
    with pytest.raises(ValidationError, match="positive"):
        program(max_discharge_w=0)
    with pytest.raises(ValidationError, match="AC or DC"):
        Evse("X", grid_integrated=True, site_owner_allows=True, current="HVDC")
    with pytest.raises(ValidationError, match="another vehicle"):
        decide(program(), GOOD_EVSE, GOOD_EV, consent(vehicle="OTHER"), NOW)


def test_register_keeps_programs_consents_opt_outs_and_decisions(db: Engine) -> None:
    register = V2gRegister(db)
    register.add_program(program())
    register.add_program(program(id="oem-home", operator=ProgramOperator.OEM, priority=1))
    assert register.program("utility-peak") == program()

    register.save_consent(consent())
    assert register.consent(VIN, "utility-peak") == consent()
    assert register.opt_out_record(VIN, "utility-peak") == (1, consent().energy_transfer)

    register.save_consent(consent().opt_out(NOW))
    stored = register.consent(VIN, "utility-peak")
    assert stored is not None and stored.opted_out_at == NOW
    status, modes = register.opt_out_record(VIN, "utility-peak")
    assert status == SEP2_STATUS_OPTED_OUT and modes == frozenset({"AC_three_phase"})

    agreed = decide(program(), GOOD_EVSE, GOOD_EV, consent(), NOW)
    refused = decide(program(), GOOD_EVSE, GOOD_EV, stored, NOW + timedelta(minutes=5))
    register.record(agreed)
    register.record(refused)
    assert register.decisions(VIN) == [agreed, refused]
    assert register.decisions(VIN)[1].refusals == (Refusal.DRIVER_OPTED_OUT,)


def test_bad_writes_lose_nothing_already_stored(db: Engine) -> None:
    register = V2gRegister(db)
    register.add_program(program())
    register.save_consent(consent())
    register.record(decide(program(), GOOD_EVSE, GOOD_EV, consent(), NOW))

    with pytest.raises(ValidationError, match="already exists"):
        register.add_program(program(name="Another name"))
    with pytest.raises(NotFoundError):
        register.save_consent(consent(program_id="no-such-program"))
    with pytest.raises(NotFoundError):
        register.program("no-such-program")

    assert register.program("utility-peak").name == "Evening peak support"
    assert register.consent(VIN, "utility-peak") == consent()
    assert register.consent(VIN, "no-such-program") is None
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DECISIONS)).scalar_one() == 1
