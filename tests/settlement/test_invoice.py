"""The driver's invoice: every figure comes from the CDR, with the way to check it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import lxml.html
from sqlalchemy import Engine

from evgi.core import Account, SimulatedClock
from evgi.ledger.journal import LocalLedger
from evgi.settlement import CdrAnchoring, build_invoice, session_proof
from evgi.storage import CdrStore
from tests.settlement.test_cdr import T0, make_cdr


def _rows(page: str) -> list[list[str]]:
    tree = lxml.html.fromstring(page)
    return [
        [cell.text_content().strip() for cell in row.findall("td")]
        for row in tree.iter("tr")
        if row.findall("td")
    ]


def test_invoice_lists_the_cost_lines_taxes_and_totals(db: Engine, tmp_path: Path) -> None:
    cdr = make_cdr(db, escrow_id="escrow-42")
    invoice = build_invoice(cdr)
    path = invoice.write(tmp_path / "invoice.html")
    page = path.read_text()
    rows = _rows(page)

    flat, energy = rows[0], rows[1]
    assert flat[0] == "flat" and flat[2] == "1 session" and flat[3] == "0.5 EUR/session"
    assert flat[5:] == ["0.50 EUR", "0.60 EUR"]
    assert energy[0] == "energy" and energy[2] == "7.5 kWh" and energy[3] == "0.3 EUR/kWh"
    assert energy[4] == "19 %" and energy[5:] == ["2.25 EUR", "2.68 EUR"]
    assert ["Total excl. VAT", "2.75 EUR", ""] in rows
    assert ["VAT 19 % on 2.75 EUR", "", ""] in rows
    assert ["VAT", "", "0.52 EUR"] in rows  # 3.27 - 2.75, not the lines' 0.10 + 0.43
    assert rows[-1] == ["Total due", "3.27 EUR"]
    assert invoice.total_incl_vat.minor == cdr.total_minor == 327

    assert cdr.digest() in page and cdr.tariff_digest in page
    assert "evgi settlement verify-proof" in page
    assert "escrow-42" in page and "7.5 kWh" in page and "CS-1, EVSE 1, connector 1" in page
    assert cdr.driver in page and cdr.cpo in page
    assert "anchored on the ledger with the next batch" in page
    assert invoice.number == "INV-" + cdr.digest()[2:14].upper()


def test_invoice_of_an_anchored_session_names_its_anchor(db: Engine, ledger: LocalLedger) -> None:
    clock = SimulatedClock(T0 + timedelta(days=1))
    anchoring = CdrAnchoring(CdrStore(db, clock), ledger, Account.generate(), clock)
    cdr = make_cdr(db)
    anchoring.store.save(cdr)
    anchoring.anchor_pending()
    proof = session_proof(anchoring.store, cdr.session_id)

    page = build_invoice(cdr, proof).html()

    assert proof.root in page and proof.tx_hash in page
    assert f"block\n{proof.block}" in page or f"block {proof.block}" in page


def test_invoice_text_is_escaped(db: Engine) -> None:
    cdr = make_cdr(db, "CS-<b>", "tx-<script>")
    page = build_invoice(cdr).html()
    assert "<script>" not in page and "tx-&lt;script&gt;" in page
