"""Smart charging: the stack of charging profiles a station keeps and the limit it obeys.

OCPP 1.6 and 2.x describe profiles in different words but with the same rules: per purpose the
active profile with the highest stack level wins, a transaction's own profile overrides the
default one, and the station-wide maximum caps them all. Each version parses its payloads into
`ChargingProfile` and lets this module decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Purpose(StrEnum):
    STATION_MAX = "StationMax"  # 1.6 ChargePointMaxProfile, 2.x ChargingStationMaxProfile
    EXTERNAL = "ChargingStationExternalConstraints"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}
UNITS = ("W", "A")


@dataclass(frozen=True)
class Period:
    start_s: int
    limit: float | None  # None: this period sets no limit (2.1 setpoint-only periods)
    phases: int | None = None
    setpoint: float | None = None  # 2.1 CentralSetpoint: the power to hold, import positive


@dataclass(frozen=True)
class ChargingProfile:
    id: int
    evse: int  # 0: the whole station
    stack_level: int
    purpose: Purpose
    kind: str  # Absolute, Recurring or Relative
    unit: str  # W or A
    periods: tuple[Period, ...]
    installed: datetime
    start: datetime | None = None
    duration_s: int | None = None
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None

    def bound(self, evse: int, transaction_id: str | None) -> ChargingProfile:
        """The profile sent with a remote start, for the EVSE and transaction it started."""
        return replace(self, evse=evse, transaction_id=transaction_id)

    def _origin(self, at: datetime, tx_start: datetime | None) -> datetime:
        if self.kind == "Relative":
            return tx_start or at
        base = self.start or self.valid_from or self.installed
        if self.kind == "Recurring":
            step = _RECURRENCE.get(self.recurrency or "Daily", _RECURRENCE["Daily"])
            return base + step * ((at - base) // step)
        return base

    def valid_at(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_to is None or at < self.valid_to
        )

    def period_at(self, at: datetime, tx_start: datetime | None) -> Period | None:
        """The schedule period in force at `at`, or None when the profile is not active."""
        if not self.valid_at(at):
            return None
        offset = (at - self._origin(at, tx_start)).total_seconds()
        if offset < 0 or (self.duration_s is not None and offset >= self.duration_s):
            return None
        current = None
        for period in self.periods:
            if period.start_s <= offset:
                current = period
        return current

    def changes(self, at: datetime, tx_start: datetime | None) -> list[datetime]:
        """Moments after `at` (within a recurrence) where this profile's limit may change."""
        origin = self._origin(at, tx_start)
        moments = [origin + timedelta(seconds=p.start_s) for p in self.periods]
        if self.duration_s is not None:
            moments.append(origin + timedelta(seconds=self.duration_s))
        if self.kind == "Recurring":
            moments.append(origin + _RECURRENCE.get(self.recurrency or "Daily", timedelta(1)))
        moments += [m for m in (self.valid_from, self.valid_to) if m is not None]
        return [m for m in moments if m > at]


class ProfileRefused(ValueError):
    """A profile the station cannot take, with the reason a real station would log."""


@dataclass(frozen=True)
class Rating:
    """What converts amperes into watts at an EVSE."""

    voltage_v: int
    phases: int

    def watts(self, limit: float, unit: str, phases: int | None) -> int:
        if unit == "W":
            return int(limit)
        return int(limit * self.voltage_v * (phases or self.phases))

    def amperes(self, watts: int, phases: int | None = None) -> float:
        return round(watts / (self.voltage_v * (phases or self.phases)), 1)


class ChargingProfiles:
    """The installed profiles of one station."""

    def __init__(self, max_stack_level: int = 8, max_periods: int = 24) -> None:
        self.max_stack_level = max_stack_level
        self.max_periods = max_periods
        self._profiles: dict[int, ChargingProfile] = {}

    def __len__(self) -> int:
        return len(self._profiles)

    def install(self, profile: ChargingProfile) -> None:
        """Add or replace a profile; raises `ProfileRefused` for what the station can't do."""
        if not 0 <= profile.stack_level <= self.max_stack_level:
            raise ProfileRefused(f"stack level {profile.stack_level} above {self.max_stack_level}")
        if not profile.periods or len(profile.periods) > self.max_periods:
            raise ProfileRefused(f"a schedule needs 1 to {self.max_periods} periods")
        if profile.periods[0].start_s != 0:
            raise ProfileRefused("the first schedule period must start at 0")
        starts = [p.start_s for p in profile.periods]
        if starts != sorted(set(starts)):
            raise ProfileRefused("schedule periods must start in increasing order")
        if profile.unit not in UNITS:
            raise ProfileRefused(f"unknown charging rate unit {profile.unit!r}")
        if profile.purpose == Purpose.STATION_MAX and profile.evse != 0:
            raise ProfileRefused("a station maximum profile applies to EVSE 0 only")
        if profile.kind == "Recurring" and profile.start is None:
            raise ProfileRefused("a recurring profile needs a schedule start")
        for other in list(self._profiles.values()):
            same_slot = (other.evse, other.purpose, other.stack_level) == (
                profile.evse,
                profile.purpose,
                profile.stack_level,
            ) and other.transaction_id == profile.transaction_id
            if other.id == profile.id or same_slot:
                del self._profiles[other.id]
        self._profiles[profile.id] = profile

    def clear(
        self,
        profile_id: int | None = None,
        evse: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove the profiles matching every criterion given; returns how many went."""
        doomed = [
            p.id
            for p in self._profiles.values()
            if (profile_id is None or p.id == profile_id)
            and (evse is None or p.evse == evse)
            and (purpose is None or p.purpose == purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]
        for key in doomed:
            del self._profiles[key]
        return len(doomed)

    def end_transaction(self, evse: int, transaction_id: str | None) -> None:
        """A transaction profile lives as long as its transaction."""
        for p in list(self._profiles.values()):
            ours = p.purpose == Purpose.TX and p.evse == evse
            if ours and p.transaction_id in (None, transaction_id):
                del self._profiles[p.id]

    def _winner(
        self, candidates: Iterable[ChargingProfile], at: datetime, tx_start: datetime | None
    ) -> tuple[ChargingProfile, Period] | None:
        best: tuple[ChargingProfile, Period] | None = None
        for profile in candidates:
            period = profile.period_at(at, tx_start)
            if period is None:
                continue
            if best is None or (profile.stack_level, profile.evse) > (
                best[0].stack_level,
                best[0].evse,
            ):
                best = (profile, period)
        return best

    def _transaction_winner(
        self, evse: int, at: datetime, transaction_id: str | None, tx_start: datetime | None
    ) -> tuple[ChargingProfile, Period] | None:
        if transaction_id is None:
            return None
        return self._winner(
            (
                p
                for p in self._profiles.values()
                if p.purpose == Purpose.TX
                and p.evse in (0, evse)
                and p.transaction_id in (None, transaction_id)
            ),
            at,
            tx_start,
        )

    def setpoint_w(
        self,
        evse: int,
        rating: Rating,
        at: datetime,
        transaction_id: str | None,
        tx_start: datetime | None = None,
    ) -> int | None:
        """The setpoint (W, import positive) of the transaction profile in force, or None when
        that profile's period carries none (only OCPP 2.1 V2X profiles do)."""
        winner = self._transaction_winner(evse, at, transaction_id, tx_start)
        if winner is None:
            return None
        profile, period = winner
        if period.setpoint is None:
            return None
        return rating.watts(period.setpoint, profile.unit, period.phases)

    def limit_w(
        self,
        evse: int,
        rating: Rating,
        at: datetime,
        transaction_id: str | None = None,
        tx_start: datetime | None = None,
    ) -> int | None:
        """The power limit at an EVSE (EVSE 0: the station), or None when nothing limits it."""
        chosen: list[tuple[ChargingProfile, Period]] = []
        profiles = list(self._profiles.values())
        for purpose in (Purpose.STATION_MAX, Purpose.EXTERNAL):
            winner = self._winner(
                (p for p in profiles if p.purpose == purpose and p.evse in (0, evse)), at, tx_start
            )
            if winner:
                chosen.append(winner)
        if evse != 0:
            tx = self._transaction_winner(evse, at, transaction_id, tx_start)
            if tx is None:
                defaults = [p for p in profiles if p.purpose == Purpose.TX_DEFAULT]
                tx = self._winner((p for p in defaults if p.evse == evse), at, tx_start)
                tx = tx or self._winner((p for p in defaults if p.evse == 0), at, tx_start)
            if tx:
                chosen.append(tx)
        limits = [
            rating.watts(period.limit, profile.unit, period.phases)
            for profile, period in chosen
            if period.limit is not None
        ]
        return min(limits) if limits else None

    def next_change(self, at: datetime, tx_start: datetime | None = None) -> datetime | None:
        """The next moment any profile's limit may change, to cut simulated time there."""
        moments = [m for p in self._profiles.values() for m in p.changes(at, tx_start)]
        return min(moments) if moments else None

    def composite(
        self,
        evse: int,
        rating: Rating,
        at: datetime,
        duration_s: int,
        hardware_w: int,
        transaction_id: str | None = None,
        tx_start: datetime | None = None,
    ) -> list[tuple[int, int]]:
        """The limit an EVSE will obey over the next `duration_s` seconds, as (offset, W) steps
        where each step holds until the next; without a profile the hardware rating rules.
        Relative schedules start with the transaction, or now when none runs."""
        tx_start = tx_start or at
        end = at + timedelta(seconds=duration_s)
        steps: list[tuple[int, int]] = []
        moment = at
        while moment < end:
            limit = self.limit_w(evse, rating, moment, transaction_id, tx_start)
            watts = hardware_w if limit is None else min(limit, hardware_w)
            offset = int((moment - at).total_seconds())
            if not steps or steps[-1][1] != watts:
                steps.append((offset, watts))
            following = self.next_change(moment, tx_start)
            if following is None:
                break
            moment = following
        return steps
