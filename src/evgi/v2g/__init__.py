"""V2G consumer layer: discharge programs, driver consent, agreement to discharge, day-ahead
fleet plans and real-time dispatch. Nothing here reaches into the grid security layer: its
limits arrive as numbers (per-vehicle and feeder caps) that bound whatever is asked for."""

from evgi.v2g.agreement import REFUSED_BY, Decision, Evse, Refusal, Vehicle, decide
from evgi.v2g.consent import (
    BIDIRECTIONAL_MODES,
    SEP2_STATUS_OPTED_OUT,
    Consent,
    without_discharging,
)
from evgi.v2g.day_ahead import day_ahead
from evgi.v2g.dispatch import Dispatch, VehicleStates, dispatch, share
from evgi.v2g.program import DischargeProgram, Executor, ProgramOperator
from evgi.v2g.register import V2gRegister
from evgi.v2g.schedule import (
    SLOT_S,
    SLOTS_PER_DAY,
    Fleet,
    Grid,
    LinearProgram,
    Plan,
    fleet_lp,
    plan_fleet,
    reachable_wh,
    soc_at_departure,
)
from evgi.v2g.station_commands import Period, Sent, StationCommands, Target

__all__ = [
    "BIDIRECTIONAL_MODES",
    "REFUSED_BY",
    "SEP2_STATUS_OPTED_OUT",
    "SLOTS_PER_DAY",
    "SLOT_S",
    "Consent",
    "Decision",
    "DischargeProgram",
    "Dispatch",
    "Evse",
    "Executor",
    "Fleet",
    "Grid",
    "LinearProgram",
    "Period",
    "Plan",
    "ProgramOperator",
    "Refusal",
    "Sent",
    "StationCommands",
    "Target",
    "V2gRegister",
    "Vehicle",
    "VehicleStates",
    "day_ahead",
    "decide",
    "dispatch",
    "fleet_lp",
    "plan_fleet",
    "reachable_wh",
    "share",
    "soc_at_departure",
    "without_discharging",
]
