"""Day-ahead V2G fleet plan and real-time dispatch: evgi against a direct LP solved by HiGHS.

Plan: a residential day ahead (96 slots of 15 minutes from noon, vehicles plugged in from the
evening to the next morning, bidirectional 11 kW chargers, departure targets, a feeder import
and export limit per slot, an evening price peak) for 1,000, 5,000 and 10,000 vehicles. evgi
plans it with `plan_fleet` (pooled LP relaxation, then laxity-ordered disaggregation); the peer
solves the exact LP of the same problem, every vehicle and slot, with HiGHS through highspy.
The gap is evgi's plan objective over the exact optimum; evgi also reports its own certified
gap (over its lower bound), which needs no exact solve.

Dispatch: one feeder setpoint shared across 100,000 vehicles by `dispatch` against the same
split posed to HiGHS as an LP (meet the setpoint within every vehicle's bounds).

One JSON line per size, then one for dispatch, on stdout; progress on stderr. The machine may be
shared with other work: timings are noisy, so each figure says what it is the median of.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import highspy
import numpy as np
from scipy import sparse

from evgi.v2g import LinearProgram, VehicleStates, day_ahead, dispatch, fleet_lp, plan_fleet

T = TypeVar("T")


def progress(message: str) -> None:
    print(f"[v2g_schedule] {message}", file=sys.stderr, flush=True)


def highs_solve(program: LinearProgram) -> float:
    """The LP's optimum by HiGHS, passed column-wise as the library takes it."""
    matrix = sparse.csc_array(program.matrix)
    lp = highspy.HighsLp()
    lp.num_col_ = matrix.shape[1]
    lp.num_row_ = matrix.shape[0]
    lp.col_cost_ = program.cost
    lp.col_lower_ = program.col_lower
    lp.col_upper_ = np.where(np.isinf(program.col_upper), highspy.kHighsInf, program.col_upper)
    lp.row_lower_ = np.where(np.isinf(program.row_lower), -highspy.kHighsInf, program.row_lower)
    lp.row_upper_ = np.where(np.isinf(program.row_upper), highspy.kHighsInf, program.row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.passModel(lp)
    solver.run()
    status = solver.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"HiGHS ended with {solver.modelStatusToString(status)}")
    return float(solver.getInfo().objective_function_value)


def timed(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def plan_size(vehicles: int, exact: bool) -> dict[str, object]:
    fleet, grid = day_ahead(vehicles, seed=1)
    progress(f"{vehicles} vehicles: evgi plan")
    evgi_s, plan = timed(lambda: plan_fleet(fleet, grid))
    line: dict[str, object] = {
        "bench": "v2g_schedule",
        "what": "day-ahead plan, 96 slots, feeder limit, departure targets, 11 kW V2G",
        "vehicles": vehicles,
        "evgi_s": round(evgi_s, 3),
        "evgi_cost_minor": plan.cost_minor,
        "evgi_pools": plan.pools,
        "evgi_certified_gap": round(plan.gap, 5),
        "targets_missed": int(np.count_nonzero(plan.shortfall_wh > 1e-3)),
        "feeder_ok": bool(
            np.all(plan.feeder_w <= grid.import_limit_w + 1e-6)
            and np.all(plan.feeder_w >= -grid.export_limit_w - 1e-6)
        ),
    }
    if exact:
        progress(f"{vehicles} vehicles: exact LP with HiGHS (this takes a while at 10,000)")
        peer_s, optimum = timed(lambda: highs_solve(fleet_lp(fleet, grid)))
        line.update(
            {
                "peer": f"HiGHS {highspy.Highs().version()} (highspy), exact LP",
                "peer_s": round(peer_s, 3),
                "peer_optimum_minor": round(optimum, 2),
                "gap_to_optimum": round((plan.objective_minor - optimum) / abs(optimum), 5),
                "ratio": round(peer_s / evgi_s, 2),  # times faster than the exact LP
            }
        )
    return line


def dispatch_line(vehicles: int, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(7)
    capacity = rng.choice([40_000.0, 60_000.0, 77_000.0, 100_000.0], vehicles)
    states = VehicleStates(
        soc_wh=capacity * rng.uniform(0.1, 0.95, vehicles),
        floor_wh=capacity * 0.2,
        capacity_wh=capacity,
        max_charge_w=np.full(vehicles, 11_000.0),
        max_discharge_w=np.full(vehicles, 11_000.0),
        grid_import_cap_w=rng.choice([7_400.0, 11_000.0], vehicles),
        grid_export_cap_w=rng.choice([5_000.0, 11_000.0], vehicles),
        discharge_allowed=rng.random(vehicles) < 0.8,
        charge_efficiency=np.full(vehicles, 0.95),
        discharge_efficiency=np.full(vehicles, 0.95),
    )
    setpoint = -0.25 * vehicles * 11_000
    progress(f"dispatch across {vehicles} vehicles, {repeats} times")
    dispatch(setpoint, states)  # warm-up
    evgi_times = [timed(lambda: dispatch(setpoint, states))[0] for _ in range(repeats)]
    lower, upper = states.limits(60.0)
    program = LinearProgram(
        cost=np.zeros(vehicles),
        matrix=sparse.csr_array(np.ones((1, vehicles))),
        row_lower=np.array([max(setpoint, lower.sum())]),
        row_upper=np.array([max(setpoint, lower.sum())]),
        col_lower=lower,
        col_upper=upper,
        unit=np.zeros(0, dtype=np.intp),
        slot=np.zeros(0, dtype=np.intp),
    )
    peer_times = [timed(lambda: highs_solve(program))[0] for _ in range(max(3, repeats // 20))]
    evgi_ms = statistics.median(evgi_times) * 1000
    peer_ms = statistics.median(peer_times) * 1000
    return {
        "bench": "v2g_dispatch",
        "what": "one feeder setpoint shared across vehicles by headroom, consent and grid caps",
        "vehicles": vehicles,
        "evgi_ms_median": round(evgi_ms, 3),
        "evgi_runs": repeats,
        "peer": "HiGHS (highspy), the same split as a feasibility LP",
        "peer_ms_median": round(peer_ms, 3),
        "peer_runs": len(peer_times),
        "ratio": round(peer_ms / evgi_ms, 1),  # times faster than HiGHS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument(
        "--no-exact-largest",
        action="store_true",
        help="skip the exact HiGHS LP at the largest size (about two minutes on 2 cores)",
    )
    parser.add_argument("--dispatch-vehicles", type=int, default=100_000)
    parser.add_argument("--dispatch-repeats", type=int, default=200)
    args = parser.parse_args()
    progress(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    largest = max(args.sizes)
    for size in args.sizes:
        exact = not (args.no_exact_largest and size == largest)
        print(json.dumps(plan_size(size, exact)), flush=True)
    print(json.dumps(dispatch_line(args.dispatch_vehicles, args.dispatch_repeats)), flush=True)


if __name__ == "__main__":
    main()
