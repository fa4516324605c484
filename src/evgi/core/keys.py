"""secp256k1 accounts addressed like Ethereum accounts, so one identity works on both engines."""

from __future__ import annotations

import re

import coincurve

from evgi.core.digest import from_hex, keccak256
from evgi.core.errors import SignatureError, ValidationError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# Order of the secp256k1 group; signatures with s above half of it are refused (EIP-2).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def checksum_address(address: str) -> str:
    """EIP-55 mixed-case checksum form."""
    if not _ADDRESS.match(address):
        raise ValidationError(f"not an account address: {address!r}")
    lower = address[2:].lower()
    digest = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


def normalize_address(address: str) -> str:
    """Lower-case form used as a state key; mixed-case input must carry a valid EIP-55 checksum."""
    if not _ADDRESS.match(address):
        raise ValidationError(f"not an account address: {address!r}")
    body = address[2:]
    if body != body.lower() and body != body.upper() and checksum_address(address) != address:
        raise ValidationError(f"bad EIP-55 checksum in address {address}")
    return "0x" + body.lower()


def public_key_to_address(public_key: bytes) -> str:
    """Address of an uncompressed (65-byte) or compressed (33-byte) secp256k1 public key."""
    if len(public_key) == 33:
        try:
            public_key = coincurve.PublicKey(public_key).format(compressed=False)
        except ValueError as exc:
            raise ValidationError(f"not a secp256k1 public key: {exc}") from exc
    if len(public_key) != 65:
        raise ValidationError("a secp256k1 public key has 33 or 65 bytes")
    return "0x" + keccak256(public_key[1:])[12:].hex()


def recover_address(digest: bytes, signature: bytes) -> str:
    """Address that produced a 65-byte recoverable signature (r || s || v, v in 0/1 or 27/28)."""
    if len(digest) != 32:
        raise SignatureError("signed digest must be 32 bytes")
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (r, s, v), got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise SignatureError(f"signature recovery id must be 0 or 1, got {signature[64]}")
    # (r, n - s, v ^ 1) recovers the same signer: without this rule anyone could re-sign a
    # pending transaction under a second hash (malleability), as EIP-2 rules out on Ethereum.
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_N // 2:
        raise SignatureError("signature s value is in the upper half of the curve order")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception for invalid points
        raise SignatureError(f"signature does not recover to a public key: {exc}") from exc
    return public_key_to_address(key.format(compressed=False))


class Account:
    """A private key and the address derived from it."""

    __slots__ = ("_key", "address", "public_key")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValidationError("a secp256k1 private key has 32 bytes")
        if not 0 < int.from_bytes(private_key, "big") < _SECP256K1_N:
            raise ValidationError("a secp256k1 private key lies between 1 and the curve order")
        self._key = coincurve.PrivateKey(private_key)
        self.public_key: bytes = self._key.public_key.format(compressed=False)
        self.address: str = public_key_to_address(self.public_key)

    @property
    def private_key(self) -> bytes:
        secret: bytes = self._key.secret
        return secret

    @classmethod
    def generate(cls) -> Account:
        return cls(coincurve.PrivateKey().secret)

    @classmethod
    def from_hex(cls, private_key: str) -> Account:
        return cls(from_hex(private_key))

    def sign_digest(self, digest: bytes) -> bytes:
        """65-byte recoverable signature r || s || v with v in {0, 1}."""
        if len(digest) != 32:
            raise ValidationError("only 32-byte digests are signed")
        signature: bytes = self._key.sign_recoverable(digest, hasher=None)
        return signature

    def __repr__(self) -> str:
        return f"Account({self.address})"


def verify_digest(digest: bytes, signature: bytes, address: str) -> None:
    """Raise SignatureError unless `signature` over `digest` was made by `address`."""
    signer = recover_address(digest, signature)
    if signer != normalize_address(address):
        raise SignatureError(f"signature is by {signer}, not by {normalize_address(address)}")
