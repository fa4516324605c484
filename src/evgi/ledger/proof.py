"""Inclusion proofs for transactions: a block header plus a path from the transaction to the
header's transactions root (a binary Merkle path on the local engine, a Merkle-Patricia path on
the evm engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import rlp
from trie import HexaryTrie

from evgi.core.digest import from_hex, keccak256, to_hex
from evgi.core.errors import ValidationError
from evgi.core.merkle import MerkleProof, verify_merkle_proof
from evgi.ledger.block import BlockHeader


class InclusionProof(Protocol):
    """What every engine's proof offers: the transaction it proves, a check, a JSON form."""

    @property
    def header(self) -> BlockHeader: ...

    @property
    def tx_hash(self) -> str: ...

    def check(self) -> None: ...

    def to_json(self) -> dict[str, Any]: ...


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


@dataclass(frozen=True)
class PatriciaProof:
    """A transaction of an EVM block and the trie nodes from the block's transactionsRoot down to
    it, keyed by its index: what any Ethereum light client checks."""

    header: BlockHeader
    index: int
    transaction: bytes
    nodes: tuple[bytes, ...]

    @property
    def tx_hash(self) -> str:
        return to_hex(keccak256(self.transaction))

    def check(self) -> None:
        """Raise unless the nodes lead from the header's tx root to this transaction."""
        try:
            found = HexaryTrie.get_from_proof(
                from_hex(self.header.tx_root),
                rlp.encode(self.index),
                [rlp.decode(node) for node in self.nodes],
            )
        except Exception as exc:  # the trie raises several kinds of error for a broken path
            raise ValidationError(f"broken Merkle-Patricia proof: {exc}") from exc
        if found != self.transaction:
            raise ValidationError(
                f"transaction {self.tx_hash} is not at index {self.index} of block "
                f"{self.header.height} (the path does not reach its transactionsRoot)"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "block": self.header.to_json(),
            "index": self.index,
            "transaction": to_hex(self.transaction),
            "nodes": [to_hex(node) for node in self.nodes],
        }
