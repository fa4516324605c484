"""Merkle trees: every leaf's proof verifies, and no altered proof does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evgi.core import (
    MerkleProof,
    ValidationError,
    keccak256,
    merkle_proof,
    merkle_root,
    verify_merkle_proof,
)
from evgi.core.merkle import EMPTY_ROOT, leaf_hash, node_hash

SIZES = range(1, 18)


def _items(size: int) -> list[bytes]:
    return [keccak256(size.to_bytes(2, "big") + i.to_bytes(2, "big")) for i in range(size)]


def _flip_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def test_small_trees_by_hand() -> None:
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([a]) == leaf_hash(a)
    assert merkle_root([a, b]) == node_hash(leaf_hash(a), leaf_hash(b))
    # The odd node is carried up unchanged, not paired with a copy of itself.
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)), leaf_hash(c))
    # Leaves and nodes are domain-separated: a node's preimage is not a leaf.
    assert leaf_hash(leaf_hash(a) + leaf_hash(b)) != merkle_root([a, b])


def test_root_depends_on_order_and_count() -> None:
    items = _items(5)
    assert merkle_root(items) != merkle_root(items[::-1])
    assert merkle_root(items) != merkle_root(items[:4])
    assert merkle_root(items) != merkle_root([*items, items[-1]])


@pytest.mark.parametrize("size", SIZES)
def test_every_leaf_proof_verifies(size: int) -> None:
    items = _items(size)
    root = merkle_root(items)
    for index in range(size):
        proof = merkle_proof(items, index)
        assert proof.root == root and proof.item == items[index] and proof.index == index
        assert verify_merkle_proof(proof)
        assert verify_merkle_proof(proof, root)
        assert verify_merkle_proof(proof, root, size=size)


@pytest.mark.parametrize("size", SIZES)
def test_flipped_sibling_fails(size: int) -> None:
    items = _items(size)
    root = merkle_root(items)
    for index in range(size):
        proof = merkle_proof(items, index)
        for step, (side, sibling) in enumerate(proof.path):
            path = list(proof.path)
            path[step] = (side, _flip_bit(sibling))
            assert not verify_merkle_proof(replace(proof, path=tuple(path)), root)
            path[step] = ("R" if side == "L" else "L", sibling)
            assert not verify_merkle_proof(replace(proof, path=tuple(path)), root)


@pytest.mark.parametrize("size", SIZES)
def test_flipped_index_fails(size: int) -> None:
    items = _items(size)
    root = merkle_root(items)
    for index in range(size):
        proof = merkle_proof(items, index)
        # With the leaf count known (a block header carries it), every other index fails.
        for other in range(-1, size + 2):
            if other != index:
                claimed = replace(proof, index=other)
                assert not verify_merkle_proof(claimed, root, size=size), (index, other)
        # Without it, a flipped low bit still contradicts the path's first side.
        assert not verify_merkle_proof(replace(proof, index=index ^ 1), root)
        assert not verify_merkle_proof(replace(proof, index=-1), root)


def test_size_that_does_not_match_the_path_fails() -> None:
    items = _items(6)
    proof = merkle_proof(items, 4)
    assert verify_merkle_proof(proof, size=6)
    assert not verify_merkle_proof(proof, size=5)
    assert not verify_merkle_proof(proof, size=4)


@pytest.mark.parametrize("size", [1, 2, 7])
def test_wrong_item_or_root_fails(size: int) -> None:
    items = _items(size)
    proof = merkle_proof(items, size - 1)
    assert not verify_merkle_proof(replace(proof, item=b"forged"))
    assert not verify_merkle_proof(proof, _flip_bit(proof.root))
    assert not verify_merkle_proof(replace(proof, root=_flip_bit(proof.root)), proof.root)


def test_out_of_range_leaf() -> None:
    with pytest.raises(ValidationError):
        merkle_proof(_items(3), 3)
    with pytest.raises(ValidationError):
        merkle_proof(_items(3), -1)
    with pytest.raises(ValidationError):
        merkle_proof([], 0)


@pytest.mark.parametrize("size", [1, 2, 5, 17])
def test_json_round_trip(size: int) -> None:
    items = _items(size)
    for index in range(size):
        proof = merkle_proof(items, index)
        data = proof.to_json()
        assert data["item"].startswith("0x") and data["index"] == index
        restored = MerkleProof.from_json(data)
        assert restored == proof
        assert verify_merkle_proof(restored, merkle_root(items), size=size)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("root"),
        lambda d: d.update(path=[["X", "0x00"]]),
        lambda d: d.update(path=[["L"]]),
        lambda d: d.update(item="0xzz"),
        lambda d: d.update(index="three"),
        lambda d: d.update(path=None),
    ],
)
def test_malformed_json_is_a_validation_error(damage: object) -> None:
    data = merkle_proof(_items(4), 1).to_json()
    damage(data)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        MerkleProof.from_json(data)
