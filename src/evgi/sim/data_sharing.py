"""The data-sharing part of `evgi demo`: driver-1 shares battery-1's state of health with Aurora
Motors through an access certificate, an insurer is refused, the certificate is revoked and the
OEM's next unlock fails; the driver then reads who accessed the data, all over the data host's
HTTP API on loopback. Meter values of a charger go into a Data Stream that ages to nearline and
offline storage.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from evgi.api import create_app
from evgi.app import GENESIS_KEY
from evgi.core.identifiers import EntityKind
from evgi.data import BatteryHealth, DataHost, DataPublisher, DataType, MeterValue
from evgi.permissions import (
    Role,
    issue_access_certificate,
    issue_revocation_certificate,
    sign_unlock_request,
)
from evgi.service import http_in_background
from evgi.sim.report import Section, bar_plot

if TYPE_CHECKING:  # the scenario imports this part
    from evgi.sim.scenario import FoundationScenario

MONTHS = 6


def _call(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One HTTP exchange with JSON in and out; 4xx answers are returned, not raised."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class DataSharingPart:
    def __init__(self, scenario: FoundationScenario) -> None:
        self.scenario = scenario
        self.platform = scenario.platform
        self.report = scenario.report
        self.host = DataHost.open(self.platform, GENESIS_KEY)
        self.publisher = DataPublisher(self.host)
        self.facts: dict[str, Any] = {}
        self.exchanges: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("bootstrap the data host, on-board an insurer", self.bootstrap),
            ("publish battery health and meter values", self.publish),
            ("share battery health with the OEM over HTTP", self.share),
            ("age the meter-value stream", self.age),
            ("report data sharing", self.summarize),
        ]

    def bootstrap(self) -> None:
        issued = self.host.bootstrap([t.value for t in DataType])
        self.facts["dbc"] = issued.hash
        self.scenario.onboard(
            "lumen-insurance",
            EntityKind.INSURER,
            GENESIS_KEY,
            {"legalName": "Lumen Versicherung AG", "country": "DE"},
        )

    def publish(self) -> None:
        driver = self.scenario.people["driver-1"].address
        now = self.platform.clock.now()
        readings = [
            BatteryHealth(
                battery=self.scenario.did("battery-1"),
                vehicle=self.scenario.did("vehicle-1"),
                measuredAt=now - timedelta(days=30 * (MONTHS - 1 - month)),
                stateOfHealthPercent=round(99.6 - 0.35 * month, 2),
                usableCapacityWh=77_000 - 270 * month,
                equivalentFullCycles=18 * (month + 1),
            )
            for month in range(MONTHS)
        ]
        registration = self.publisher.battery_health(driver, readings)
        bucket = self.publisher.container(driver, DataType.BATTERY_HEALTH)
        anchored = self.platform.ledger.query("permissions", "data", hash=registration.hash)
        self.report.check(
            anchored is not None and anchored["owner"] == driver and "body" not in anchored,
            "battery-health registration must anchor hash, URI, owner and schema only",
        )
        self.facts.update(
            bucket=bucket.id,
            bucketUri=bucket.uri,
            registration=registration.hash,
            readings=[r.stateOfHealthPercent for r in readings],
        )
        cpo = self.scenario.people["volt-charge"].address
        meter = self.scenario.did("meter-1")
        values = [
            MeterValue(
                meter=meter,
                evseId="DE*VCH*E0001*1",
                measuredAt=now - timedelta(hours=24 - hour),
                energyImportWh=1_250_000 + 7_000 * hour,
                powerW=7_000,
            )
            for hour in range(24)
        ]
        self.publisher.meter_values(cpo, values)
        self.facts["stream"] = self.publisher.container(cpo, DataType.METER_VALUES).id

    def share(self) -> None:
        app = create_app(self.platform)
        app.state.data_host = self.host
        with http_in_background(app) as base:
            self._exchange(base)

    def _unlock(self, base: str, who: str, role: Role = Role.READER) -> tuple[int, Any]:
        request = sign_unlock_request(
            self.scenario.people[who].account,
            self.platform.ledger.chain_id,
            self.host.did,
            self.facts["bucket"],
            role,
            self.platform.clock.now(),
        )
        return _call("POST", f"{base}/data/unlock", request)

    def _note(self, step: str, status: int, answer: Any, expected: int) -> Any:
        reason = (answer.get("reason") or {}) if isinstance(answer, dict) else {}
        detail = answer.get("detail") if isinstance(answer, dict) else None
        code = reason.get("code") or (detail or {}).get("code") or "ok"
        self.exchanges.append({"step": step, "HTTP status": status, "outcome": code})
        self.report.check(status == expected, f"{step}: HTTP {status}, expected {expected}")
        return answer

    def _exchange(self, base: str) -> None:
        bucket = self.facts["bucket"]
        records = f"{base}/data/containers/{bucket}/records"
        driver = self.platform.submitter(self.scenario.people["driver-1"].account)
        oem = self.scenario.people["aurora-motors"].address
        ac = issue_access_certificate(
            driver,
            oem,
            bucket,
            self.facts["bucketUri"],
            Role.READER,
            self.platform.clock.now() + timedelta(days=90),
            self.platform.clock,
        )
        self.facts["accessCertificate"] = ac.hash
        status, answer = _call("POST", f"{base}/data/certificates", ac.document)
        self._note("driver-1 delivers the AC for aurora-motors", status, answer, 201)

        status, answer = self._unlock(base, "aurora-motors")
        self._note("aurora-motors unlocks battery-1 health", status, answer, 200)
        token = answer["session"]["token"] if status == 200 else ""
        status, page = _call("GET", records, token=token)
        self._note("aurora-motors reads battery-1 health", status, page, 200)
        shared = [r["body"]["stateOfHealthPercent"] for r in page.get("records", [])]
        self.report.check(
            shared == self.facts["readings"], "the OEM must read every state-of-health reading"
        )

        status, answer = self._unlock(base, "lumen-insurance")
        self._note("lumen-insurance unlocks battery-1 health", status, answer, 403)

        rc = issue_revocation_certificate(driver, ac.hash, self.platform.clock)
        self.facts["revocationCertificate"] = rc.hash
        status, answer = _call("POST", f"{base}/data/certificates", rc.document)
        self._note("driver-1 revokes the AC", status, answer, 201)
        status, answer = _call("GET", records, token=token)
        self._note("aurora-motors reads on its open session", status, answer, 403)
        status, answer = self._unlock(base, "aurora-motors")
        self._note("aurora-motors unlocks again", status, answer, 403)

        status, answer = self._unlock(base, "driver-1", Role.AUDITOR)
        self._note("driver-1 opens its access log", status, answer, 200)
        token = answer["session"]["token"] if status == 200 else ""
        status, log = _call("GET", f"{base}/data/containers/{bucket}/access-log", token=token)
        self._note("driver-1 reads its access log", status, log, 200)
        self.entries = log.get("entries", [])

    def age(self) -> None:
        now = self.platform.clock.now()
        nearline = self.host.age(now + timedelta(days=2))
        offline = self.host.age(now + timedelta(days=40))
        archives = self.host.store.archives(self.facts["stream"])
        self.report.check(
            nearline.nearline_records == 24 and offline.offline_segments == 1,
            "meter values must age from online to nearline to offline",
        )
        self.report.check(
            all(a.path is not None and a.tier == "offline" for a in archives),
            "an offline segment must be a file with its hash kept",
        )
        self.facts["streamAgeing"] = {
            "nearlineRecords": nearline.nearline_records,
            "offlineSegments": offline.offline_segments,
            "offlineHashes": [a.hash for a in archives],
        }

    def summarize(self) -> None:
        names = {p.address: p.name for p in self.scenario.people.values()}
        rows = []
        for entry in reversed(self.entries):
            accessor = entry["accessor"].rsplit(":", 1)[-1]
            rows.append(
                {
                    "when": entry["at"],
                    "accessor": names.get(accessor, accessor),
                    "action": entry["action"],
                    "role": entry["role"],
                    "outcome": entry["outcome"],
                    "reason": entry["reason"] or entry["via"],
                }
            )
        outcomes = Counter(f"{r['action']} {r['outcome']}" for r in rows)
        self.report.check(
            [(r["accessor"], r["action"], r["outcome"], r["reason"]) for r in rows][:5]
            == [
                ("aurora-motors", "unlock", "granted", self.facts["accessCertificate"]),
                ("aurora-motors", "read", "granted", self.facts["accessCertificate"]),
                ("lumen-insurance", "unlock", "refused", "not_granted"),
                ("aurora-motors", "read", "refused", "revoked"),
                ("aurora-motors", "unlock", "refused", "revoked"),
            ],
            "the access log must show the grant, the refusal and the revocation in order",
        )
        self.host.close()
        self.report.add(
            Section(
                "Data sharing",
                "driver-1 shared battery-1's state of health (a Data Bucket on the platform's "
                "data host, registered on the ledger by hash) with aurora-motors through an "
                "access certificate; lumen-insurance was refused; driver-1 revoked the "
                "certificate and aurora-motors' open session and next unlock failed. Rows: "
                "driver-1's access log, read over HTTP with an auditor session.",
                rows,
                [
                    bar_plot(
                        "Battery-1 state of health shared with the OEM",
                        [f"month {i + 1}" for i in range(MONTHS)],
                        self.facts["readings"],
                        "%",
                    ),
                    bar_plot("Access log", list(outcomes), list(outcomes.values()), "entries"),
                ],
                {**self.facts, "exchanges": self.exchanges},
            )
        )
