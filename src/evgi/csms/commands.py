"""Commands to stations, in one version-neutral form whatever OCPP version each station speaks.

Each returns the station's answer (the `call_result` dataclass of its version, e.g. with a
`status`) or raises `StationOffline`, `StationTimeout`, `StationCallError`,
`UnsupportedCommand` or `ValidationError` (a request its version's schema refuses; nothing is
sent). What a station accepts (profiles, local lists, reservations, variables) is stored as it
answers.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from evgi.core.errors import ValidationError
from evgi.csms.charge_point import VariableRef
from evgi.csms.connection import to_snake_case
from evgi.csms.errors import UnsupportedCommand
from evgi.csms.plug_and_charge import certificate_command
from evgi.csms.protocol import OcppVersion
from evgi.csms.registry import StationRegistry
from evgi.csms.v21.bidirectional import Bidirectional
from evgi.storage.bidirectional import EvChargingNeeds, current_charging_needs
from evgi.storage.charging import ChargingStore


class Commands:
    def __init__(self, registry: StationRegistry, store: ChargingStore) -> None:
        self._registry = registry
        self._store = store
        # Ids the CSMS chooses (remoteStartId, requestId): random start, so ids stay fresh
        # across restarts without being stored.
        self._ids = itertools.count(secrets.randbelow(2**30) + 1)

    def next_id(self) -> int:
        return next(self._ids)

    async def call(self, station_id: str, payload: Any, timeout: float | None = None) -> Any:
        """Send any request dataclass of the station's own version (its `ocpp.vXX.call`)."""
        return await self._registry.get(station_id).call(payload, timeout)

    async def send(
        self, station_id: str, action: str, body: dict[str, Any], timeout: float | None = None
    ) -> Any:
        """Send any action of the station's version by name, with its body as on the wire."""
        charge_point = self._registry.get(station_id)
        dialect = charge_point.dialect
        request = getattr(dialect.call, action, None)
        if not (isinstance(request, type) and dataclasses.is_dataclass(request)):
            raise UnsupportedCommand(f"{action} is not an action of {dialect.version.value}")
        try:
            payload = request(**to_snake_case(body))
        except TypeError as exc:  # a field the action lacks, or a required one missing
            raise ValidationError(f"invalid {action} body: {exc}") from exc
        return await charge_point.call(payload, timeout)

    async def change_availability(
        self, station_id: str, operative: bool, evse_id: int | None = None
    ) -> Any:
        """Whole station when `evse_id` is None (1.6: connector 0)."""
        return await self._registry.get(station_id).change_availability(operative, evse_id)

    async def reset(
        self, station_id: str, immediate: bool = True, evse_id: int | None = None
    ) -> Any:
        """1.6 Hard / Soft, 2.x Immediate / OnIdle."""
        return await self._registry.get(station_id).reset(immediate, evse_id)

    async def remote_start(
        self,
        station_id: str,
        id_token: str,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        remote_start_id: int | None = None,
    ) -> Any:
        """1.6 RemoteStartTransaction, 2.x RequestStartTransaction (evse_id = 1.6 connector)."""
        return await self._registry.get(station_id).remote_start(
            id_token, evse_id, remote_start_id or self.next_id(), charging_profile
        )

    async def remote_stop(self, station_id: str, transaction_id: str) -> Any:
        return await self._registry.get(station_id).remote_stop(transaction_id)

    async def unlock(self, station_id: str, evse_id: int, connector_id: int = 1) -> Any:
        return await self._registry.get(station_id).unlock(evse_id, connector_id)

    async def trigger(self, station_id: str, message: str, evse_id: int | None = None) -> Any:
        """TriggerMessage for a message name such as "StatusNotification" or "Heartbeat"."""
        return await self._registry.get(station_id).trigger(message, evse_id)

    async def get_variables(self, station_id: str, refs: Sequence[VariableRef]) -> Any:
        """2.x GetVariables; 1.6 GetConfiguration of the refs' variables (their keys)."""
        return await self._registry.get(station_id).get_variables(list(refs))

    async def set_variables(
        self, station_id: str, values: Sequence[tuple[VariableRef, str]]
    ) -> Any:
        """2.x SetVariables; 1.6 one ChangeConfiguration per key (a list of answers)."""
        return await self._registry.get(station_id).set_variables(list(values))

    async def get_report(self, station_id: str) -> Any:
        """2.x GetBaseReport FullInventory; 1.6 GetConfiguration of every key."""
        return await self._registry.get(station_id).get_report(self.next_id())

    async def send_local_list(
        self, station_id: str, tokens: Sequence[str] | None = None, full: bool = True
    ) -> Any:
        """Send registered tokens (all when `tokens` is None) as the next list version."""
        charge_point = self._registry.get(station_id)
        records = await self._store.apply(self._store.tokens, tokens)
        version = await self._store.apply(self._store.local_list_version, station_id) + 1
        return await charge_point.send_local_list(version, records, full)

    async def get_local_list_version(self, station_id: str) -> Any:
        return await self._registry.get(station_id).get_local_list_version()

    async def clear_cache(self, station_id: str) -> Any:
        return await self._registry.get(station_id).clear_cache()

    async def set_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any]
    ) -> Any:
        """`profile` in the station's version shape, camelCase as on the wire."""
        return await self._registry.get(station_id).set_charging_profile(evse_id, profile)

    async def clear_charging_profile(
        self,
        station_id: str,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        return await self._registry.get(station_id).clear_charging_profile(
            profile_id, evse_id, purpose, stack_level
        )

    async def composite_schedule(
        self, station_id: str, evse_id: int, duration: int, unit: str | None = None
    ) -> Any:
        return await self._registry.get(station_id).composite_schedule(evse_id, duration, unit)

    def version(self, station_id: str) -> OcppVersion:
        """The OCPP version the connected station speaks."""
        return self._registry.get(station_id).dialect.version

    def _bidirectional(self, station_id: str) -> Bidirectional:
        charge_point = self._registry.get(station_id)
        if not isinstance(charge_point, Bidirectional):
            version = charge_point.dialect.version.value
            raise UnsupportedCommand(f"{version} has no bidirectional power transfer")
        return charge_point

    def ev_charging_needs(self, station_id: str, evse_id: int) -> EvChargingNeeds | None:
        """2.1: the stored NotifyEVChargingNeeds of the EV at the EVSE, until its transaction
        ends (`evgi.storage.bidirectional.current_charging_needs`); the station need not be
        connected to this process."""
        return self._store.run(current_charging_needs, station_id, evse_id)

    async def set_der_control(
        self,
        station_id: str,
        control_id: str,
        control_type: str,
        settings: dict[str, Any],
        is_default: bool = False,
    ) -> Any:
        """2.1 SetDERControl; `settings` holds the control's own field, camelCase."""
        return await self._bidirectional(station_id).set_der_control(
            control_id, control_type, is_default, settings
        )

    async def reserve(
        self,
        station_id: str,
        reservation_id: int,
        id_token: str,
        expires_at: datetime,
        evse_id: int | None = None,
    ) -> Any:
        return await self._registry.get(station_id).reserve(
            reservation_id, id_token, expires_at, evse_id
        )

    async def cancel_reservation(self, station_id: str, reservation_id: int) -> Any:
        return await self._registry.get(station_id).cancel_reservation(reservation_id)

    async def update_firmware(self, station_id: str, location: str, retrieve_at: datetime) -> Any:
        return await self._registry.get(station_id).update_firmware(
            location, retrieve_at, self.next_id()
        )

    async def get_log(self, station_id: str, location: str) -> Any:
        """2.x GetLog (DiagnosticsLog); 1.6 GetDiagnostics. The upload goes to `location`."""
        return await self._registry.get(station_id).get_log(location, self.next_id())

    async def data_transfer(
        self, station_id: str, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> Any:
        return await self._registry.get(station_id).data_transfer(vendor_id, message_id, data)

    async def install_certificate(
        self, station_id: str, certificate_type: str, certificate: str
    ) -> Any:
        """A root (V2G, MO, CSMS or manufacturer) for the station to trust; PEM. 1.6 gets it,
        as the other two certificate commands, as a Plug & Charge DataTransfer."""
        body = {"certificateType": certificate_type, "certificate": certificate}
        return await certificate_command(self._registry.get(station_id), "InstallCertificate", body)

    async def get_installed_certificate_ids(
        self, station_id: str, certificate_types: Sequence[str] | None = None
    ) -> Any:
        body = {"certificateType": list(certificate_types)} if certificate_types else {}
        return await certificate_command(
            self._registry.get(station_id), "GetInstalledCertificateIds", body
        )

    async def delete_certificate(self, station_id: str, hash_data: dict[str, str]) -> Any:
        """`hash_data`: CertificateHashDataType, camelCase, as GetInstalledCertificateIds
        reports it."""
        return await certificate_command(
            self._registry.get(station_id), "DeleteCertificate", {"certificateHashData": hash_data}
        )
