"""Proofs for disputes: a third party with read access to the ledger checks a session's CDR."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from evgi.core import Account, SimulatedClock, ValidationError
from evgi.ledger import Submitter
from evgi.ledger.journal import LocalLedger
from evgi.settlement import (
    CdrAnchoring,
    SessionProof,
    batch_root,
    session_proof,
    verify_session_proof,
)
from evgi.storage import CdrStore, open_database
from tests.cli_runner import run_evgi
from tests.settlement.test_cdr import T0, make_cdr

EVM_RPC_ENV = "EVGI_TEST_EVM_RPC"
Tamper = Callable[[dict[str, Any]], None]


def _anchored_proofs(db: Engine, ledger: LocalLedger, sessions: int = 5) -> list[dict[str, Any]]:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = CdrAnchoring(CdrStore(db, clock), ledger, Account.generate(), clock)
    cdrs = [make_cdr(db, "CS-1", f"tx-{i}", T0 + timedelta(minutes=i)) for i in range(sessions)]
    for cdr in cdrs:
        anchoring.store.save(cdr)
    anchoring.anchor_pending()
    return [session_proof(anchoring.store, cdr.session_id).to_json() for cdr in cdrs]


def test_every_session_of_a_batch_has_a_valid_proof(db: Engine, ledger: LocalLedger) -> None:
    for index, document in enumerate(_anchored_proofs(db, ledger)):
        verified = verify_session_proof(SessionProof.from_json(document), ledger)
        assert verified.cdr.session_id == f"CS-1/tx-{index}"
        assert document["leaf_index"] == index and document["leaf_count"] == 5
        assert verified.block == document["anchor"]["block"]


def _set(*keys: str | int, value: Any) -> Tamper:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _swap_path_sides(document: dict[str, Any]) -> None:
    for step in document["path"]:
        step[0] = "L" if step[0] == "R" else "R"


@pytest.mark.parametrize(
    "tamper, message",
    [
        (_set("cdr", "total_minor", value=1), "the CDR was altered"),
        (_set("cdr", "meter_stop_wh", value=999_999), "the CDR was altered"),
        (_set("digest", value="0x" + "11" * 32), "the CDR hashes to"),
        (_set("path", 0, 1, value="0x" + "22" * 32), "does not lead from leaf"),
        (_swap_path_sides, "does not lead from leaf"),
        (_set("leaf_index", value=3), "does not lead from leaf"),
        (_set("leaf_index", value=-1), "does not lead from leaf"),
        (_set("leaf_count", value=6), "the anchored batch has 5 leaves, the proof claims 6"),
        (_set("root", value="0x" + "33" * 32), "does not lead from leaf"),
        (_set("anchor", "chain_id", value=1), "the proof is for chain 1"),
        (_set("anchor", "block", value=0), "not by transaction"),
        (_set("anchor", "tx_hash", value="0x" + "44" * 32), "no transaction"),
        (_set("path", 0, value=["X", "0x00"]), "Merkle path is malformed"),
        (_set("leaf_index", value="2"), "malformed CDR proof"),
        (_set("type", value="something"), "not a CDR proof"),
    ],
)
def test_a_tampered_proof_is_refused(
    db: Engine, ledger: LocalLedger, tamper: Tamper, message: str
) -> None:
    document = _anchored_proofs(db, ledger)[2]
    tamper(document)
    with pytest.raises(ValidationError, match=message):
        verify_session_proof(SessionProof.from_json(document), ledger)


def test_a_root_anchored_as_something_else_is_refused(db: Engine, ledger: LocalLedger) -> None:
    """A valid path to a root the ledger holds, but not as a CDR batch of that size."""
    document = _anchored_proofs(db, ledger, sessions=1)[0]
    other = make_cdr(db, "CS-2", "alone")
    receipt = Submitter(ledger, Account.generate()).call(
        "anchor", "put", hash=batch_root([other.digest()]), kind="document", meta={}
    )
    forged = dict(
        document, cdr=other.to_json(), digest=other.digest(), root=batch_root([other.digest()])
    )
    forged["anchor"] = dict(document["anchor"], tx_hash=receipt.tx_hash, block=receipt.block)
    with pytest.raises(ValidationError, match="anchored as 'document'"):
        verify_session_proof(SessionProof.from_json(forged), ledger)


def _settle_in(folder: Path, *options: str) -> str:
    """Sessions of an operator's `evgi` folder, anchored with `evgi settlement anchor`."""
    db = open_database(f"sqlite:///{folder / 'evgi-data' / 'evgi.db'}")
    try:
        store = CdrStore(db)
        cdrs = [make_cdr(db, "CS-7", f"t{i}", T0 + timedelta(minutes=i)) for i in range(3)]
        for cdr in cdrs:
            store.save(cdr)
    finally:
        db.dispose()
    anchored = run_evgi(folder, *options, "settlement", "anchor")
    assert anchored.returncode == 0, anchored.stderr
    assert "batch 1: 3 CDRs" in anchored.stdout
    return cdrs[1].session_id


def _prove_and_verify(operator: Path, auditor: Path, options: list[str]) -> None:
    session = _settle_in(operator, *options)
    proved = run_evgi(operator, *options, "settlement", "prove", session, "--out", "proof.json")
    assert proved.returncode == 0, proved.stderr
    proof_file = auditor / "proof.json"
    shutil.copy(operator / "proof.json", proof_file)

    verified = run_evgi(auditor, *options, "settlement", "verify-proof", str(proof_file))
    assert verified.returncode == 0, verified.stderr
    assert f"proof valid: session {session}" in verified.stdout

    document = json.loads(proof_file.read_text())
    document["cdr"]["total_minor"] += 100
    proof_file.write_text(json.dumps(document))
    refused = run_evgi(auditor, *options, "settlement", "verify-proof", str(proof_file))
    assert refused.returncode == 1
    assert "proof refused" in refused.stderr and "the CDR was altered" in refused.stderr


@pytest.mark.slow
def test_cli_proof_on_the_local_ledger(tmp_path: Path) -> None:
    operator, auditor = tmp_path / "operator", tmp_path / "auditor"
    operator.mkdir()
    auditor.mkdir()
    db_option = ["--db", f"sqlite:///{operator / 'evgi-data' / 'evgi.db'}"]
    _prove_and_verify(operator, auditor, db_option)

    missing = run_evgi(operator, "settlement", "prove", "CS-7/none")
    assert missing.returncode == 2 and "no CDR for session 'CS-7/none'" in missing.stderr
    garbage = auditor / "garbage.json"
    garbage.write_text("{not json")
    refused = run_evgi(auditor, *db_option, "settlement", "verify-proof", str(garbage))
    assert refused.returncode == 1 and "malformed JSON" in refused.stderr

    listed = run_evgi(operator, "settlement", "cdrs")
    assert listed.returncode == 0, listed.stderr
    assert all(f"CS-7/t{i}" in listed.stdout for i in range(3)) and "3.27 EUR" in listed.stdout

    invoiced = run_evgi(operator, "settlement", "invoice", "CS-7/t1", "--out", "invoice.html")
    assert invoiced.returncode == 0, invoiced.stderr
    page = (operator / "invoice.html").read_text()
    assert "CS-7/t1" in page and json.loads((operator / "proof.json").read_text())["root"] in page


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get(EVM_RPC_ENV),
    reason=f"no EVM node: set {EVM_RPC_ENV} to a Hardhat JSON-RPC URL such as "
    "http://127.0.0.1:8545 (.ci/run starts one)",
)
def test_cli_proof_on_the_evm_ledger(tmp_path: Path) -> None:
    operator, auditor = tmp_path / "operator", tmp_path / "auditor"
    evm = f'ledger = "evm"\nrpc_url = "{os.environ[EVM_RPC_ENV]}"\n'
    (operator / "evgi-data").mkdir(parents=True)
    (auditor / "evgi-data").mkdir(parents=True)
    (operator / "evgi.toml").write_text(evm + "evm_dev_funding_wei = 10000000000000000000\n")
    (auditor / "evgi.toml").write_text(evm)
    # the operator deploys the contracts; the auditor attaches to them, read-only
    deployed = run_evgi(operator, "ledger", "show")
    assert deployed.returncode == 0, deployed.stderr
    shutil.copy(
        operator / "evgi-data" / "evm-deployment.json",
        auditor / "evgi-data" / "evm-deployment.json",
    )
    _prove_and_verify(operator, auditor, [])
