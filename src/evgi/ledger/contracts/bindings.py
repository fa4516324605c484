"""How the state machine's calls travel as contract calls: which function of which contract
each method is, how its arguments become ABI values and back, and how contract events become
the local engine's log entries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from hexbytes import HexBytes

from evgi.core.canonical import canonical_json, parse_json
from evgi.core.digest import to_hex
from evgi.core.errors import ValidationError
from evgi.core.keys import checksum_address, normalize_address
from evgi.core.units import MINOR_UNITS

ZERO_ADDRESS = "0x" + "00" * 20


class Kind(Enum):
    """How a local argument travels in the ABI."""

    PLAIN = "plain"
    ADDRESS = "address"
    TEXT32 = "text32"  # an ASCII name in a bytes32 (ERC-1056 names and delegate types)
    HASH32 = "hash32"  # a 0x hash in a bytes32
    UTF8 = "utf8"  # a string as bytes (ERC-1056 attribute values)
    JSON = "json"  # a JSON object as its canonical text (anchor metadata)
    DECIMALS = "decimals"  # derived from the currency, not a local argument


@dataclass(frozen=True)
class Binding:
    """One method of the state machine as one function of one contract."""

    module: str
    method: str
    contract: str
    function: str
    params: tuple[tuple[str, Kind], ...]


def _b(
    module: str, method: str, contract: str, function: str, *params: tuple[str, Kind]
) -> Binding:
    return Binding(module, method, contract, function, params)


_P, _A = Kind.PLAIN, Kind.ADDRESS
BINDINGS = {
    (b.module, b.method): b
    for b in (
        _b(
            "token",
            "create",
            "token",
            "create",
            ("symbol", _P),
            ("currency", _P),
            ("currency", Kind.DECIMALS),
        ),
        _b("token", "grant_issuer", "token", "grant_issuer", ("symbol", _P), ("issuer", _A)),
        _b("token", "mint", "token", "mint", ("symbol", _P), ("to", _A), ("amount", _P)),
        _b("token", "burn", "token", "burn", ("symbol", _P), ("amount", _P)),
        _b("token", "transfer", "token", "transfer", ("symbol", _P), ("to", _A), ("amount", _P)),
        _b(
            "escrow",
            "open",
            "escrow",
            "open",
            ("escrow_id", _P),
            ("symbol", _P),
            ("payee", _A),
            ("operator", _A),
            ("amount", _P),
            ("timeout", _P),
        ),
        _b(
            "escrow",
            "settle",
            "escrow",
            "settle",
            ("escrow_id", _P),
            ("payee_amount", _P),
            ("fee_amount", _P),
            ("fee_payee", _A),
            ("record_hash", Kind.HASH32),
        ),
        _b("escrow", "refund", "escrow", "refund", ("escrow_id", _P)),
        _b("did", "change_owner", "registry", "changeOwner", ("identity", _A), ("new_owner", _A)),
        _b(
            "did",
            "add_delegate",
            "registry",
            "addDelegate",
            ("identity", _A),
            ("delegate_type", Kind.TEXT32),
            ("delegate", _A),
            ("validity", _P),
        ),
        _b(
            "did",
            "revoke_delegate",
            "registry",
            "revokeDelegate",
            ("identity", _A),
            ("delegate_type", Kind.TEXT32),
            ("delegate", _A),
        ),
        _b(
            "did",
            "set_attribute",
            "registry",
            "setAttribute",
            ("identity", _A),
            ("name", Kind.TEXT32),
            ("value", Kind.UTF8),
            ("validity", _P),
        ),
        _b(
            "did",
            "revoke_attribute",
            "registry",
            "revokeAttribute",
            ("identity", _A),
            ("name", Kind.TEXT32),
            ("value", Kind.UTF8),
        ),
        _b(
            "anchor",
            "put",
            "anchors",
            "put",
            ("hash", Kind.HASH32),
            ("kind", _P),
            ("meta", Kind.JSON),
        ),
    )
}
BY_FUNCTION = {(b.contract, b.function): b for b in BINDINGS.values()}

# Event fields whose contract names differ from the local log's (Vyper reserves `from`).
RENAMED_FIELDS = {"Transfer": {"sender": "from", "receiver": "to"}}
TEXT32_FIELDS = {"name", "delegateType"}


def to_abi(kind: Kind, args: dict[str, Any], name: str) -> Any:
    value = args[name]
    if kind is Kind.ADDRESS:
        return checksum_address(normalize_address(value))
    if kind is Kind.TEXT32:
        return value.encode().ljust(32, b"\0")
    if kind is Kind.HASH32:
        return bytes.fromhex(value[2:])
    if kind is Kind.UTF8:
        return value.encode()
    if kind is Kind.JSON:
        return canonical_json(value or {}).decode()
    if kind is Kind.DECIMALS:
        if value not in MINOR_UNITS:
            raise ValidationError(f"unsupported currency {value}")
        return MINOR_UNITS[value]
    return value


def from_abi(kind: Kind, value: Any) -> Any:
    if kind is Kind.ADDRESS:
        return str(value).lower()
    if kind is Kind.TEXT32:
        return bytes(value).rstrip(b"\0").decode()
    if kind is Kind.HASH32:
        return to_hex(bytes(value))
    if kind is Kind.UTF8:
        return bytes(value).decode()
    if kind is Kind.JSON:
        return parse_json(value)
    return value


def log_value(event: str, field: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        address = value.lower()
        return None if address == ZERO_ADDRESS and event == "Transfer" else address
    if isinstance(value, bytes | HexBytes):
        if field in TEXT32_FIELDS:
            return bytes(value).rstrip(b"\0").decode()
        if len(value) == 32:
            return to_hex(bytes(value))
        return bytes(value).decode()
    return value
