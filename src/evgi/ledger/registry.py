"""Identity registry with ERC-1056 (EthereumDIDRegistry) semantics: owners, delegates, attributes.

Validity is measured against block timestamps, so re-deriving state from genesis is exact.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from evgi.core.canonical import canonical_json
from evgi.core.digest import keccak256
from evgi.core.keys import normalize_address
from evgi.ledger.state import Context, StateReader, method, query


def _at_most_4096_bytes(value: str) -> str:
    if len(value.encode()) > 4096:
        raise ValueError("at most 4096 bytes as UTF-8")
    return value


Validity = Annotated[int, Field(gt=0, le=100 * 365 * 86400)]
# ERC-1056 names and delegate types are bytes32: printable ASCII, so they read back unchanged.
Name = Annotated[str, Field(pattern=r"^[!-~]{1,32}$")]
Value = Annotated[str, AfterValidator(_at_most_4096_bytes)]


def identity_owner(state: StateReader, identity: str) -> str:
    owner: str | None = state.get(f"did/{identity}/owner")
    return owner or identity


def _only_owner(ctx: Context, identity: str) -> str:
    identity = normalize_address(identity)
    owner = identity_owner(ctx.state, identity)
    ctx.require(owner == ctx.sender, f"{ctx.sender} is not the owner of {identity} ({owner})")
    return identity


def _changed(ctx: Context, identity: str) -> int:
    previous = int(ctx.state.get(f"did/{identity}/changed") or 0)
    ctx.state.set(f"did/{identity}/changed", ctx.height)
    return previous


def attribute_key(identity: str, name: str, value: str) -> str:
    return f"did/{identity}/attr/{keccak256(canonical_json([name, value])).hex()}"


@method("did", "change_owner")
def change_owner(ctx: Context, identity: str, new_owner: str) -> None:
    identity = _only_owner(ctx, identity)
    new_owner = normalize_address(new_owner)
    ctx.state.set(f"did/{identity}/owner", new_owner)
    ctx.emit(
        "DIDOwnerChanged",
        identity=identity,
        owner=new_owner,
        previousChange=_changed(ctx, identity),
    )


@method("did", "add_delegate")
def add_delegate(
    ctx: Context, identity: str, delegate_type: Name, delegate: str, validity: Validity
) -> None:
    identity = _only_owner(ctx, identity)
    delegate = normalize_address(delegate)
    valid_to = ctx.timestamp + validity
    ctx.state.set(f"did/{identity}/delegate/{delegate_type}/{delegate}", valid_to)
    ctx.emit(
        "DIDDelegateChanged",
        identity=identity,
        delegateType=delegate_type,
        delegate=delegate,
        validTo=valid_to,
        previousChange=_changed(ctx, identity),
    )


@method("did", "revoke_delegate")
def revoke_delegate(ctx: Context, identity: str, delegate_type: Name, delegate: str) -> None:
    identity = _only_owner(ctx, identity)
    delegate = normalize_address(delegate)
    ctx.state.set(f"did/{identity}/delegate/{delegate_type}/{delegate}", ctx.timestamp)
    ctx.emit(
        "DIDDelegateChanged",
        identity=identity,
        delegateType=delegate_type,
        delegate=delegate,
        validTo=ctx.timestamp,
        previousChange=_changed(ctx, identity),
    )


@method("did", "set_attribute")
def set_attribute(
    ctx: Context, identity: str, name: Name, value: Value, validity: Validity
) -> None:
    identity = _only_owner(ctx, identity)
    valid_to = ctx.timestamp + validity
    ctx.state.set(
        attribute_key(identity, name, value), {"name": name, "value": value, "validTo": valid_to}
    )
    ctx.emit(
        "DIDAttributeChanged",
        identity=identity,
        name=name,
        value=value,
        validTo=valid_to,
        previousChange=_changed(ctx, identity),
    )


@method("did", "revoke_attribute")
def revoke_attribute(ctx: Context, identity: str, name: Name, value: Value) -> None:
    identity = _only_owner(ctx, identity)
    key = attribute_key(identity, name, value)
    ctx.require(ctx.state.get(key) is not None, f"{identity} has no attribute {name}={value}")
    ctx.state.set(key, {"name": name, "value": value, "validTo": 0})
    ctx.emit(
        "DIDAttributeChanged",
        identity=identity,
        name=name,
        value=value,
        validTo=0,
        previousChange=_changed(ctx, identity),
    )


@query("did", "owner")
def owner(state: StateReader, identity: str) -> str:
    return identity_owner(state, normalize_address(identity))


@query("did", "record")
def record(state: StateReader, identity: str, at: int) -> dict[str, Any]:
    """Owner, delegates and attributes still valid at unix time `at`, as a resolver needs them."""
    identity = normalize_address(identity)
    prefix = f"did/{identity}/delegate/"
    delegates = []
    for key, valid_to in sorted(state.scan(prefix).items()):
        delegate_type, delegate = key[len(prefix) :].split("/")
        if int(valid_to) > at:
            delegates.append({"type": delegate_type, "delegate": delegate, "validTo": valid_to})
    attributes = [
        attr
        for _, attr in sorted(state.scan(f"did/{identity}/attr/").items())
        if int(attr["validTo"]) > at
    ]
    return {
        "identity": identity,
        "owner": identity_owner(state, identity),
        "changed": int(state.get(f"did/{identity}/changed") or 0),
        "delegates": delegates,
        "attributes": attributes,
    }


@query("did", "valid_delegate")
def valid_delegate(
    state: StateReader, identity: str, delegate_type: str, delegate: str, at: int
) -> bool:
    key = (
        f"did/{normalize_address(identity)}/delegate/{delegate_type}/{normalize_address(delegate)}"
    )
    return int(state.get(key) or 0) > at
