"""The station's settings: OCPP 1.6 configuration keys and OCPP 2.x device-model variables.

Both versions expose the same underlying settings under different names (1.6 `HeartbeatInterval`
is 2.x `OCPPCommCtrlr.HeartbeatInterval`), with the same typing and read-only rules, so one
store serves both and each version looks settings up by its own names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from evgi.sim.stations.meter import CURRENT, ENERGY, MEASURANDS, POWER, SOC


class Kind(StrEnum):
    """Value types, named as OCPP 2.x's DataEnumType names them."""

    INTEGER = "integer"
    BOOLEAN = "boolean"
    MEMBER_LIST = "MemberList"
    STRING = "string"


@dataclass
class Setting:
    name: str  # what the station's own code calls it
    key: str | None  # OCPP 1.6 configuration key (None: not in 1.6)
    component: str | None  # OCPP 2.x component (None: not in 2.x)
    variable: str | None
    kind: Kind
    value: str
    readonly: bool = False
    members: tuple[str, ...] = field(default=())  # allowed members of a MemberList

    def accepts(self, value: str) -> bool:
        if self.kind == Kind.INTEGER:
            return value.strip().isascii() and value.strip().isdigit()
        if self.kind == Kind.BOOLEAN:
            return value.lower() in ("true", "false")
        if self.kind == Kind.MEMBER_LIST:
            items = [v.strip() for v in value.split(",") if v.strip()]
            return bool(items) and all(item in self.members for item in items)
        return len(value) <= 500


class Configuration:
    """Settings with typed access for the station and by-name access for each protocol."""

    def __init__(self, settings: Iterable[Setting]) -> None:
        self._settings = {s.name: s for s in settings}
        self._by_key = {s.key.lower(): s for s in self._settings.values() if s.key}
        self._by_variable = {
            (s.component.lower(), s.variable.lower()): s
            for s in self._settings.values()
            if s.component and s.variable
        }

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings.values())

    def by_key(self, key: str) -> Setting | None:
        """OCPP 1.6 keys are case-insensitive strings."""
        return self._by_key.get(key.lower())

    def by_variable(self, component: str, variable: str) -> Setting | None:
        return self._by_variable.get((component.lower(), variable.lower()))

    def has_component(self, component: str) -> bool:
        return any(c == component.lower() for c, _ in self._by_variable)

    def integer(self, name: str) -> int:
        return int(self._settings[name].value)

    def flag(self, name: str) -> bool:
        return self._settings[name].value.lower() == "true"

    def members(self, name: str) -> list[str]:
        return [v.strip() for v in self._settings[name].value.split(",") if v.strip()]

    def change(self, setting: Setting, value: str) -> bool:
        """A change a CSMS asked for: refused when read-only or of the wrong type."""
        if setting.readonly or not setting.accepts(value):
            return False
        setting.value = value.strip() if setting.kind != Kind.STRING else value
        return True

    def put(self, name: str, value: object) -> None:
        """A change the station makes itself (the heartbeat interval a CSMS sent at boot)."""
        text = str(value).lower() if isinstance(value, bool) else str(value)
        self._settings[name].value = text


def station_settings(station_id: str, evses: int, security_profile: int, dc: bool) -> list[Setting]:
    """What a simulated station lets a CSMS read and write, with the defaults it ships with."""
    sampled = [ENERGY, POWER, CURRENT] + ([SOC] if dc else [])
    measurands = ",".join(sampled)
    return [
        Setting(
            "heartbeat_interval",
            "HeartbeatInterval",
            "OCPPCommCtrlr",
            "HeartbeatInterval",
            Kind.INTEGER,
            "300",
        ),
        Setting(
            "sample_interval",
            "MeterValueSampleInterval",
            "SampledDataCtrlr",
            "TxUpdatedInterval",
            Kind.INTEGER,
            "60",
        ),
        Setting(
            "sampled_data",
            "MeterValuesSampledData",
            "SampledDataCtrlr",
            "TxUpdatedMeasurands",
            Kind.MEMBER_LIST,
            measurands,
            members=MEASURANDS,
        ),
        Setting(
            "connection_timeout",
            "ConnectionTimeOut",
            "TxCtrlr",
            "EVConnectionTimeOut",
            Kind.INTEGER,
            "120",
        ),
        Setting(
            "authorize_remote_start",
            "AuthorizeRemoteTxRequests",
            "AuthCtrlr",
            "AuthorizeRemoteStart",
            Kind.BOOLEAN,
            "false",
        ),
        Setting(
            "local_authorize_offline",
            "LocalAuthorizeOffline",
            "AuthCtrlr",
            "LocalAuthorizeOffline",
            Kind.BOOLEAN,
            "true",
        ),
        Setting(
            "local_pre_authorize",
            "LocalPreAuthorize",
            "AuthCtrlr",
            "LocalPreAuthorize",
            Kind.BOOLEAN,
            "false",
        ),
        Setting(
            "offline_unknown_id",
            "AllowOfflineTxForUnknownId",
            "AuthCtrlr",
            "OfflineTxForUnknownIdEnabled",
            Kind.BOOLEAN,
            "false",
        ),
        Setting(
            "auth_cache",
            "AuthorizationCacheEnabled",
            "AuthCacheCtrlr",
            "Enabled",
            Kind.BOOLEAN,
            "true",
        ),
        Setting(
            "local_list",
            "LocalAuthListEnabled",
            "LocalAuthListCtrlr",
            "Enabled",
            Kind.BOOLEAN,
            "true",
        ),
        Setting(
            "local_list_max",
            "LocalAuthListMaxLength",
            "LocalAuthListCtrlr",
            "Storage",
            Kind.INTEGER,
            "1000",
            readonly=True,
        ),
        Setting(
            "send_local_list_max",
            "SendLocalListMaxLength",
            "LocalAuthListCtrlr",
            "ItemsPerMessage",
            Kind.INTEGER,
            "100",
            readonly=True,
        ),
        Setting(
            "stop_on_ev_disconnect",
            "StopTransactionOnEVSideDisconnect",
            "TxCtrlr",
            "StopTxOnEVSideDisconnect",
            Kind.BOOLEAN,
            "true",
        ),
        Setting(
            "stop_on_invalid_id",
            "StopTransactionOnInvalidId",
            "TxCtrlr",
            "StopTxOnInvalidId",
            Kind.BOOLEAN,
            "true",
        ),
        Setting(
            "tx_start_point",
            None,
            "TxCtrlr",
            "TxStartPoint",
            Kind.STRING,
            "PowerPathClosed",
            readonly=True,
        ),
        Setting(
            "tx_stop_point",
            None,
            "TxCtrlr",
            "TxStopPoint",
            Kind.STRING,
            "PowerPathClosed",
            readonly=True,
        ),
        Setting(
            "number_of_connectors",
            "NumberOfConnectors",
            None,
            None,
            Kind.INTEGER,
            str(evses),
            readonly=True,
        ),
        Setting(
            "feature_profiles",
            "SupportedFeatureProfiles",
            None,
            None,
            Kind.STRING,
            "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,"
            "RemoteTrigger",
            readonly=True,
        ),
        Setting(
            "max_stack_level",
            "ChargeProfileMaxStackLevel",
            "SmartChargingCtrlr",
            "ProfileStackLevel",
            Kind.INTEGER,
            "8",
            readonly=True,
        ),
        Setting(
            "max_periods",
            "ChargingScheduleMaxPeriods",
            "SmartChargingCtrlr",
            "PeriodsPerSchedule",
            Kind.INTEGER,
            "24",
            readonly=True,
        ),
        Setting(
            "smart_charging",
            None,
            "SmartChargingCtrlr",
            "Enabled",
            Kind.BOOLEAN,
            "true",
            readonly=True,
        ),
        Setting(
            "reservations", None, "ReservationCtrlr", "Enabled", Kind.BOOLEAN, "true", readonly=True
        ),
        Setting(
            "security_profile",
            "SecurityProfile",
            "SecurityCtrlr",
            "SecurityProfile",
            Kind.INTEGER,
            str(security_profile),
            readonly=True,
        ),
        Setting(
            "identity", None, "SecurityCtrlr", "Identity", Kind.STRING, station_id, readonly=True
        ),
    ]
