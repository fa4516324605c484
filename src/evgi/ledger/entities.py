"""Entity registry of the MOBI EVGI identity subsystem: trust anchors, on- and off-boarding, and
the anchors of entity-certificate hashes (the certificates themselves stay off the ledger).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from evgi.core.identifiers import EntityKind
from evgi.core.keys import normalize_address
from evgi.ledger.state import Context, StateReader, method, query

if TYPE_CHECKING:
    from evgi.ledger.block import Genesis

Hash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
Reason = Annotated[str, Field(max_length=500)]

# Who may vouch for whom besides a trust anchor: an OEM for what it builds, a CPO for its sites.
ISSUE_RIGHTS: dict[EntityKind, frozenset[EntityKind]] = {
    EntityKind.OEM: frozenset({EntityKind.VEHICLE, EntityKind.BATTERY}),
    EntityKind.CPO: frozenset({EntityKind.CHARGER, EntityKind.METER}),
    EntityKind.UTILITY: frozenset({EntityKind.METER}),
    EntityKind.EMSP: frozenset({EntityKind.USER}),
}


def genesis_writes(genesis: Genesis) -> dict[str, Any]:
    writes: dict[str, Any] = {}
    for anchor in genesis.trust_anchors:
        writes[f"entity/trust_anchor/{anchor}"] = True
        writes[f"entity/{anchor}"] = {
            "kind": EntityKind.TRUST_ANCHOR.value,
            "ecHash": None,
            "issuer": None,
            "onboarded": 0,
            "offboarded": None,
        }
    return writes


def is_trust_anchor(state: StateReader, address: str) -> bool:
    return bool(state.get(f"entity/trust_anchor/{address}"))


def _entity(state: StateReader, address: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"entity/{address}")
    return value


@method("entity", "onboard")
def onboard(ctx: Context, subject: str, kind: str, ec_hash: Hash) -> dict[str, Any]:
    subject = normalize_address(subject)
    ctx.require(kind in EntityKind.__members__.values(), f"unknown entity kind {kind!r}")
    entity_kind = EntityKind(kind)
    if not is_trust_anchor(ctx.state, ctx.sender):
        issuer = _entity(ctx.state, ctx.sender)
        ctx.require(
            issuer is not None and issuer["offboarded"] is None,
            f"{ctx.sender} is not an on-boarded entity and cannot on-board others",
        )
        assert issuer is not None
        allowed = ISSUE_RIGHTS.get(EntityKind(issuer["kind"]), frozenset())
        ctx.require(entity_kind in allowed, f"a {issuer['kind']} may not on-board a {kind}")
    ctx.require(entity_kind != EntityKind.TRUST_ANCHOR, "trust anchors are fixed in genesis")
    current = _entity(ctx.state, subject)
    ctx.require(
        current is None or current["offboarded"] is not None,
        f"{subject} is already on-boarded; off-board it before issuing a new certificate",
    )
    ctx.require(
        ctx.state.get(f"ec/{ec_hash}") is None, f"certificate {ec_hash} is already anchored"
    )
    record = {
        "kind": kind,
        "ecHash": ec_hash,
        "issuer": ctx.sender,
        "onboarded": ctx.height,
        "offboarded": None,
    }
    ctx.state.set(f"entity/{subject}", record)
    ctx.state.set(
        f"ec/{ec_hash}",
        {
            "subject": subject,
            "issuer": ctx.sender,
            "kind": kind,
            "block": ctx.height,
            "offboarded": None,
        },
    )
    ctx.emit("EntityOnboarded", subject=subject, kind=kind, ecHash=ec_hash, issuer=ctx.sender)
    return record


@method("entity", "offboard")
def offboard(ctx: Context, subject: str, reason: Reason) -> None:
    subject = normalize_address(subject)
    current = _entity(ctx.state, subject)
    ctx.require(current is not None, f"{subject} was never on-boarded")
    assert current is not None
    ctx.require(current["offboarded"] is None, f"{subject} is already off-boarded")
    ctx.require(current["kind"] != EntityKind.TRUST_ANCHOR.value, "a trust anchor stays")
    ctx.require(
        is_trust_anchor(ctx.state, ctx.sender) or current["issuer"] == ctx.sender,
        f"only a trust anchor or the issuer may off-board {subject}",
    )
    ctx.state.set(f"entity/{subject}", {**current, "offboarded": ctx.height})
    anchor = ctx.state.get(f"ec/{current['ecHash']}")
    ctx.state.set(f"ec/{current['ecHash']}", {**anchor, "offboarded": ctx.height})
    ctx.emit("EntityOffboarded", subject=subject, reason=reason, by=ctx.sender)


@query("entity", "get")
def get(state: StateReader, subject: str) -> dict[str, Any] | None:
    return _entity(state, normalize_address(subject))


@query("entity", "certificate")
def certificate(state: StateReader, ec_hash: Hash) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"ec/{ec_hash}")
    return value


@query("entity", "is_trust_anchor")
def trust_anchor(state: StateReader, address: str) -> bool:
    return is_trust_anchor(state, normalize_address(address))
