"""2.x smart charging: profiles per EVSE, cleared by id or criteria, composite schedules."""

from __future__ import annotations

from typing import Any

from evgi.csms.charge_point import ChargePoint


class SmartCharging(ChargePoint):
    async def set_charging_profile(self, evse_id: int, profile: dict[str, Any]) -> Any:
        """`profile` is the version's ChargingProfile object, camelCase as on the wire."""
        answer = await self.call(
            self.dialect.call.SetChargingProfile(evse_id=evse_id, charging_profile=profile)
        )
        await self.record_profile_answer(
            answer.status,
            evse_id,
            profile,
            profile["chargingProfilePurpose"],
            profile.get("transactionId"),
        )
        return answer

    async def clear_charging_profile(
        self,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> Any:
        criteria = {
            "evse_id": evse_id,
            "charging_profile_purpose": purpose,
            "stack_level": stack_level,
        }
        answer = await self.call(
            self.dialect.call.ClearChargingProfile(
                charging_profile_id=profile_id,
                charging_profile_criteria=criteria
                if any(v is not None for v in criteria.values())
                else None,
            )
        )
        await self.record_profiles_cleared(answer.status, profile_id, evse_id, purpose, stack_level)
        return answer

    async def composite_schedule(self, evse_id: int, duration: int, unit: str | None) -> Any:
        return await self.call(
            self.dialect.call.GetCompositeSchedule(
                duration=duration, evse_id=evse_id, charging_rate_unit=unit
            )
        )
