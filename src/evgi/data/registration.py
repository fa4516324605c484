"""Data registration: what a host anchors for the records it stores. Each record is hashed with
its container, number and time; a batch is anchored as the Merkle root of those hashes, with the
container's URI, owner and schema. The records themselves never reach the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evgi.core.canonical import canonical_json
from evgi.core.digest import from_hex, keccak256, to_hex
from evgi.core.merkle import MerkleProof, merkle_proof, merkle_root
from evgi.ledger import Receipt


def record_hash(container_id: str, seq: int, at: datetime, body: dict[str, Any]) -> str:
    return to_hex(
        keccak256(
            canonical_json(
                {"container": container_id, "seq": seq, "at": at.isoformat(), "body": body}
            )
        )
    )


@dataclass(frozen=True)
class Registration:
    hash: str
    container: str
    records: tuple[str, ...]
    receipt: Receipt

    def proof(self, index: int) -> MerkleProof:
        """Inclusion proof of record `index` of the batch under the anchored root."""
        return merkle_proof([from_hex(h) for h in self.records], index)


def registration_root(record_hashes: Sequence[str]) -> str:
    return to_hex(merkle_root([from_hex(h) for h in record_hashes]))
