"""Binary Merkle trees over 32-byte hashes, with inclusion proofs a third party can check.

Leaves and inner nodes are domain-separated (0x00 / 0x01 prefixes, as in RFC 6962) so a node can
never pass for a leaf; an odd node at the end of a level is carried up unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from evgi.core.digest import from_hex, keccak256, to_hex
from evgi.core.errors import ValidationError

EMPTY_ROOT = keccak256(b"")


def leaf_hash(item: bytes) -> bytes:
    return keccak256(b"\x00" + item)


def node_hash(left: bytes, right: bytes) -> bytes:
    return keccak256(b"\x01" + left + right)


def _levels(items: list[bytes]) -> list[list[bytes]]:
    level = [leaf_hash(item) for item in items]
    levels = [level]
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(items: list[bytes]) -> bytes:
    if not items:
        return EMPTY_ROOT
    return _levels(items)[-1][0]


@dataclass(frozen=True)
class MerkleProof:
    """Proof that `item` is leaf `index` of the tree whose root is `root`."""

    item: bytes
    index: int
    path: tuple[tuple[Literal["L", "R"], bytes], ...]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "item": to_hex(self.item),
            "index": self.index,
            "path": [[side, to_hex(h)] for side, h in self.path],
            "root": to_hex(self.root),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MerkleProof:
        try:
            path: list[tuple[Literal["L", "R"], bytes]] = []
            for side, h in data["path"]:
                if side not in ("L", "R"):
                    raise ValidationError(f"proof step side must be L or R, not {side!r}")
                path.append((side, from_hex(h)))
            return cls(
                from_hex(data["item"]), int(data["index"]), tuple(path), from_hex(data["root"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"malformed Merkle proof: {exc}") from exc


def merkle_proof(items: list[bytes], index: int) -> MerkleProof:
    if not 0 <= index < len(items):
        raise ValidationError(f"leaf {index} is outside a tree of {len(items)} leaves")
    levels = _levels(items)
    path: list[tuple[Literal["L", "R"], bytes]] = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(("L" if sibling < position else "R", level[sibling]))
        position //= 2
    return MerkleProof(items[index], index, tuple(path), levels[-1][0])


def _path_fits_index(path: tuple[tuple[str, bytes], ...], index: int, size: int | None) -> bool:
    """True if the path's sides are the ones leaf `index` has (in a tree of `size` leaves).

    Without this check a proof could claim any position. A node with index bit 1 always has a
    left sibling; with bit 0 it has a right sibling unless it is the last node of its level, and
    then it stays last on every level above, so only left siblings follow. With `size` known
    (e.g. a block's transaction count) the sides are recomputed exactly.
    """
    if index < 0:
        return False
    sides = [side for side, _ in path]
    if size is not None:
        if index >= size:
            return False
        expected: list[str] = []
        position, width = index, size
        while width > 1:
            if position ^ 1 < width:
                expected.append("L" if position & 1 else "R")
            position, width = position // 2, (width + 1) // 2
        return sides == expected
    position, step = index, 0
    while step < len(sides) or position:
        side = sides[step] if step < len(sides) else None
        if position & 1:
            if side != "L":
                return False
            step += 1
        elif side == "R":
            step += 1
        elif not position:
            return False  # a left sibling above the leftmost node
        position //= 2
    return True


def verify_merkle_proof(
    proof: MerkleProof, expected_root: bytes | None = None, size: int | None = None
) -> bool:
    """True if the proof's path leads from its item to its root (and to `expected_root`), along
    the sides its index implies (exactly, when the tree's leaf count `size` is given)."""
    if not _path_fits_index(proof.path, proof.index, size):
        return False
    node = leaf_hash(proof.item)
    for side, sibling in proof.path:
        node = node_hash(sibling, node) if side == "L" else node_hash(node, sibling)
    root = proof.root if expected_root is None else expected_root
    return node == proof.root == root
