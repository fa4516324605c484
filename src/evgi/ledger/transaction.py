"""Signed ledger transactions: canonical JSON bodies with a recoverable secp256k1 signature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evgi.core.canonical import canonical_json, parse_json
from evgi.core.digest import from_hex, keccak256, to_hex
from evgi.core.errors import SignatureError, ValidationError
from evgi.core.keys import Account, normalize_address, recover_address

# Domain separation: a transaction signature can never be replayed as a credential signature.
SIGNING_PREFIX = b"\x19EVGI Signed Transaction:\n"
_FIELDS = {"chainId", "from", "nonce", "module", "method", "args"}


@dataclass(frozen=True)
class Transaction:
    chain_id: int
    sender: str
    nonce: int
    module: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "from": self.sender,
            "nonce": self.nonce,
            "module": self.module,
            "method": self.method,
            "args": self.args,
        }

    def sign(self, account: Account) -> SignedTransaction:
        if normalize_address(account.address) != self.sender:
            raise SignatureError(f"{account.address} cannot sign for {self.sender}")
        encoded = canonical_json(self.body())
        signature = account.sign_digest(signing_digest(encoded))
        return SignedTransaction(self, encoded, signature)


def signing_digest(encoded: bytes) -> bytes:
    return keccak256(SIGNING_PREFIX + encoded)


@dataclass(frozen=True)
class SignedTransaction:
    tx: Transaction
    encoded: bytes
    signature: bytes
    # Set once at construction: a block needs it to execute, to root and to store the transaction.
    hash: bytes = field(init=False, repr=False, compare=False)
    hash_hex: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        digest = self.compute_hash()
        object.__setattr__(self, "hash", digest)
        object.__setattr__(self, "hash_hex", to_hex(digest))

    def compute_hash(self) -> bytes:
        """The transaction's hash: of its body and signature."""
        return keccak256(self.encoded + self.signature)

    def signer(self) -> str:
        return recover_address(signing_digest(self.encoded), self.signature)

    def check_signature(self) -> None:
        signer = self.signer()
        if signer != self.tx.sender:
            raise SignatureError(
                f"transaction {self.hash_hex} is signed by {signer}, not by its sender "
                f"{self.tx.sender}"
            )

    def to_wire(self) -> dict[str, Any]:
        return {"body": self.tx.body(), "signature": to_hex(self.signature)}

    @classmethod
    def from_encoded(cls, encoded: bytes, signature: bytes) -> SignedTransaction:
        """Parse stored or received bytes; the body must already be in canonical form."""
        body = parse_json(encoded)
        tx = parse_body(body)
        if canonical_json(body) != encoded:
            raise ValidationError("transaction body is not in RFC 8785 canonical form")
        return cls(tx, encoded, signature)

    @classmethod
    def from_wire(cls, wire: Any) -> SignedTransaction:
        if not isinstance(wire, dict) or set(wire) != {"body", "signature"}:
            raise ValidationError("a signed transaction is {'body': {...}, 'signature': '0x...'}")
        if not isinstance(wire["signature"], str):
            raise ValidationError("signature must be a hex string")
        tx = parse_body(wire["body"])
        stx = cls(tx, canonical_json(tx.body()), from_hex(wire["signature"]))
        stx.check_signature()
        return stx


def parse_body(body: Any) -> Transaction:
    if not isinstance(body, dict):
        raise ValidationError("transaction body must be a JSON object")
    if set(body) != _FIELDS:
        missing, extra = _FIELDS - set(body), set(body) - _FIELDS
        raise ValidationError(
            f"transaction body fields: missing {sorted(missing)}, extra {sorted(extra)}"
        )
    chain_id, sender, nonce = body["chainId"], body["from"], body["nonce"]
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 1:
        raise ValidationError("chainId must be a positive integer")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 0:
        raise ValidationError("nonce must be a non-negative integer")
    if not isinstance(sender, str) or normalize_address(sender) != sender:
        raise ValidationError("from must be a lower-case 0x address")
    if not isinstance(body["module"], str) or not isinstance(body["method"], str):
        raise ValidationError("module and method must be strings")
    if not isinstance(body["args"], dict):
        raise ValidationError("args must be a JSON object")
    return Transaction(chain_id, sender, nonce, body["module"], body["method"], body["args"])
