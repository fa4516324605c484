"""Hash functions: Keccak-256 as Ethereum uses it, so ledger hashes match on the EVM engine."""

from __future__ import annotations

import hashlib

import sha3


def keccak256(data: bytes) -> bytes:
    digest: bytes = sha3.keccak_256(data).digest()
    return digest


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def to_hex(data: bytes) -> str:
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    """Parse a 0x-prefixed (or bare) hex string, rejecting anything else with a clear message."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        return bytes.fromhex(body)
    except ValueError as exc:
        raise ValueError(f"not a hex string: {text[:80]!r}") from exc
