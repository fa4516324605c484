"""Inclusion proofs for transactions: a block header plus a Merkle path to its tx root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evgi.core.digest import to_hex
from evgi.core.errors import ValidationError
from evgi.core.merkle import MerkleProof, verify_merkle_proof
from evgi.ledger.block import BlockHeader


@dataclass(frozen=True)
class TransactionProof:
    header: BlockHeader
    merkle: MerkleProof

    @property
    def tx_hash(self) -> str:
        return to_hex(self.merkle.item)

    def check(self) -> None:
        """Raise unless the path leads to the header's tx root from the claimed position."""
        root = bytes.fromhex(self.header.tx_root[2:])
        if not verify_merkle_proof(self.merkle, root, size=self.header.tx_count):
            raise ValidationError(
                f"transaction {self.tx_hash} is not in block {self.header.height} "
                "(Merkle path does not reach its tx root)"
            )

    def to_json(self) -> dict[str, Any]:
        return {"block": self.header.to_json(), "merkle": self.merkle.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransactionProof:
        try:
            block = dict(data["block"])
            claimed = block.pop("hash")
            header = BlockHeader(**block)
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"malformed transaction proof: {exc}") from exc
        if header.compute_hash() != claimed:
            raise ValidationError("block header in the proof does not hash to its stated hash")
        return cls(header, MerkleProof.from_json(data["merkle"]))
