"""The access decision a data host makes, from ledger state alone: is the accessor on-boarded and
not blocked, and does an AC in force or one of the owner's groups grant it this role?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evgi.ledger import Ledger, LedgerView
from evgi.ledger.permissions import Role
from evgi.permissions.refusal import Reason, Refusal

OWNER = "owner"


@dataclass(frozen=True)
class Grant:
    """What allowed an access: `owner`, an AC hash or `group:<name>`; expiry in unix seconds."""

    via: str
    expires: int | None


def authorize(
    ledger: Ledger,
    container_id: str,
    container: dict[str, Any],
    accessor: str,
    role: Role,
    now: int,
) -> Grant:
    """Grant or refuse `role` on a container to `accessor` (an address) at unix time `now`."""
    entity = ledger.query("entity", "get", subject=accessor)
    if entity is None:
        raise Refusal(Reason.NOT_ONBOARDED, f"{accessor} is not an on-boarded entity")
    if entity["offboarded"] is not None:
        raise Refusal(
            Reason.OFFBOARDED, f"{accessor} was off-boarded in block {entity['offboarded']}"
        )
    owner = container["owner"]
    if accessor == owner:
        return Grant(OWNER, None)
    if ledger.query("permissions", "blocked", owner=owner, accessor=accessor):
        raise Refusal(Reason.BLOCKED, f"the data owner has blocked {accessor}")
    refusal: Refusal | None = None
    for cert_hash in reversed(
        ledger.query("permissions", "allowed", container=container_id, accessor=accessor)
    ):
        certificate = ledger.query("permissions", "certificate", hash=cert_hash)
        if certificate["role"] != role.value:
            continue
        if certificate["revoked"] is not None:
            refusal = refusal or Refusal(
                Reason.REVOKED,
                f"access certificate {cert_hash} was revoked in block {certificate['revoked']}",
            )
        elif certificate["expires"] <= now:
            refusal = refusal or Refusal(
                Reason.EXPIRED, f"access certificate {cert_hash} has expired"
            )
        else:
            return Grant(cert_hash, certificate["expires"])
    wanted = f"{container_id}:{role.value}"
    for name in ledger.query("permissions", "groups_of", owner=owner, member=accessor):
        group = ledger.query("permissions", "group", owner=owner, group=name)
        if wanted in group["grants"]:
            return Grant(f"group:{name}", None)
    raise refusal or Refusal(
        Reason.NOT_GRANTED, f"no access certificate or group grants {accessor} {role.value} access"
    )


@dataclass(frozen=True)
class _Decision:
    """An outcome of `authorize` (the grant, or why not) and the unix time it was made at."""

    at: int
    outcome: Grant | tuple[Reason, str]


def decide(
    view: LedgerView,
    container_id: str,
    container: dict[str, Any],
    accessor: str,
    role: Role,
    now: int,
) -> Grant:
    """`authorize` at the head `view` last saw, worked out once per head: every unlock and
    every read asks it again, and between two blocks only the passing of time can change the
    answer. Time only ends grants (an AC expires, never starts), so a refusal holds for the
    rest of the head and a grant until its expiry; a clock that went back decides again."""

    def decision() -> _Decision:
        try:
            return _Decision(now, authorize(view, container_id, container, accessor, role, now))
        except Refusal as refusal:
            return _Decision(now, (refusal.reason, refusal.message))

    def holds(known: _Decision) -> bool:
        if now < known.at:
            return False
        grant = known.outcome
        return not isinstance(grant, Grant) or grant.expires is None or grant.expires > now

    outcome = view.derived(("access", container_id, accessor, role), decision, holds).outcome
    if isinstance(outcome, Grant):
        return outcome
    raise Refusal(*outcome)
