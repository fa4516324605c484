"""Interval anchoring: every batch of CDRs costs one ledger transaction, whatever its size."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from evgi.core import Account, SimulatedClock
from evgi.core.merkle import MerkleProof, verify_merkle_proof
from evgi.ledger import Submitter
from evgi.ledger.journal import LocalLedger
from evgi.settlement import CdrAnchoring, batch_root, session_proof
from evgi.settlement.anchoring import ANCHOR_KIND
from evgi.storage import CdrStore, open_database
from tests.service_runner import running_service
from tests.settlement.test_cdr import T0, make_cdr


def _anchoring(db: Engine, ledger: LocalLedger, clock: SimulatedClock) -> CdrAnchoring:
    return CdrAnchoring(CdrStore(db, clock), ledger, Account.generate(), clock)


def test_a_batch_of_sessions_is_one_ledger_transaction(db: Engine, ledger: LocalLedger) -> None:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = _anchoring(db, ledger, clock)
    cdrs = [make_cdr(db, f"CS-{i % 2}", f"tx-{i}", T0 + timedelta(minutes=5 * i)) for i in range(7)]
    for cdr in cdrs:
        anchoring.store.save(cdr)

    (batch,) = anchoring.anchor_pending()

    assert ledger.nonce(anchoring.account.address) == 1  # one transaction for seven sessions
    assert batch.size == 7 and batch.anchored and batch.chain_id == ledger.chain_id
    anchor = ledger.query("anchor", "get", hash=batch.root)
    assert anchor["kind"] == ANCHOR_KIND and anchor["block"] == batch.block
    assert anchor["by"] == anchoring.account.address.lower()
    assert ledger.receipt(batch.tx_hash or "").block == batch.block
    # leaves in stop order, every one stored with its batch and index
    stored = [anchoring.store.get(cdr.session_id) for cdr in cdrs]
    assert [s.leaf_index for s in stored] == list(range(7))
    assert {s.batch_id for s in stored} == {batch.id}
    assert batch.root == batch_root([cdr.digest() for cdr in cdrs])
    assert anchoring.store.batch_digests(batch.id) == [cdr.digest() for cdr in cdrs]


def test_each_interval_anchors_only_what_is_new(db: Engine, ledger: LocalLedger) -> None:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = _anchoring(db, ledger, clock)
    early = make_cdr(db, "CS-1", "early", T0)
    late = make_cdr(db, "CS-1", "late", T0 + timedelta(hours=3))
    anchoring.store.save(early)
    interval_end = clock.advance(timedelta(minutes=15))
    clock.advance(timedelta(minutes=1))
    anchoring.store.save(late)

    # the interval ended before the late CDR was saved: it waits for the next one
    (first,) = anchoring.anchor_pending(until=interval_end)
    assert first.size == 1 and anchoring.store.get(late.session_id).batch_id is None
    (second,) = anchoring.anchor_pending()
    assert second.size == 1 and second.id != first.id
    assert anchoring.anchor_pending() == []
    assert ledger.nonce(anchoring.account.address) == 2


def test_a_batch_left_pending_by_a_crash_is_anchored_next_time(
    db: Engine, ledger: LocalLedger
) -> None:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = _anchoring(db, ledger, clock)
    anchoring.store.save(make_cdr(db, "CS-1", "a"))
    # crashed after numbering the leaves, and after signing but before sending
    batch = anchoring.store.open_batch(batch_root)
    assert batch is not None
    anchoring.store.record_submission(batch.id, "0x" + "ab" * 32)
    assert [b.id for b in anchoring.store.pending_batches()] == [batch.id]

    (done,) = anchoring.anchor_pending()

    assert done.id == batch.id and done.anchored and done.tx_hash != "0x" + "ab" * 32
    assert anchoring.store.pending_batches() == []
    # crashed after the ledger took it but before it was marked: found by its receipt
    anchoring.store.save(make_cdr(db, "CS-1", "b"))
    second = anchoring.store.open_batch(batch_root)
    assert second is not None
    stx = Submitter(ledger, anchoring.account).sign(
        "anchor", "put", hash=second.root, kind=ANCHOR_KIND, meta={"size": "1"}
    )
    anchoring.store.record_submission(second.id, stx.hash_hex)
    ledger.submit(stx).raise_for_status()
    (recovered,) = anchoring.anchor_pending()
    assert recovered.tx_hash == stx.hash_hex and recovered.anchored
    assert ledger.nonce(anchoring.account.address) == 2  # the root was not sent twice


def test_periodic_run_anchors_and_a_proof_follows(db: Engine, ledger: LocalLedger) -> None:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = _anchoring(db, ledger, clock)
    cdr = make_cdr(db)
    anchoring.store.save(cdr)

    async def one_interval() -> None:
        task = asyncio.create_task(anchoring.run(0.05))
        while anchoring.store.get(cdr.session_id).batch_id is None:
            await asyncio.sleep(0.02)
        while anchoring.store.pending_batches():
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(asyncio.wait_for(one_interval(), 30))
    proof = session_proof(anchoring.store, cdr.session_id)
    merkle = MerkleProof.from_json(
        {"item": proof.digest, "index": 0, "path": [], "root": proof.root}
    )
    assert verify_merkle_proof(merkle, size=1)


def test_evgi_serve_anchors_every_interval(tmp_path: Path) -> None:
    (tmp_path / "evgi.toml").write_text("cdr_anchor_interval = 0.5\n")
    db = open_database(f"sqlite:///{tmp_path / 'evgi-data' / 'evgi.db'}")
    store = CdrStore(db)
    cdr = make_cdr(db)
    store.save(cdr)
    try:
        with running_service(tmp_path):
            deadline = time.monotonic() + 30
            while store.get(cdr.session_id).batch_id is None or store.pending_batches():
                assert time.monotonic() < deadline, "evgi serve did not anchor the CDR"
                time.sleep(0.2)
        batch = store.batch(store.get(cdr.session_id).batch_id or 0)
        assert batch.anchored and batch.size == 1
    finally:
        db.dispose()
