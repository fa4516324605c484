"""1.6 authorization: Authorize against the token store, local lists and the cache."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from evgi.csms.authorization import TokenDecision
from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import format_time
from evgi.storage.charging import IdToken


def id_tag_info(decision: TokenDecision) -> dict[str, Any]:
    info: dict[str, Any] = {"status": decision.status_16}
    if decision.expires_at is not None:
        info["expiry_date"] = format_time(decision.expires_at)
    if decision.group_id is not None:
        info["parent_id_tag"] = decision.group_id
    return info


class Authorization(ChargePoint):
    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        decision = await self.authorize(id_tag)
        return call_result.Authorize(id_tag_info=id_tag_info(decision))

    async def send_local_list(self, version: int, tokens: list[IdToken], full: bool) -> Any:
        entries = [
            {
                "id_tag": t.token,
                "id_tag_info": id_tag_info(TokenDecision(t.status, t.expires_at, t.group_id)),
            }
            for t in tokens
        ]
        answer = await self.call(
            call.SendLocalList(
                list_version=version,
                update_type="Full" if full else "Differential",
                local_authorization_list=entries,
            )
        )
        await self.record_local_list(answer.status, version, tokens, full)
        return answer

    async def get_local_list_version(self) -> Any:
        return await self.call(call.GetLocalListVersion())

    async def clear_cache(self) -> Any:
        return await self.call(call.ClearCache())
