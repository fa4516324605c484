"""Bad input over a real WebSocket gets the protocol's own answer, and nothing else suffers:
the connection stays usable, other stations keep working and stored data stays stored."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as c16
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.csms.clients import raw_socket, station
from tests.csms.conftest import PASSWORD, Harness

BOOT_16 = {"chargePointVendor": "V", "chargePointModel": "M"}
BOOT_2X = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


async def exchange(socket: websockets.ClientConnection, frame: str) -> list[Any]:
    await socket.send(frame)
    answer: list[Any] = json.loads(await asyncio.wait_for(socket.recv(), 5))
    return answer


async def boot(socket: websockets.ClientConnection, version: str) -> None:
    payload = BOOT_16 if version == "ocpp1.6" else BOOT_2X
    answer = await exchange(socket, json.dumps([2, "boot", "BootNotification", payload]))
    assert answer[2]["status"] == "Accepted"


# (frame, 1.6 answer, 2.0.1 answer, 2.1 answer): the message id answered, and the error code.
CASES: list[tuple[str, str, tuple[str, str], tuple[str, str], tuple[str, str]]] = [
    (
        "not json",
        "{nope",
        ("-1", "FormationViolation"),
        ("-1", "RpcFrameworkError"),
        ("-1", "RpcFrameworkError"),
    ),
    (
        "not an array",
        '{"a": 1}',
        ("-1", "FormationViolation"),
        ("-1", "RpcFrameworkError"),
        ("-1", "RpcFrameworkError"),
    ),
    (
        "missing elements",
        '[2, "m1", "Heartbeat"]',
        ("m1", "FormationViolation"),
        ("m1", "RpcFrameworkError"),
        ("m1", "RpcFrameworkError"),
    ),
    (
        "unknown message type",
        '[7, "m2", "Heartbeat", {}]',
        ("m2", "FormationViolation"),
        ("m2", "MessageTypeNotSupported"),
        ("m2", "MessageTypeNotSupported"),
    ),
    (
        "message id not a string",
        '[2, 5, "Heartbeat", {}]',
        ("-1", "FormationViolation"),
        ("-1", "RpcFrameworkError"),
        ("-1", "RpcFrameworkError"),
    ),
    (
        "unknown action",
        '[2, "m3", "MakeCoffee", {}]',
        ("m3", "NotSupported"),
        ("m3", "NotSupported"),
        ("m3", "NotSupported"),
    ),
    (
        "action the CSMS does not take",
        '[2, "m4", "Reset", {"type": "Hard"}]',
        ("m4", "NotImplemented"),
        ("m4", "NotImplemented"),
        ("m4", "NotImplemented"),
    ),
    (
        "unknown field",
        '[2, "m5", "Heartbeat", {"extra": 1}]',
        ("m5", "FormationViolation"),
        ("m5", "FormatViolation"),
        ("m5", "FormatViolation"),
    ),
]

SCHEMA_16 = [
    (
        '[2, "s1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError"}]',
        "OccurenceConstraintViolation",
    ),
    (
        '[2, "s2", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", '
        '"status": "Available"}]',
        "TypeConstraintViolation",
    ),
    (
        '[2, "s3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
        '"status": "Sleeping"}]',
        "PropertyConstraintViolation",
    ),
    ('[2, "s4", "Authorize", {"idTag": "' + "x" * 21 + '"}]', "TypeConstraintViolation"),
    (
        '[2, "s5", "StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, '
        '"timestamp": "yesterday"}]',
        "TypeConstraintViolation",
    ),
]
SCHEMA_2X = [
    (
        '[2, "s1", "StatusNotification", {"timestamp": "2025-01-01T00:00:00Z", "evseId": 1, '
        '"connectorId": 1}]',
        "Occur",
    ),
    ('[2, "s2", "Heartbeat", []]', "TypeConstraintViolation"),
    (
        '[2, "s3", "StatusNotification", {"timestamp": "2025-01-01T00:00:00Z", "evseId": 1, '
        '"connectorId": 1, "connectorStatus": "Sleeping"}]',
        "PropertyConstraintViolation",
    ),
]


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
def test_bad_frames_get_protocol_errors(harness: Harness, version: str) -> None:
    harness.csms.add_station("BAD", PASSWORD)
    column = {"ocpp1.6": 2, "ocpp2.0.1": 3, "ocpp2.1": 4}[version]
    occurrence = {
        "ocpp1.6": "OccurenceConstraintViolation",
        "ocpp2.0.1": "OccurenceConstraintViolation",
        "ocpp2.1": "OccurrenceConstraintViolation",
    }[version]

    async def scenario() -> None:
        async with harness.serve() as url, raw_socket(url, "BAD", [version], PASSWORD) as ws:
            await boot(ws, version)
            for case in CASES:
                frame, (unique_id, code) = case[1], case[column]
                answer = await exchange(ws, frame)  # type: ignore[arg-type]
                assert answer[:3] == [4, unique_id, code], case[0]
            for frame, code in SCHEMA_16 if version == "ocpp1.6" else SCHEMA_2X:
                answer = await exchange(ws, frame)
                expected = occurrence if code.startswith("Occur") else code
                assert (answer[0], answer[2]) == (4, expected), frame
            # Still the same connection, still answering.
            answer = await exchange(ws, '[2, "ok", "Heartbeat", {}]')
            assert answer[0] == 3 and "currentTime" in answer[2]

    asyncio.run(scenario())


def test_duplicate_and_concurrent_calls(harness: Harness) -> None:
    harness.csms.add_station("DUP", PASSWORD)
    harness.csms.add_token("TAG")
    start = json.dumps(
        [
            2,
            "start-1",
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "TAG",
                "meterStart": 5,
                "timestamp": "2025-01-01T00:00:00Z",
            },
        ]
    )

    async def scenario() -> None:
        async with harness.serve() as url:
            async with raw_socket(url, "DUP", ["ocpp1.6"], PASSWORD) as ws:
                await boot(ws, "ocpp1.6")
                first = await exchange(ws, start)
                # The same call again (a retransmission): the same answer, nothing new stored;
                # key order and spacing do not make it another call.
                assert await exchange(ws, start) == first
                frame = json.loads(start)
                frame[3] = dict(reversed(frame[3].items()))
                assert await exchange(ws, json.dumps(frame, indent=2)) == first
                frame[3]["meterStart"] = 6
                changed = await exchange(ws, json.dumps(frame))
                assert changed[:3] == [4, "start-1", "GenericError"]
                # The same id for a different call is refused.
                reused = await exchange(ws, '[2, "start-1", "Heartbeat", {}]')
                assert reused[:3] == [4, "start-1", "GenericError"]
                # Two calls without waiting: the second is refused, the first answered.
                await ws.send(
                    json.dumps(
                        [
                            2,
                            "a",
                            "StatusNotification",
                            {"connectorId": 1, "errorCode": "NoError", "status": "Charging"},
                        ]
                    )
                )
                await ws.send('[2, "b", "Heartbeat", {}]')
                answers = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
                by_id = {a[1]: a for a in answers}
                assert by_id["a"][0] == 3
                assert by_id["b"][:3] == [4, "b", "GenericError"]
            async with raw_socket(url, "DUP", ["ocpp1.6"], PASSWORD) as ws:
                # After reconnecting, the retransmitted call still gets its first answer.
                assert await exchange(ws, start) == first

    asyncio.run(scenario())
    store = harness.csms.store
    assert len(store.run(store.transactions, "DUP")) == 1


def test_connection_refusals_and_isolation(harness: Harness) -> None:
    csms = harness.csms
    csms.add_station("GOOD", PASSWORD)
    csms.add_station("VICTIM", PASSWORD)

    async def scenario() -> None:
        async with harness.serve() as url, station(url, "GOOD", "ocpp1.6", PASSWORD) as good:
            await good.call(c16.BootNotification(charge_point_vendor="V", charge_point_model="M"))
            with pytest.raises(InvalidStatus) as unknown:
                async with raw_socket(url, "STRANGER", ["ocpp1.6"], PASSWORD):
                    pass
            assert unknown.value.response.status_code == 404
            for password in ("wrong-password-123", None):
                with pytest.raises(InvalidStatus) as wrong:
                    async with raw_socket(url, "VICTIM", ["ocpp1.6"], password):
                        pass
                assert wrong.value.response.status_code == 401
            with pytest.raises(InvalidStatus) as other_user:
                async with websockets.connect(
                    f"{url}/VICTIM",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    additional_headers={"Authorization": "Basic R09PRDpjb3JyZWN0LWhvcnNl"},
                ):
                    pass
            assert other_user.value.response.status_code == 401
            # No version in common: handshake without a subprotocol, then close 1002.
            async with raw_socket(url, "VICTIM", ["ocpp0.9"], PASSWORD) as ws:
                assert ws.subprotocol is None
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1002
            # A frame over the size limit closes that connection (1009), and only that one.
            async with raw_socket(url, "VICTIM", ["ocpp1.6"], PASSWORD, max_size=None) as ws:
                await boot(ws, "ocpp1.6")
                big = json.dumps(
                    [2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 200_000}]
                )
                await ws.send(big)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1009
            async with raw_socket(url, "VICTIM", ["ocpp1.6"], PASSWORD) as ws:
                answer = await exchange(ws, '[2, "hb", "Heartbeat", {}]')
                assert answer[0] == 3
            heartbeat = await good.call(c16.Heartbeat())
            assert heartbeat.current_time

    asyncio.run(scenario())
    assert csms.store.run(csms.store.station, "VICTIM").vendor == "V"


def test_unknown_stations_admitted_as_pending(tmp_path: Any) -> None:
    from evgi.storage import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'p.db'}")
    harness = Harness(engine, tmp_path, ocpp_unknown_stations="pending")

    async def scenario() -> None:
        async with harness.serve() as url, station(url, "NEWBIE", "ocpp2.0.1") as cp:
            from ocpp.v201 import call as c201

            boot_answer = await cp.call(
                c201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                )
            )
            assert boot_answer.status == "Pending"

    asyncio.run(scenario())
    assert harness.csms.store.run(harness.csms.store.station, "NEWBIE").boot_status == "Pending"
    engine.dispose()
