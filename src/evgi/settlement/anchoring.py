"""Interval anchoring of CDRs, and the proofs that let anyone check a disputed session.

Every interval (and on demand) the CDRs not yet anchored go into one Merkle tree whose root is
put on the ledger in ONE transaction, however many sessions there are: the cost of anchoring is
per interval, not per session. A session's proof is then its CDR, the CDR's leaf index and
Merkle path, the root, and the transaction that anchored it; checking it needs only the proof
and read access to the ledger.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Engine

from evgi.core.clock import Clock, from_unix
from evgi.core.digest import from_hex, to_hex
from evgi.core.errors import NotFoundError, ValidationError
from evgi.core.keys import Account
from evgi.core.merkle import MerkleProof, merkle_proof, merkle_root, verify_merkle_proof
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger, Submitter
from evgi.settlement.cdr import Cdr, cdr_digest
from evgi.storage.charge_records import CdrBatch, CdrStore

log = structlog.get_logger(__name__)

ANCHOR_KIND = "cdr-batch"
ANCHOR_KEY = "cdr-anchor"  # the keystore alias of the account that anchors
PROOF_TYPE = "evgi-cdr-proof"
PROOF_VERSION = 1


def batch_root(digests: list[str]) -> str:
    """Merkle root over the CDR digests (the leaves are the 32 digest bytes)."""
    return to_hex(merkle_root([from_hex(d) for d in digests]))


class CdrAnchoring:
    """Puts batches of stored CDRs on the ledger from one account of the platform's own.

    The account signs nothing else, so its nonces are this object's alone; each run reads the
    next nonce from the ledger, which is what makes a run after a crash safe.
    """

    def __init__(self, store: CdrStore, ledger: Ledger, account: Account, clock: Clock) -> None:
        self.store = store
        self.ledger = ledger
        self.account = account
        self.clock = clock

    @classmethod
    def of_platform(
        cls, db: Engine, ledger: Ledger, keystore: Keystore, clock: Clock
    ) -> CdrAnchoring:
        """Anchoring on the platform's database and ledger, from its ANCHOR_KEY account."""
        return cls(CdrStore(db, clock), ledger, keystore.get_or_create(ANCHOR_KEY), clock)

    def anchor_pending(self, until: datetime | None = None) -> list[CdrBatch]:
        """Finish batches an earlier run left pending, then batch and anchor every CDR not yet
        anchored (saved up to `until`, if given). Returns the batches anchored by this call."""
        anchored = [self._anchor(batch) for batch in self.store.pending_batches()]
        batch = self.store.open_batch(batch_root, until)
        if batch is not None:
            anchored.append(self._anchor(batch))
        return anchored

    def _anchor(self, batch: CdrBatch) -> CdrBatch:
        if batch.tx_hash is not None:
            try:
                receipt = self.ledger.receipt(batch.tx_hash)
            except NotFoundError:
                pass  # the transaction never reached the ledger: send it again
            else:
                if receipt.ok:
                    return self.store.mark_anchored(
                        batch.id, receipt.tx_hash, receipt.block, self.ledger.chain_id
                    )
        submitter = Submitter(self.ledger, self.account)
        stx = submitter.sign(
            "anchor",
            "put",
            hash=batch.root,
            kind=ANCHOR_KIND,
            meta={"batch": str(batch.id), "size": str(batch.size)},
        )
        self.store.record_submission(batch.id, stx.hash_hex)
        receipt = self.ledger.submit(stx).raise_for_status()
        log.info("cdr batch anchored", batch=batch.id, size=batch.size, root=batch.root)
        return self.store.mark_anchored(
            batch.id, receipt.tx_hash, receipt.block, self.ledger.chain_id
        )

    async def run(self, interval_s: float) -> None:
        """Anchor every `interval_s` seconds until cancelled; a failed run is logged and its
        batch stays pending for the next one."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.anchor_pending)
            except Exception:  # the ledger may be unreachable for a while; keep going
                log.exception("cdr anchoring failed; retrying next interval")


# -- proofs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionProof:
    """Everything a third party needs to check that a CDR is the one anchored."""

    cdr: dict[str, Any]
    digest: str
    leaf_index: int
    leaf_count: int
    path: tuple[tuple[str, str], ...]
    root: str
    tx_hash: str
    block: int
    chain_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": PROOF_TYPE,
            "version": PROOF_VERSION,
            "cdr": self.cdr,
            "digest": self.digest,
            "leaf_index": self.leaf_index,
            "leaf_count": self.leaf_count,
            "path": [[side, sibling] for side, sibling in self.path],
            "root": self.root,
            "anchor": {
                "kind": ANCHOR_KIND,
                "tx_hash": self.tx_hash,
                "block": self.block,
                "chain_id": self.chain_id,
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> SessionProof:
        if not isinstance(data, dict) or data.get("type") != PROOF_TYPE:
            raise ValidationError(f'not a CDR proof: no "type": "{PROOF_TYPE}"')
        if data.get("version") != PROOF_VERSION:
            raise ValidationError(f"unsupported CDR proof version {data.get('version')!r}")
        try:
            anchor = data["anchor"]
            return cls(
                cdr=dict(data["cdr"]),
                digest=str(data["digest"]),
                leaf_index=_integer(data["leaf_index"]),
                leaf_count=_integer(data["leaf_count"]),
                path=tuple((str(side), str(sibling)) for side, sibling in data["path"]),
                root=str(data["root"]),
                tx_hash=str(anchor["tx_hash"]),
                block=_integer(anchor["block"]),
                chain_id=_integer(anchor["chain_id"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"malformed CDR proof: {exc!r}") from exc


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def session_proof(store: CdrStore, session_id: str) -> SessionProof:
    """The proof of a stored session's CDR, once its batch is anchored."""
    stored = store.get(session_id)
    if stored.batch_id is None or stored.leaf_index is None:
        raise ValidationError(f"session {session_id} is not in a batch yet; anchor first")
    batch = store.batch(stored.batch_id)
    if batch.block is None or batch.tx_hash is None or batch.chain_id is None:
        raise ValidationError(f"batch {batch.id} of session {session_id} is not anchored yet")
    digests = store.batch_digests(batch.id)
    merkle = merkle_proof([from_hex(d) for d in digests], stored.leaf_index)
    if to_hex(merkle.root) != batch.root or digests[stored.leaf_index] != stored.digest:
        raise ValidationError(f"stored batch {batch.id} does not match its root {batch.root}")
    return SessionProof(
        cdr=stored.document,
        digest=stored.digest,
        leaf_index=stored.leaf_index,
        leaf_count=batch.size,
        path=tuple((side, to_hex(sibling)) for side, sibling in merkle.path),
        root=batch.root,
        tx_hash=batch.tx_hash,
        block=batch.block,
        chain_id=batch.chain_id,
    )


@dataclass(frozen=True)
class VerifiedSession:
    """What a checked proof establishes: this CDR was anchored by `anchored_by` at `anchored_at`
    in `block`."""

    cdr: Cdr
    digest: str
    root: str
    block: int
    anchored_by: str
    anchored_at: datetime


def verify_session_proof(proof: SessionProof, ledger: Ledger) -> VerifiedSession:
    """Check a proof against the ledger; any mismatch raises ValidationError saying which."""
    digest = cdr_digest(proof.cdr)
    if digest != proof.digest:
        raise ValidationError(
            f"the CDR hashes to {digest}, not to the proof's digest {proof.digest}:"
            " the CDR was altered"
        )
    cdr = Cdr.from_json(proof.cdr)
    try:
        merkle = MerkleProof.from_json(
            {
                "item": proof.digest,
                "index": proof.leaf_index,
                "path": [list(step) for step in proof.path],
                "root": proof.root,
            }
        )
    except ValidationError as exc:
        raise ValidationError(f"the Merkle path is malformed: {exc.message}") from exc
    if not verify_merkle_proof(merkle, size=proof.leaf_count):
        raise ValidationError(
            f"the Merkle path does not lead from leaf {proof.leaf_index} of {proof.leaf_count}"
            f" to the root {proof.root}"
        )
    if proof.chain_id != ledger.chain_id:
        raise ValidationError(
            f"the proof is for chain {proof.chain_id}; this ledger is chain {ledger.chain_id}"
        )
    anchor = ledger.query("anchor", "get", hash=proof.root)
    if anchor is None:
        raise ValidationError(f"the ledger holds no anchor for the root {proof.root}")
    if anchor["kind"] != ANCHOR_KIND:
        raise ValidationError(f"the root {proof.root} is anchored as {anchor['kind']!r}")
    if anchor["meta"].get("size") != str(proof.leaf_count):
        raise ValidationError(
            f"the anchored batch has {anchor['meta'].get('size')} leaves, the proof claims"
            f" {proof.leaf_count}"
        )
    try:
        receipt = ledger.receipt(proof.tx_hash)
    except NotFoundError as exc:
        raise ValidationError(f"the ledger has no transaction {proof.tx_hash}") from exc
    carried = any(
        entry.get("event") == "Anchored" and entry.get("hash") == proof.root
        for entry in receipt.logs
    )
    if not carried or receipt.block != proof.block or int(anchor["block"]) != proof.block:
        raise ValidationError(
            f"the root was anchored in block {anchor['block']}, not by transaction"
            f" {proof.tx_hash} in block {proof.block}"
        )
    return VerifiedSession(
        cdr=cdr,
        digest=digest,
        root=proof.root,
        block=proof.block,
        anchored_by=str(anchor["by"]),
        anchored_at=from_unix(int(anchor["timestamp"])),
    )
