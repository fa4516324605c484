"""The settlement part of `evgi demo`: delivery versus payment for every charging session.

Before the drivers charge, the eMSP tops up each driver's prepaid wallet and links the driver's
RFID card to it, and the CPO prices its chargers with OCPI tariffs. The core client follows the
CSMS's transactions: an escrow of the hold at each start, and at each end the CDR built from the
station's meter values, priced on the tariff locked at the start, with the escrow settled on the
CDR's digest. Afterwards the CDRs are anchored as one Merkle root, one session's proof is
produced and checked as a third party would, and each driver gets an HTML invoice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from evgi.core.errors import ValidationError
from evgi.core.units import Money
from evgi.csms import TransactionEnded, TransactionStarted
from evgi.settlement import (
    Cdr,
    CdrAnchoring,
    CoreClient,
    SessionProof,
    SettlementTerms,
    Wallets,
    build_invoice,
    parse_tariff,
    session_proof,
    verify_session_proof,
)
from evgi.sim.charging import VERSIONS, VISITS, rfid_token
from evgi.sim.report import Link, Section, bar_plot
from evgi.storage import CdrBatch, CdrStore, ChargingStore
from evgi.storage.settlement import SETTLED, SettlementSession

if TYPE_CHECKING:  # the scenario imports this part
    from evgi.sim.scenario import FoundationScenario

CURRENCY = "EUR"
TOP_UP = Money.parse("100.00 EUR")
TERMS = SettlementTerms(hold=Money.parse("50.00 EUR"), fee_bp=200)
TIME_ZONE = "Europe/Berlin"
_TARIFF_HEAD = (
    '{"country_code": "DE", "party_id": "VCH", "currency": "EUR", "type": "REGULAR",'
    ' "last_updated": "2026-01-01T00:00:00Z",'
)
# AC: a start fee and energy; DC: dearer energy and an idle fee once the battery is full.
AC_TARIFF = parse_tariff(
    _TARIFF_HEAD + ' "id": "VCH-AC", "elements": [{"price_components": ['
    '{"type": "FLAT", "price": 0.50, "vat": 19.0, "step_size": 1},'
    '{"type": "ENERGY", "price": 0.39, "vat": 19.0, "step_size": 1}]}]}'
)
DC_TARIFF = parse_tariff(
    _TARIFF_HEAD + ' "id": "VCH-DC", "elements": [{"price_components": ['
    '{"type": "ENERGY", "price": 0.49, "vat": 19.0, "step_size": 1},'
    '{"type": "PARKING_TIME", "price": 6.00, "vat": 19.0, "step_size": 60}]}]}'
)


@dataclass
class _Settlement:
    """What the part before charging prepares and the part after it reports on."""

    scenario: FoundationScenario
    core: CoreClient
    before: dict[str, Money] = field(default_factory=dict)
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)
    sessions: list[SettlementSession] = field(default_factory=list)

    @property
    def wallets(self) -> Wallets:
        return self.core.wallets

    def accounts(self) -> dict[str, str]:
        """Whose balances the report shows: each driver's wallet, the CPO and the eMSP."""
        named = {visit.driver: self.wallets.get(visit.driver).address for visit in VISITS}
        return (
            named
            | {"volt-charge (CPO)": self.wallets.cpo.address}
            | {"roampay (eMSP)": self.wallets.emsp.address}
        )

    def balances(self) -> dict[str, Money]:
        return {name: self.wallets.balance_of(a) for name, a in self.accounts().items()}


_RUNS: WeakKeyDictionary[FoundationScenario, _Settlement] = WeakKeyDictionary()


def _settlement_of(scenario: FoundationScenario) -> _Settlement:
    run = _RUNS.get(scenario)
    if run is None:
        platform = scenario.platform
        core = CoreClient(
            Wallets.for_platform(platform, CURRENCY),
            ChargingStore(platform.db),
            TERMS,
            platform.clock,
        )
        run = _RUNS[scenario] = _Settlement(scenario, core)
    return run


class SettlementPart:
    """Before charging: wallets, top-ups, tariffs, and the core client following the CSMS."""

    def __init__(self, scenario: FoundationScenario) -> None:
        self.run = _settlement_of(scenario)

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [("top up wallets, price chargers, open escrows", self.prepare)]

    def prepare(self) -> None:
        run, people = self.run, self.run.scenario.people
        core, wallets = run.core, run.wallets
        for visit in VISITS:
            wallets.topup(visit.driver, TOP_UP)
            wallets.link(visit.driver, rfid_token(people[visit.driver].address))
        for charger in VERSIONS:
            dc = bool(people[charger].certificate["credentialSubject"]["bidirectional"])
            core.set_tariff(charger, DC_TARIFF if dc else AC_TARIFF, TIME_ZONE)
        run.before = run.balances()
        bus = run.scenario.platform.bus
        run.unsubscribe = [
            bus.subscribe(TransactionStarted, core.enqueue),
            bus.subscribe(TransactionEnded, core.enqueue),
        ]
        core.start()


class SettlementReportPart:
    """After charging: the settled sessions, the anchored CDRs, a checked proof, invoices."""

    def __init__(self, scenario: FoundationScenario) -> None:
        self.run = _settlement_of(scenario)
        self.platform = scenario.platform
        self.report = scenario.report
        self.store = CdrStore(self.platform.db, self.platform.clock)
        self.folder = self.platform.settings.data_dir.parent
        self.after: dict[str, Money] = {}
        self.batches: list[CdrBatch] = []

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("settle every session from its CDR", self.settle),
            ("anchor the CDRs in one transaction", self.anchor),
            ("write the drivers' invoices", self.invoice),
            ("report balances before and after", self.balances),
            ("prove one session as a third party", self.prove),
        ]

    def settle(self) -> None:
        run, report = self.run, self.report
        report.check(run.core.wait_idle(timeout=120), "the core client did not finish in time")
        run.core.stop()
        for unsubscribe in run.unsubscribe:
            unsubscribe()
        run.sessions = run.core.sessions()
        charging = ChargingStore(self.platform.db)
        ended = charging.run(charging.transactions, state="ended")
        report.check(
            len(ended) == len(VISITS) and len(run.sessions) == len(ended),
            f"{len(ended)} charging sessions ended, {len(run.sessions)} went through settlement",
        )
        for session in run.sessions:
            report.check(
                session.state == SETTLED,
                f"session {session.session_id} is {session.state}: {session.note}",
            )
        self.after = run.balances()

    def anchor(self) -> None:
        anchoring = CdrAnchoring.of_platform(
            self.platform.db, self.platform.ledger, self.platform.keystore, self.platform.clock
        )
        self.batches = anchoring.anchor_pending()
        self.report.check(
            len(self.batches) == 1 and self.batches[0].size == len(self.run.sessions),
            f"the CDRs went into {len(self.batches)} batches instead of one",
        )

    def balances(self) -> None:
        run, report, after = self.run, self.report, self.after
        paid = sum(run.before[v.driver].minor - after[v.driver].minor for v in VISITS)
        earned = sum(
            after[name].minor - run.before[name].minor
            for name in ("volt-charge (CPO)", "roampay (eMSP)")
        )
        report.check(paid == earned, f"drivers paid {paid}, CPO and eMSP received {earned}")
        report.add(
            Section(
                "Settlement: balances",
                f"Prepaid {TERMS.hold.currency} charging tokens (EV{CURRENCY}) on the ledger. "
                f"Each driver's wallet was topped up with {TOP_UP}; each session held "
                f"{TERMS.hold} in escrow from its start and paid the CPO the session's cost and "
                f"the eMSP a {TERMS.fee_bp / 100:g} % fee at its end, refunding the rest.",
                [
                    {
                        "account": name,
                        "address": address,
                        "before": str(run.before[name]),
                        "after": str(after[name]),
                        "change": str(after[name] - run.before[name]),
                    }
                    for name, address in run.accounts().items()
                ],
                [
                    bar_plot(
                        "Balance change",
                        list(after),
                        [(after[n].minor - run.before[n].minor) / 100 for n in after],
                        CURRENCY,
                    )
                ],
            )
        )

    def prove(self) -> None:
        run, report = self.run, self.report
        rows: list[dict[str, Any]] = []
        if run.sessions:
            session = run.sessions[0]
            proof = session_proof(self.store, session.session_id)
            document = proof.to_json()
            (self.folder / "proof.json").write_text(json.dumps(document, indent=2) + "\n")
            verified = verify_session_proof(
                SessionProof.from_json(json.loads(json.dumps(document))), self.platform.ledger
            )
            rows.append(
                {
                    "check": f"proof of {session.session_id} (proof.json)",
                    "result": f"valid: CDR {verified.digest} is leaf {proof.leaf_index} of "
                    f"{proof.leaf_count} under root {proof.root}, anchored in block "
                    f"{verified.block} by transaction {proof.tx_hash}",
                }
            )
            tampered = json.loads(json.dumps(document))
            tampered["cdr"]["total_minor"] -= 100
            rows.append({"check": "the same proof, its CDR 1.00 cheaper", "result": ""})
            try:
                verify_session_proof(SessionProof.from_json(tampered), self.platform.ledger)
            except ValidationError as exc:
                rows[-1]["result"] = f"refused: {exc.message}"
            report.check(
                rows[-1]["result"].startswith("refused"), "a tampered proof was not refused"
            )
        batch = self.batches[0] if self.batches else None
        report.add(
            Section(
                "Settlement: anchoring and proof",
                "Every CDR's Keccak-256 digest is a leaf of one Merkle tree whose root went on "
                "the ledger in one transaction"
                + (f" (block {batch.block}, {batch.size} sessions)" if batch else "")
                + ". A proof carries the CDR, its Merkle path and the anchoring transaction; "
                "anyone with read access to the ledger checks it with `evgi settlement "
                "verify-proof proof.json`.",
                rows,
            )
        )

    def invoice(self) -> None:
        run = self.run
        folder = self.folder / "invoices"
        rows: list[dict[str, Any]] = []
        links: list[Link] = []
        for session in run.sessions:
            stored = self.store.get(session.session_id)
            cdr = Cdr.from_json(stored.document)
            invoice = build_invoice(cdr, session_proof(self.store, session.session_id))
            name = f"{session.station_id}-{session.transaction_id}.html".replace("/", "-")
            invoice.write(folder / name)
            links.append(Link(f"invoice of {session.session_id}", f"invoices/{name}"))
            self.report.check(
                session.record_hash == cdr.digest(),
                f"escrow of {session.session_id} settled on another record than its CDR",
            )
            line = {d["dimension"]: d["amount_incl_vat"] for d in cdr.cost["dimensions"]}
            money = run.wallets.money
            rows.append(
                {
                    "session": session.session_id,
                    "station": session.station_id,
                    "energy kWh": invoice.energy_kwh,
                    "tariff": cdr.cost["tariff_id"],
                    "flat": str(money(line.get("FLAT", 0))),
                    "energy": str(money(line.get("ENERGY", 0))),
                    "parking": str(money(line.get("PARKING_TIME", 0))),
                    "total incl. VAT": str(invoice.total_incl_vat),
                    "eMSP fee": str(money(session.fee_minor or 0)),
                    "refunded": str(
                        money(
                            session.hold_minor
                            - (session.payee_minor or 0)
                            - (session.fee_minor or 0)
                        )
                    ),
                    "escrow": session.escrow_id,
                    "CDR digest": cdr.digest(),
                    "invoice": f"invoices/{name}",
                }
            )
        self.report.add(
            Section(
                "Settlement: sessions",
                "Each session's cost under the OCPI tariff locked at its start, priced from the "
                "station's meter values; the escrow was settled citing the CDR's digest.",
                rows,
                links=links,
            )
        )
