"""Wallets over the operator API of a real `evgi serve`: top-ups, withdrawals, balances and
history in minor units, every refusal with its status and nothing stored or signed for it,
retries under an idempotency key answered once and moving the wallet once, a prepaid session's
escrow showing while it runs, quotes as `evgi wallet quote` gives them, and the same routes on
an EVM network."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from evgi.core.clock import SimulatedClock
from evgi.sim.stations import EvseSpec, station_class
from tests.ledger.conftest import EVM_RPC_ENV
from tests.service_runner import free_port, running_service
from tests.settlement.test_wallet import TARIFF, evgi_ok

PASSWORD = "station-password-0001"


@dataclass(frozen=True)
class Service:
    folder: Path
    ocpp: str
    http: httpx.Client


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One `evgi serve` on the local ledger for the module; each test uses its own wallets."""
    folder: Path = tmp_path_factory.mktemp("serve")
    ocpp_port = free_port()
    with running_service(folder, ocpp_port=ocpp_port) as base, httpx.Client(base_url=base) as http:
        yield Service(folder, f"ws://127.0.0.1:{ocpp_port}/ocpp", http)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str | None = None) -> str:
    """The refusal's message; `code` is the stable code of evgi's `{code, message}` shape."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if code is None:  # FastAPI's own check of the request
        return json.dumps(detail)
    assert detail["code"] == code, detail
    message: str = detail["message"]
    return message


def timed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History entries with their times parsed: JSON writers spell UTC differently."""
    return [{**e, "at": datetime.fromisoformat(e["at"])} for e in entries]


def kinds(http: httpx.Client, name: str) -> list[tuple[str, int]]:
    return [(e["kind"], e["amount_minor"]) for e in ok(http.get(f"/api/wallets/{name}/history"))]


def test_topup_withdraw_balance_and_history(service: Service) -> None:
    http = service.http
    assert "no wallet named 'alice'" in refused(http.get("/api/wallets/alice"), 404, "not_found")
    first = ok(http.post("/api/wallets/alice/topup", json={"amount_minor": 3_000}))
    assert (first["wallet"], first["currency"], first["balance_minor"]) == ("alice", "EUR", 3_000)
    assert (first["escrowed_minor"], first["id_tokens"], len(first["tx_hashes"])) == (0, [], 1)
    second = ok(
        http.post("/api/wallets/alice/topup", json={"amount_minor": 2_000, "currency": "EUR"})
    )
    assert second["balance_minor"] == 5_000 and second["address"] == first["address"]
    withdrawn = ok(http.post("/api/wallets/alice/withdraw", json={"amount_minor": 1_550}))
    assert withdrawn["balance_minor"] == 3_450 and len(withdrawn["tx_hashes"]) == 2

    wallet = ok(http.get("/api/wallets/alice"))
    assert (wallet["balance_minor"], wallet["escrowed_minor"], wallet["currency"]) == (
        3_450,
        0,
        "EUR",
    )
    history = ok(http.get("/api/wallets/alice/history"))
    assert [(e["kind"], e["amount_minor"]) for e in history] == [
        ("topup", 3_000),
        ("topup", 2_000),
        ("withdrawal", -1_550),
    ]
    # Each entry is the transaction the answer named, and the CLI reads the same history.
    assert [e["tx_hash"] for e in history] == [
        *first["tx_hashes"],
        *second["tx_hashes"],
        withdrawn["tx_hashes"][0],
    ]
    for entry in history:
        receipt = ok(http.get(f"/api/ledger/transactions/{entry['tx_hash']}"))["receipt"]
        assert (receipt["status"], receipt["block"]) == ("ok", entry["block"])
    from_cli = json.loads(evgi_ok(service.folder, "wallet", "history", "alice", "--json"))
    assert timed(from_cli) == timed(history)
    assert "/api/wallets/{name}/history" in ok(http.get("/openapi.json"))["paths"]


def test_refusals_store_and_sign_nothing(service: Service) -> None:
    http = service.http
    ok(http.post("/api/wallets/bob/topup", json={"amount_minor": 1_000}))
    height = ok(http.get("/api/ledger/head"))["block"]["height"]
    message = refused(
        http.post("/api/wallets/bob/withdraw", json={"amount_minor": 1_001}),
        409,
        "insufficient_funds",
    )
    assert message == "wallet 'bob' holds 10.00 EUR, less than 10.01 EUR"
    for amount in (0, -5, 12.5, "100", None):
        for action in ("topup", "withdraw"):
            refused(http.post(f"/api/wallets/bob/{action}", json={"amount_minor": amount}), 422)
    refused(http.post("/api/wallets/bob/topup", json={}), 422)
    wrong = http.post("/api/wallets/bob/topup", json={"amount_minor": 100, "currency": "USD"})
    assert refused(wrong, 422, "invalid") == "wallets hold EUR, not USD"
    assert "wallet name" in refused(
        http.post("/api/wallets/Bob!/topup", json={"amount_minor": 100}), 422, "invalid"
    )
    refused(http.post("/api/wallets/nobody/withdraw", json={"amount_minor": 100}), 404, "not_found")
    refused(http.get("/api/wallets/nobody/history"), 404, "not_found")

    assert ok(http.get("/api/ledger/head"))["block"]["height"] == height
    assert ok(http.get("/api/wallets/bob"))["balance_minor"] == 1_000
    assert kinds(http, "bob") == [("topup", 1_000)]
    for name in ("nobody", "Bob!"):
        refused(http.get(f"/api/wallets/{name}"), 404, "not_found")
    assert not (service.folder / "evgi-data" / "keys" / "wallet-nobody.json").exists()


def keyed(http: httpx.Client, name: str, action: str, key: str, amount: int) -> httpx.Response:
    return http.post(
        f"/api/wallets/{name}/{action}",
        json={"amount_minor": amount},
        headers={"Idempotency-Key": key},
    )


def height(http: httpx.Client) -> int:
    head: int = ok(http.get("/api/ledger/head"))["block"]["height"]
    return head


def test_retries_under_one_key_move_the_wallet_once(service: Service) -> None:
    http = service.http
    first = keyed(http, "erin", "topup", "erin-topup-1", 2_500)
    assert ok(first)["balance_minor"] == 2_500 and "idempotent-replayed" not in first.headers
    after_topup = height(http)
    again = keyed(http, "erin", "topup", "erin-topup-1", 2_500)
    assert (again.json(), again.headers["Idempotent-Replayed"]) == (first.json(), "true")

    withdrawn = ok(keyed(http, "erin", "withdraw", "erin-withdraw-1", 700))
    assert withdrawn["balance_minor"] == 1_800 and len(withdrawn["tx_hashes"]) == 2
    after_withdrawal = height(http)
    assert after_withdrawal > after_topup
    for _ in range(2):
        retried = keyed(http, "erin", "withdraw", "erin-withdraw-1", 700)
        assert (retried.json(), retried.headers["Idempotent-Replayed"]) == (withdrawn, "true")
    # The replay names the first transactions; the ledger and the balance moved once.
    assert height(http) == after_withdrawal
    assert ok(http.get("/api/wallets/erin"))["balance_minor"] == 1_800
    assert kinds(http, "erin") == [("topup", 2_500), ("withdrawal", -700)]

    # The key of one request is refused for any other, and nothing moves for it.
    for name, action, amount in (
        ("erin", "topup", 2_600),
        ("erin", "withdraw", 2_500),
        ("frank", "topup", 2_500),
    ):
        message = refused(
            keyed(http, name, action, "erin-topup-1", amount), 422, "idempotency_key_reused"
        )
        assert message == (
            "idempotency key 'erin-topup-1' was sent with another request (topup of wallet 'erin')"
        )
    with_currency = http.post(
        "/api/wallets/erin/topup",
        json={"amount_minor": 2_500, "currency": "EUR"},
        headers={"Idempotency-Key": "erin-topup-1"},
    )
    refused(with_currency, 422, "idempotency_key_reused")
    refused(keyed(http, "erin", "topup", "k" * 256, 100), 422)  # longer than a key may be
    refused(http.get("/api/wallets/frank"), 404, "not_found")
    assert height(http) == after_withdrawal
    assert kinds(http, "erin") == [("topup", 2_500), ("withdrawal", -700)]

    # Without a key, a request sent twice is made twice, as before.
    for _ in range(2):
        ok(http.post("/api/wallets/erin/topup", json={"amount_minor": 100}))
    assert ok(http.get("/api/wallets/erin"))["balance_minor"] == 2_000


def test_a_refused_withdrawal_replays_refused(service: Service) -> None:
    http = service.http
    ok(http.post("/api/wallets/gina/topup", json={"amount_minor": 1_000}))
    first = keyed(http, "gina", "withdraw", "gina-withdraw-1", 1_500)
    message = refused(first, 409, "insufficient_funds")
    assert message == "wallet 'gina' holds 10.00 EUR, less than 15.00 EUR"
    missing = keyed(http, "nobody", "withdraw", "nobody-withdraw-1", 100)
    refused(missing, 404, "not_found")

    # The wallet could pay now and the wallet exists, yet a retry gets the first refusal.
    ok(http.post("/api/wallets/gina/topup", json={"amount_minor": 1_000}))
    ok(http.post("/api/wallets/nobody/topup", json={"amount_minor": 1_000}))
    retries = (
        (first, keyed(http, "gina", "withdraw", "gina-withdraw-1", 1_500)),
        (missing, keyed(http, "nobody", "withdraw", "nobody-withdraw-1", 100)),
    )
    for was, retried in retries:
        assert (retried.status_code, retried.json()) == (was.status_code, was.json())
        assert retried.headers["Idempotent-Replayed"] == "true"
    assert ok(http.get("/api/wallets/gina"))["balance_minor"] == 2_000
    assert kinds(http, "gina") == [("topup", 1_000), ("topup", 1_000)]
    assert kinds(http, "nobody") == [("topup", 1_000)]


def test_racing_requests_with_one_key_make_one_movement(tmp_path: Path, db_url: str) -> None:
    """Clients that retry at once, on each database: the key's claim lets one of them run; the
    others get its answer, or 409 while it runs, and the ledger gets one transaction."""
    racers = 6
    with running_service(tmp_path, "--db", db_url) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            ok(http.post("/api/wallets/hugo/topup", json={"amount_minor": 5_000}))
        start = threading.Barrier(racers)
        answers: list[httpx.Response] = []

        def race() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                start.wait()
                answers.append(keyed(client, "hugo", "withdraw", "hugo-withdraw-1", 1_200))

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        made = [
            a for a in answers if a.status_code == 200 and "idempotent-replayed" not in a.headers
        ]
        assert len(answers) == racers and len(made) == 1, [a.text for a in answers]
        movement = ok(made[0])
        for answer in answers:
            if answer.status_code == 409:
                refused(answer, 409, "idempotency_key_in_progress")
            elif answer is not made[0]:
                assert answer.headers["Idempotent-Replayed"] == "true"
                assert ok(answer) == movement
        with httpx.Client(base_url=base, timeout=30) as http:
            assert ok(keyed(http, "hugo", "withdraw", "hugo-withdraw-1", 1_200)) == movement
            assert ok(http.get("/api/wallets/hugo"))["balance_minor"] == 3_800
            assert kinds(http, "hugo") == [("topup", 5_000), ("withdrawal", -1_200)]


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_prepaid_session_escrow_and_quote(service: Service) -> None:
    http, card = service.http, "04C0FFEE0001"
    http.post("/api/stations", json={"id": "WS-1", "password": PASSWORD}).raise_for_status()
    http.post("/api/tokens", json={"token": card}).raise_for_status()
    evgi_ok(service.folder, "wallet", "tariff", "WS-1", TARIFF, "--time-zone", "Europe/Berlin")
    ok(http.post("/api/wallets/carol/topup", json={"amount_minor": 8_000}))
    evgi_ok(service.folder, "wallet", "link", "carol", card)
    assert ok(http.get("/api/wallets/carol"))["id_tokens"] == [card]

    plan = {
        "station_id": "WS-1",
        "id_token": card,
        "energy_wh": 5_500,
        "minutes": 30,
        "max_power_w": 11_000,
    }
    quoted = ok(http.post("/api/wallets/carol/quote", json=plan))
    assert (quoted["tariff_id"], quoted["currency"], quoted["total_incl_vat_minor"]) == (
        "AC-30",
        "EUR",
        165,
    )
    from_cli = json.loads(
        evgi_ok(service.folder, "wallet", "quote", "WS-1", card, "--kwh", "5.5", "--json")
    )
    assert from_cli["total_incl_vat_minor"] == quoted["total_incl_vat_minor"]
    assert from_cli["tariff_digest"] == quoted["tariff_digest"]
    refused(http.post("/api/wallets/carol/quote", json={**plan, "id_token": "OTHER"}), 404)
    refused(http.post("/api/wallets/carol/quote", json={**plan, "station_id": "WS-9"}), 404)
    too_much = {**plan, "energy_wh": 100_000, "minutes": 1}
    refused(http.post("/api/wallets/carol/quote", json=too_much), 422, "invalid")
    refused(http.post("/api/wallets/carol/quote", json={**plan, "energy_wh": 5.5}), 422)

    async def charge() -> None:
        station = station_class("2.0.1")(
            "WS-1",
            service.ocpp,
            password=PASSWORD,
            clock=SimulatedClock(),
            evses=[EvseSpec(11_000)],
        )
        await station.connect()
        await station.plug_in()
        assert await station.present_token(card) == "Accepted"
        await station.charge_for(timedelta(minutes=30))
        # While the session runs, its hold sits in escrow: neither spendable nor gone.
        await asyncio.to_thread(
            _until, lambda: ok(http.get("/api/wallets/carol"))["escrowed_minor"] == 5_000
        )
        assert ok(http.get("/api/wallets/carol"))["balance_minor"] == 3_000
        await station.present_token(card)
        await station.unplug()
        await station.close()

    asyncio.run(charge())
    _until(lambda: kinds(http, "carol")[-1][0] == "refund")
    assert kinds(http, "carol") == [("topup", 8_000), ("escrow", -5_000), ("refund", 5_000 - 165)]
    wallet = ok(http.get("/api/wallets/carol"))
    assert (wallet["balance_minor"], wallet["escrowed_minor"]) == (8_000 - 165, 0)


@pytest.mark.skipif(
    not os.environ.get(EVM_RPC_ENV),
    reason=f"no EVM node: set {EVM_RPC_ENV} to a Hardhat JSON-RPC URL such as "
    "http://127.0.0.1:8545 (.ci/run starts one)",
)
def test_wallets_on_an_evm_network(tmp_path: Path) -> None:
    (tmp_path / "evgi.toml").write_text(
        f'ledger = "evm"\nrpc_url = "{os.environ[EVM_RPC_ENV]}"\n'
        "evm_dev_funding_wei = 10000000000000000000\n"
    )
    with running_service(tmp_path) as base, httpx.Client(base_url=base, timeout=60) as http:
        assert ok(http.get("/api/health"))["ledger"]["engine"] == "evm"
        topped = ok(http.post("/api/wallets/dana/topup", json={"amount_minor": 2_500}))
        withdrawn = ok(http.post("/api/wallets/dana/withdraw", json={"amount_minor": 700}))
        assert withdrawn["balance_minor"] == 1_800
        refused(
            http.post("/api/wallets/dana/withdraw", json={"amount_minor": 1_801}),
            409,
            "insufficient_funds",
        )
        history = ok(http.get("/api/wallets/dana/history"))
        emsp = json.loads((tmp_path / "evgi-data" / "keys" / "emsp.json").read_text())
        assert [(e["kind"], e["amount_minor"], e["reference"]) for e in history] == [
            ("topup", 2_500, ""),
            ("withdrawal", -700, f"0x{emsp['address'].lower()}"),
        ]
        assert [e["tx_hash"] for e in history] == [
            *topped["tx_hashes"],
            withdrawn["tx_hashes"][0],
        ]
        on_evm = ("--ledger", "evm", "--rpc", os.environ[EVM_RPC_ENV])
        cli_history = evgi_ok(tmp_path, *on_evm, "wallet", "history", "dana", "--json")
        assert timed(json.loads(cli_history)) == timed(history)
