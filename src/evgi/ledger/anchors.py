"""Hash anchors: proof that a document or a batch root existed, by whom and from which block."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from evgi.core.canonical import canonical_json
from evgi.ledger.state import Context, StateReader, method, query

Hash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
# What an anchor's metadata may take as canonical JSON (the EVM contract stores it as a string).
META_BYTES = 2048


@method("anchor", "put")
def put(ctx: Context, hash: Hash, kind: Kind, meta: dict[str, str] | None = None) -> None:
    ctx.require(ctx.state.get(f"anchor/{hash}") is None, f"{hash} is already anchored")
    ctx.require(len(meta or {}) <= 16, "at most 16 metadata entries per anchor")
    ctx.require(
        len(canonical_json(meta or {})) <= META_BYTES,
        f"anchor metadata takes at most {META_BYTES} bytes as canonical JSON",
    )
    ctx.state.set(
        f"anchor/{hash}",
        {
            "by": ctx.sender,
            "block": ctx.height,
            "timestamp": ctx.timestamp,
            "kind": kind,
            "meta": meta or {},
        },
    )
    ctx.emit("Anchored", hash=hash, kind=kind)


@query("anchor", "get")
def get(state: StateReader, hash: Hash) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"anchor/{hash}")
    return value
