"""Which stations are connected right now, and the answers each was last given."""

from __future__ import annotations

from evgi.csms.charge_point import ChargePoint
from evgi.csms.connection import AnswerMemory
from evgi.csms.errors import StationOffline


class StationRegistry:
    def __init__(self) -> None:
        self._connected: dict[str, ChargePoint] = {}
        self._answers: dict[str, AnswerMemory] = {}

    def answers(self, station_id: str) -> AnswerMemory:
        """A station's answer memory, kept across reconnections for retransmitted calls."""
        return self._answers.setdefault(station_id, AnswerMemory())

    def attach(self, charge_point: ChargePoint) -> ChargePoint | None:
        """Make `charge_point` the station's connection; returns the one it replaces."""
        previous = self._connected.get(charge_point.id)
        self._connected[charge_point.id] = charge_point
        return previous

    def detach(self, charge_point: ChargePoint) -> bool:
        """Forget a closed connection unless a newer one has replaced it; True if forgotten."""
        if self._connected.get(charge_point.id) is charge_point:
            del self._connected[charge_point.id]
            return True
        return False

    def get(self, station_id: str) -> ChargePoint:
        try:
            return self._connected[station_id]
        except KeyError:
            raise StationOffline(f"station {station_id} is not connected") from None
