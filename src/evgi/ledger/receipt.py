"""Receipts: what a transaction did, kept beside it and covered by the block's receipts root."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from evgi.core.canonical import canonical_json, parse_json
from evgi.core.digest import keccak256
from evgi.core.errors import ExecutionError


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block: int
    position: int
    ok: bool
    result: Any
    error: str
    logs: list[dict[str, Any]]

    @classmethod
    def from_row(cls, row: Any) -> Receipt:
        """Receipt kept in a stored transaction row; malformed JSON raises ValidationError."""
        return cls(
            row.hash,
            row.block_height,
            row.position,
            bool(row.status),
            parse_json(row.result),
            row.error,
            parse_json(row.logs),
        )

    @cached_property
    def encoded_result(self) -> bytes:
        """Canonical JSON of the result: covered by the commitment, kept in the journal."""
        return canonical_json(self.result)

    @cached_property
    def encoded_logs(self) -> bytes:
        return canonical_json(self.logs)

    def commitment(self) -> bytes:
        """Hash of the outcome, the leaf of the receipts root: the canonical JSON of
        {tx, ok, result, error, logs}, joined from its members' in RFC 8785 key order."""
        return keccak256(
            b'{"error":'
            + canonical_json(self.error)
            + b',"logs":'
            + self.encoded_logs
            + b',"ok":'
            + (b"true" if self.ok else b"false")
            + b',"result":'
            + self.encoded_result
            + b',"tx":'
            + canonical_json(self.tx_hash)
            + b"}"
        )

    def raise_for_status(self) -> Receipt:
        if not self.ok:
            raise ExecutionError(f"transaction {self.tx_hash} failed: {self.error}")
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "block": self.block,
            "position": self.position,
            "status": "ok" if self.ok else "failed",
            "result": self.result,
            "error": self.error,
            "logs": self.logs,
        }
