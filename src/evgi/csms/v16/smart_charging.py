"""1.6 smart charging: profiles by connector, cleared by id or criteria, composite schedules."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call

from evgi.csms.charge_point import ChargePoint


class SmartCharging(ChargePoint):
    async def set_charging_profile(self, evse_id: int, profile: dict[str, Any]) -> Any:
        """`profile` is a 1.6 csChargingProfiles object, camelCase as on the wire."""
        answer = await self.call(
            call.SetChargingProfile(connector_id=evse_id, cs_charging_profiles=profile)
        )
        tx = profile.get("transactionId")
        await self.record_profile_answer(
            answer.status,
            evse_id,
            profile,
            profile["chargingProfilePurpose"],
            None if tx is None else str(tx),
        )
        return answer

    async def clear_charging_profile(
        self,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> Any:
        answer = await self.call(
            call.ClearChargingProfile(
                id=profile_id,
                connector_id=evse_id,
                charging_profile_purpose=purpose,
                stack_level=stack_level,
            )
        )
        await self.record_profiles_cleared(answer.status, profile_id, evse_id, purpose, stack_level)
        return answer

    async def composite_schedule(self, evse_id: int, duration: int, unit: str | None) -> Any:
        return await self.call(
            call.GetCompositeSchedule(
                connector_id=evse_id, duration=duration, charging_rate_unit=unit
            )
        )
