"""Accounts and signatures: one secp256k1 identity that Ethereum tooling recognises as its own."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount
from eth_keys import keys as eth_keys
from hypothesis import given, settings
from hypothesis import strategies as st

from evgi.core import (
    Account,
    SignatureError,
    ValidationError,
    checksum_address,
    keccak256,
    normalize_address,
    public_key_to_address,
    recover_address,
    verify_digest,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# EIP-55's own test vectors.
EIP55_VECTORS = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]

private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(
    lambda k: k.to_bytes(32, "big")
)


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_eip55_checksum_vectors(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert checksum_address("0x" + address[2:].upper()) == address
    assert normalize_address(address) == address.lower()


def test_normalize_address_refuses_bad_checksums_and_shapes() -> None:
    good = EIP55_VECTORS[0]
    letter = next(i for i, c in enumerate(good) if i > 1 and c.isalpha())
    broken = good[:letter] + good[letter].swapcase() + good[letter + 1 :]
    with pytest.raises(ValidationError, match="checksum"):
        normalize_address(broken)
    assert normalize_address(good.upper().replace("0X", "0x")) == good.lower()
    for bad in ("0x1234", good[2:], good + "00", "0x" + "g" * 40):
        with pytest.raises(ValidationError):
            normalize_address(bad)
        with pytest.raises(ValidationError):
            checksum_address(bad)


@settings(max_examples=50)
@given(private_keys)
def test_address_matches_eth_account(private_key: bytes) -> None:
    account = Account(private_key)
    theirs = EthAccount.from_key(private_key)
    assert account.address == theirs.address.lower()
    assert checksum_address(account.address) == theirs.address
    assert public_key_to_address(account.public_key) == account.address


@settings(max_examples=50)
@given(private_keys, st.binary(min_size=32, max_size=32))
def test_sign_and_recover(private_key: bytes, digest: bytes) -> None:
    account = Account(private_key)
    signature = account.sign_digest(digest)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert recover_address(digest, signature) == account.address
    # Ethereum's v = 27/28 form is accepted too, and eth-keys recovers the same signer.
    assert recover_address(digest, signature[:64] + bytes([signature[64] + 27])) == account.address
    theirs = eth_keys.Signature(signature).recover_public_key_from_msg_hash(digest)
    assert theirs.to_checksum_address() == checksum_address(account.address)
    verify_digest(digest, signature, checksum_address(account.address))


def test_eth_account_signatures_recover_to_the_same_address() -> None:
    theirs = EthAccount.create()
    digest = keccak256(b"charging session 42")
    signed = theirs.unsafe_sign_hash(digest)
    signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    assert signed.v in (27, 28)
    assert recover_address(digest, signature) == theirs.address.lower()


def test_compressed_public_key_gives_the_same_address() -> None:
    account = Account.generate()
    compressed = bytes([2 + (account.public_key[64] & 1)]) + account.public_key[1:33]
    assert public_key_to_address(compressed) == account.address
    with pytest.raises(ValidationError):
        public_key_to_address(account.public_key[:40])
    with pytest.raises(ValidationError):
        public_key_to_address(b"\x02" + b"\xff" * 32)  # x beyond the field: no such point


def test_verify_digest_rejects_another_signer_and_another_digest() -> None:
    alice, bob = Account.generate(), Account.generate()
    digest = keccak256(b"message")
    signature = alice.sign_digest(digest)
    with pytest.raises(SignatureError, match="not by"):
        verify_digest(digest, signature, bob.address)
    with pytest.raises(SignatureError):
        verify_digest(keccak256(b"other message"), signature, alice.address)


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_bad_signature_lengths(length: int) -> None:
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_address(keccak256(b"x"), b"\x01" * length)


@pytest.mark.parametrize("v", [2, 3, 26, 29, 35, 255])
def test_bad_recovery_ids(v: int) -> None:
    account = Account.generate()
    digest = keccak256(b"x")
    signature = account.sign_digest(digest)
    with pytest.raises(SignatureError, match="recovery id"):
        recover_address(digest, signature[:64] + bytes([v]))


def test_bad_digest_length() -> None:
    account = Account.generate()
    signature = account.sign_digest(keccak256(b"x"))
    with pytest.raises(SignatureError, match="32 bytes"):
        recover_address(b"\x00" * 31, signature)
    with pytest.raises(ValidationError):
        account.sign_digest(b"\x00" * 31)


def test_signatures_that_recover_to_no_key_raise() -> None:
    digest = keccak256(b"x")
    for r_s in (b"\x00" * 64, b"\xff" * 64):
        with pytest.raises(SignatureError):
            recover_address(digest, r_s + b"\x00")


def test_high_s_twin_of_a_signature_is_refused() -> None:
    """(r, n - s, v ^ 1) recovers the same signer; accepting it would make tx hashes malleable."""
    account = Account.generate()
    digest = keccak256(b"x")
    signature = account.sign_digest(digest)
    s = int.from_bytes(signature[32:64], "big")
    assert s <= SECP256K1_N // 2  # signing always yields the low-s form
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    with pytest.raises(SignatureError, match="upper half"):
        recover_address(digest, twin)


def test_account_key_range_and_round_trip() -> None:
    account = Account.generate()
    assert Account(account.private_key).address == account.address
    assert Account.from_hex("0x" + account.private_key.hex()).address == account.address
    assert account.address in repr(account)
    for bad in (b"\x00" * 32, SECP256K1_N.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ValidationError):
            Account(bad)
