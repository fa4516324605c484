"""2.x authorization: Authorize against the token store, local lists and the cache, and by
contract certificate (C07, `evgi.csms.plug_and_charge`)."""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import Action

from evgi.csms.authorization import TokenDecision
from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.metering import format_time
from evgi.csms.plug_and_charge import authorize_contract
from evgi.storage.charging import IdToken


def id_token_info(decision: TokenDecision) -> dict[str, Any]:
    info: dict[str, Any] = {"status": decision.status}
    if decision.expires_at is not None:
        info["cache_expiry_date_time"] = format_time(decision.expires_at)
    if decision.group_id is not None:
        info["group_id_token"] = {"id_token": decision.group_id, "type": "Central"}
    return info


class Authorization(ChargePoint):
    @on(Action.authorize)
    async def on_authorize(
        self,
        id_token: dict[str, Any],
        certificate: str | None = None,
        iso15118_certificate_hash_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        if certificate is None and iso15118_certificate_hash_data is None:
            decision = await self.authorize(id_token["id_token"])
            return self.dialect.call_result.Authorize(id_token_info=id_token_info(decision))
        contract = await authorize_contract(
            self, id_token["id_token"], certificate, iso15118_certificate_hash_data
        )
        return self.dialect.call_result.Authorize(
            id_token_info=id_token_info(contract.token),
            certificate_status=contract.certificate_status.value,
        )

    async def send_local_list(self, version: int, tokens: list[IdToken], full: bool) -> Any:
        entries = [
            {
                "id_token": {"id_token": t.token, "type": t.token_type},
                "id_token_info": id_token_info(TokenDecision(t.status, t.expires_at, t.group_id)),
            }
            for t in tokens
        ]
        answer = await self.call(
            self.dialect.call.SendLocalList(
                version_number=version,
                update_type="Full" if full else "Differential",
                local_authorization_list=entries or None,
            )
        )
        await self.record_local_list(answer.status, version, tokens, full)
        return answer

    async def get_local_list_version(self) -> Any:
        return await self.call(self.dialect.call.GetLocalListVersion())

    async def clear_cache(self) -> Any:
        return await self.call(self.dialect.call.ClearCache())
