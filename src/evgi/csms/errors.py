"""Errors of CSMS-initiated commands, for the operator API to turn into HTTP answers."""

from __future__ import annotations

from typing import Any

from evgi.core.errors import EvgiError


class StationOffline(EvgiError):
    """The station has no open OCPP connection (or lost it while the command was pending)."""

    code = "station_offline"


class StationTimeout(EvgiError):
    """The station did not answer within the call timeout."""

    code = "station_timeout"


class StationCallError(EvgiError):
    """The station answered with a CALLERROR, or with a response that breaks the schema."""

    code = "station_call_error"

    def __init__(self, error_code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.description = message
        self.details = details


class UnsupportedCommand(EvgiError):
    """The command does not exist in the OCPP version the station speaks."""

    code = "unsupported_command"
