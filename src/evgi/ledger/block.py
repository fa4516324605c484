"""Block headers and the genesis block: hash links and the three roots each block commits to."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evgi.core.canonical import canonical_json, parse_json
from evgi.core.digest import keccak256, to_hex
from evgi.core.keys import normalize_address
from evgi.core.merkle import merkle_root

ZERO_HASH = to_hex(bytes(32))


@dataclass(frozen=True)
class BlockHeader:
    height: int
    prev_hash: str
    timestamp: int
    tx_root: str
    receipts_root: str
    writes_root: str
    tx_count: int
    extra: str = ""

    @classmethod
    def from_row(cls, row: Any) -> BlockHeader:
        """Header of a stored block row (its stored hash is checked by whoever needs to)."""
        return cls(
            row.height,
            row.prev_hash,
            row.timestamp,
            row.tx_root,
            row.receipts_root,
            row.writes_root,
            row.tx_count,
            row.extra,
        )

    def compute_hash(self) -> str:
        return to_hex(keccak256(canonical_json(asdict(self))))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hash": self.compute_hash()}


def encoded_writes(writes: dict[str, Any]) -> dict[str, bytes]:
    """Each written value's canonical JSON, null for a deletion: the writes root covers these
    bytes and the state table keeps them, so each value is encoded once."""
    return {key: canonical_json(value) for key, value in writes.items()}


def writes_root(encoded: dict[str, bytes]) -> str:
    """Root over a block's state writes (`encoded_writes`) in key order; leaf i is the canonical
    JSON of [key, value], joined here from the key's and the value's."""
    leaves = [
        keccak256(b"[" + canonical_json(key) + b"," + encoded[key] + b"]")
        for key in sorted(encoded)
    ]
    return to_hex(merkle_root(leaves))


@dataclass(frozen=True)
class Genesis:
    """What block 0 fixes for ever: the chain id and the first trust anchors."""

    chain_id: int
    trust_anchors: tuple[str, ...]
    timestamp: int

    def encode(self) -> str:
        return canonical_json(
            {
                "chainId": self.chain_id,
                "trustAnchors": list(self.trust_anchors),
                "timestamp": self.timestamp,
            }
        ).decode()

    @classmethod
    def decode(cls, text: str) -> Genesis:
        data = parse_json(text)
        return cls(
            int(data["chainId"]),
            tuple(normalize_address(a) for a in data["trustAnchors"]),
            int(data["timestamp"]),
        )

    def writes(self) -> dict[str, Any]:
        from evgi.ledger.entities import genesis_writes

        return genesis_writes(self)

    def header(self) -> BlockHeader:
        empty = to_hex(merkle_root([]))
        return BlockHeader(
            0,
            ZERO_HASH,
            self.timestamp,
            empty,
            empty,
            writes_root(encoded_writes(self.writes())),
            0,
            self.encode(),
        )
