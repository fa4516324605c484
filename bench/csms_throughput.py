"""OCPP 2.0.1 calls/s, latency and memory per connection: evgi's CSMS vs a bare `ocpp` server.

evgi: `Csms` exactly as `evgi serve` builds it (compiled schema validation of every request and
answer, every message persisted to SQLite through the group-commit writer; no other layer
subscribed to its events), in a process of its own on a fresh data folder where the stations
and their id tokens are registered before it listens; after the run the bench reads the
database and fails unless every answered call was stored. Peer: the mobilityhouse `ocpp`
library's own v201 `ChargePoint` on `websockets`, answering the same actions with the library's
default validation (jsonschema, on its executor) and storing nothing: the bare protocol stack
evgi is built on. Each server runs in its own process, so the load generator never shares its
GIL.

The same client drives both: every station is a `websockets` sans-I/O `ClientProtocol` on an
asyncio transport, sending OCPP-J frames rendered from templates (a loop of TransactionEvent
Started / Updated / Ended with meter values, MeterValues and Heartbeat), one call in flight per
station as OCPP-J requires. Every answer is parsed and checked (CALLRESULT, same message id, the
id token accepted), so a fast wrong answer cannot count.

Two loads per server, after a warm-up: saturated (each station sends its next call as soon as
the previous one is answered: the server's capacity in calls/s) and paced (each station sends
`--rate` calls/s at its own phase; latency counts from when a call was due, so a server that
falls behind is not excused by stations waiting for it). Memory per connection is the server's
RSS growth (/proc/<pid>/status) from listening to all stations booted, divided by the stations.

`--idle N` instead holds N booted, idle connections to each server and reports the RSS.

`--profile` covers the event-loop thread only; the store's writer thread shares the GIL with
it, so for both use `py-spy record --threads --pid <pid>` with the pid printed on stderr.

Prints one JSON line to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from ocpp import routing
from ocpp.v201 import ChargePoint as LibraryChargePoint
from ocpp.v201 import call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

F = TypeVar("F", bound=Callable[..., Any])
VERSION = "ocpp2.0.1"
HOST = "127.0.0.1"
READY_FILE = "ready"
FD_MARGIN = 256  # descriptors a process needs besides its connections
CONNECT_TIMEOUT = 60.0
TARGET_RATIO = 2.0
TARGET_P99_MS = 50.0
TARGET_IDLE_BYTES = 1 << 30

# -- the frames -----------------------------------------------------------------------------------

_SAMPLE = (
    '{"timestamp":"2025-03-01T12:00:00Z","sampledValue":['
    '{"value":%(wh)s,"measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"}},'
    '{"value":7200,"measurand":"Power.Active.Import","unitOfMeasure":{"unit":"W"}}]}'
)
_EVENT = (
    '[2,"%(id)s","TransactionEvent",{"eventType":"{event}","timestamp":"2025-03-01T12:00:00Z",'
    '"triggerReason":"{trigger}","seqNo":%(seq)s,"transactionInfo":{"transactionId":"%(tx)s",'
    '{info}},"evse":{"id":1,"connectorId":1},{extra}"meterValue":[' + _SAMPLE + "]}]"
)
TEMPLATES: dict[str, str] = {
    "boot": '[2,"%(id)s","BootNotification",{"reason":"PowerUp",'
    '"chargingStation":{"vendorName":"Bench","model":"Sim-22"}}]',
    "heartbeat": '[2,"%(id)s","Heartbeat",{}]',
    "meter": '[2,"%(id)s","MeterValues",{"evseId":1,"meterValue":[' + _SAMPLE + "]}]",
    "started": _EVENT.replace("{event}", "Started")
    .replace("{trigger}", "Authorized")
    .replace("{info}", '"chargingState":"Charging"')
    .replace("{extra}", '"idToken":{"idToken":"%(token)s","type":"ISO14443"},'),
    "updated": _EVENT.replace("{event}", "Updated")
    .replace("{trigger}", "MeterValuePeriodic")
    .replace("{info}", '"chargingState":"Charging"')
    .replace("{extra}", ""),
    "ended": _EVENT.replace("{event}", "Ended")
    .replace("{trigger}", "StopAuthorized")
    .replace("{info}", '"chargingState":"Idle","stoppedReason":"Local"')
    .replace("{extra}", ""),
}
# One charging session per cycle: 5 TransactionEvents, 3 MeterValues, 2 Heartbeats.
CYCLE = (
    "started",
    "meter",
    "updated",
    "heartbeat",
    "meter",
    "updated",
    "meter",
    "updated",
    "heartbeat",
    "ended",
)
TRANSACTION_EVENTS = frozenset({"started", "updated", "ended"})


def on(action: str) -> Callable[[F], F]:
    """The `ocpp` library's `@on` route decorator, typed."""
    return cast(Callable[[F], F], routing.on(action))


def station_name(i: int) -> str:
    return f"B{i:05d}"


def token_name(i: int) -> str:
    return f"TOKEN{i:05d}"


def progress(message: str) -> None:
    print(f"[csms_throughput] {message}", file=sys.stderr, flush=True)


# -- the servers, each run as `--serve evgi|peer` in a process of its own --------------------------


def serve_evgi(port: int, data: Path, stations: int, profile: Path | None) -> None:
    """Build the CSMS as `evgi serve` does, register the stations and tokens, listen until
    SIGINT/SIGTERM. With a profile path, SIGUSR1/SIGUSR2 start/stop cProfile on the loop."""
    from evgi.config import Settings
    from evgi.core.clock import SystemClock
    from evgi.core.events import EventBus
    from evgi.csms import Csms
    from evgi.storage import open_database

    settings = Settings(data_dir=data)
    db = open_database(settings.db_url)
    clock = SystemClock()
    csms = Csms(settings, db, EventBus(), clock)
    now = clock.now()
    with db.begin() as conn:  # one transaction: registering 10,000 one by one takes long
        for i in range(stations):
            csms.store.add_station(conn, station_name(i), None, 0, "Accepted", now)
            csms.store.put_token(conn, token_name(i), "Accepted", now)

    async def main() -> None:
        async with csms.running(HOST, port):
            await _ready_and_wait(data, profile)

    asyncio.run(main())
    db.dispose()


class PeerStation(LibraryChargePoint):  # type: ignore[misc]  # the library is untyped
    """A station as the `ocpp` library's own documentation serves it: handlers return answers."""

    @on(Action.boot_notification)
    def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        return call_result.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        if id_token is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info={"status": "Accepted"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def serve_peer(port: int, data: Path) -> None:
    """The library's ChargePoint per connection, on websockets' defaults, as its examples do."""

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        station = PeerStation(connection.request.path.rsplit("/", 1)[-1], connection)
        with contextlib.suppress(ConnectionClosed):
            await station.start()

    async def main() -> None:
        async with serve(handler, HOST, port, subprotocols=[Subprotocol(VERSION)]):
            await _ready_and_wait(data, None)

    asyncio.run(main())


async def _ready_and_wait(data: Path, profile: Path | None) -> None:
    """Tell the bench the server listens (a file: stdout belongs to the server's logs), then
    serve until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    profiler = cProfile.Profile() if profile is not None else None
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)
        loop.add_signal_handler(signal.SIGUSR2, profiler.disable)
    (data / READY_FILE).write_text(str(os.getpid()))
    await stop.wait()
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)


# -- the server process, seen from the bench ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    kind: str
    process: subprocess.Popen[bytes]
    port: int
    data: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGINT, as an operator stops it, and wait: the CSMS finishes its writes first."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def status(self, key: str) -> int:
        """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM) or plain (Threads)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                parts = value.split()
                return int(parts[0]) * (1024 if parts[-1] == "kB" else 1)
        raise KeyError(key)

    def rss(self) -> int:
        return self.status("VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the server so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)


@contextmanager
def server_process(
    kind: str, stations: int, profile: Path | None = None, timeout: float = 300
) -> Iterator[ServerProcess]:
    """Start `kind` on a free loopback port and a fresh temp folder; stop it with SIGINT."""
    with tempfile.TemporaryDirectory(prefix=f"evgi-bench-{kind}-") as tmp:
        data = Path(tmp)
        port = free_port()
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            kind,
            "--port",
            str(port),
            "--data",
            str(data),
            "--stations",
            str(stations),
        ]
        if profile is not None:
            command += ["--profile", str(profile)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
        with open(data / "server.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while not (data / READY_FILE).exists():
                if process.poll() is not None:
                    tail = (data / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{kind} server exited early:\n{tail}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{kind} server not ready after {timeout:.0f} s")
                time.sleep(0.1)
            server = ServerProcess(kind, process, port, data)
            yield server
        finally:
            ServerProcess(kind, process, port, data).stop()


# -- the client ----------------------------------------------------------------------------------


class Station(asyncio.Protocol):
    """One simulated station: websockets' sans-I/O client on a bare transport, so that the load
    generator costs little more than framing; answers are timestamped as their bytes arrive."""

    def __init__(self, index: int, port: int) -> None:
        self.index = index
        self.name = station_name(index)
        self.token = token_name(index)
        uri = parse_uri(f"ws://{HOST}:{port}/ocpp/{self.name}")
        self.ws = ClientProtocol(uri, subprotocols=[Subprotocol(VERSION)])
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[float, bytes]] | None = None
        self.answered: Counter[str] = Counter()  # correct answers by kind of call
        self._step = 0
        self._sent = 0
        self._tx = 0
        self._seq = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if (
                    self.ws.state is State.OPEN
                    and event.headers.get("Sec-WebSocket-Protocol") == VERSION
                ):
                    _settle(self.opened, None)
                else:
                    reason = self.ws.handshake_exc or f"HTTP {event.status_code}"
                    _fail(self.opened, ConnectionError(f"{self.name}: refused: {reason}"))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                answer, self._answer = self._answer, None
                if answer is not None:
                    _settle(answer, (arrived, bytes(event.data)))
        self._flush()  # pongs and close answers queued by the protocol

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"{self.name}: connection lost ({exc or 'closed'})")
        _fail(self.opened, error)
        if self._answer is not None:
            _fail(self._answer, error)
        _settle(self.closed, None)

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    # OCPP

    def next_call(self) -> tuple[str, str, str]:
        """The station's next call in its cycle: (kind, message id, frame)."""
        kind = CYCLE[self._step]
        self._step = (self._step + 1) % len(CYCLE)
        if kind == "started":
            self._tx += 1
            self._seq = 0
        elif kind in TRANSACTION_EVENTS:
            self._seq += 1
        return kind, *self.frame(kind)

    def frame(self, kind: str) -> tuple[str, str]:
        self._sent += 1
        message_id = str(self._sent)
        frame = TEMPLATES[kind] % {
            "id": message_id,
            "tx": f"{self.name}-{self._tx}",
            "seq": self._seq,
            "token": self.token,
            "wh": 1000 * self._tx + 250 * self._seq,
        }
        return message_id, frame

    def send(self, frame: str) -> asyncio.Future[tuple[float, bytes]]:
        """Send a call; the future gives (arrival time, answer frame)."""
        if self._answer is not None:
            raise RuntimeError("one call at a time")
        answer: asyncio.Future[tuple[float, bytes]] = asyncio.get_running_loop().create_future()
        if self.closed.done():
            answer.set_exception(ConnectionError(f"{self.name}: connection closed"))
            return answer
        self._answer = answer
        self.ws.send_text(frame.encode())
        self._flush()
        return answer

    def close(self) -> None:
        if self.transport is None or self.closed.done():
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close()
            self._flush()
        else:
            self.transport.close()


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: nobody may be waiting any more


def check_answer(kind: str, message_id: str, raw: bytes) -> str | None:
    """None for the right CALLRESULT, else what is wrong with it."""
    try:
        message = json.loads(raw)
    except ValueError:
        return f"{kind}: not JSON: {raw[:200]!r}"
    if not (isinstance(message, list) and len(message) == 3 and message[0] == 3):
        return f"{kind}: not a CALLRESULT: {raw[:300]!r}"
    if message[1] != message_id:
        return f"{kind}: answer to message {message[1]!r}, expected {message_id!r}"
    body = message[2]
    if kind == "boot" and body.get("status") != "Accepted":
        return f"boot not accepted: {raw[:300]!r}"
    if kind == "started" and body.get("idTokenInfo", {}).get("status") != "Accepted":
        return f"id token not accepted: {raw[:300]!r}"
    return None


@dataclass
class Tally:
    """Calls answered during one phase, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def call(
    station: Station, kind: str, message_id: str, frame: str, tally: Tally
) -> float | None:
    """Send one call; the arrival time of a correct answer, else None (counted as an error)."""
    try:
        arrived, raw = await asyncio.wait_for(station.send(frame), CONNECT_TIMEOUT)
    except (ConnectionError, TimeoutError) as exc:
        tally.error(f"{kind}: {exc!r}")
        return None
    problem = check_answer(kind, message_id, raw)
    if problem is not None:
        tally.error(problem)
        return None
    station.answered[kind] += 1
    return arrived


async def open_station(index: int, port: int, tally: Tally) -> Station | None:
    """Connect, upgrade and boot one station; None (and an error in `tally`) when it fails."""
    loop = asyncio.get_running_loop()
    try:
        _, station = await asyncio.wait_for(
            loop.create_connection(lambda: Station(index, port), HOST, port), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        tally.error(f"connect: {exc!r}")
        return None
    try:
        await asyncio.wait_for(asyncio.shield(station.opened), CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        tally.error(f"upgrade: {exc!r}")
        if station.transport is not None:
            station.transport.abort()
        return None
    message_id, frame = station.frame("boot")
    if await call(station, "boot", message_id, frame, tally) is None:
        station.close()
        return None
    return station


async def open_stations(
    count: int, port: int, batch: int, tally: Tally, give_up: bool
) -> list[Station]:
    """Connect and boot `count` stations, `batch` at a time (a listen backlog holds ~100)."""
    stations: list[Station] = []
    reported = 0
    for start in range(0, count, batch):
        opened = await asyncio.gather(
            *(open_station(i, port, tally) for i in range(start, min(count, start + batch)))
        )
        stations += [s for s in opened if s is not None]
        if tally.errors and give_up:
            break
        if all(s is None for s in opened):
            progress(f"a whole batch failed ({tally.first_error}): not connecting more")
            break
        if len(stations) - reported >= 1000 or start + batch >= count:
            progress(f"  {len(stations):,} stations connected and booted")
            reported = len(stations)
    return stations


async def close_stations(stations: Sequence[Station], timeout: float = 30) -> None:
    for station in stations:
        station.close()
    pending = [s.closed for s in stations if not s.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    for station in stations:
        if station.transport is not None and not station.closed.done():
            station.transport.abort()


async def saturate(stations: Sequence[Station], seconds: float) -> tuple[Tally, float]:
    """Every station calls back to back for `seconds`; returns the tally and the elapsed time."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop_at = started + seconds

    async def drive(station: Station) -> None:
        while loop.time() < stop_at:
            kind, message_id, frame = station.next_call()
            sent = loop.time()
            arrived = await call(station, kind, message_id, frame, tally)
            if arrived is None:
                return
            tally.latencies.append(arrived - sent)

    await asyncio.gather(*(drive(s) for s in stations))
    return tally, loop.time() - started


async def pace(stations: Sequence[Station], seconds: float, rate: float) -> tuple[Tally, float]:
    """Each station calls `rate` times a second at a random phase; latency from when due."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    interval = 1 / rate
    started = loop.time()
    stop_at = started + seconds
    phases = random.Random(7)

    async def drive(station: Station) -> None:
        due = started + phases.uniform(0, interval)
        while due < stop_at:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, message_id, frame = station.next_call()
            arrived = await call(station, kind, message_id, frame, tally)
            if arrived is None:
                return
            tally.latencies.append(arrived - due)
            due += interval

    await asyncio.gather(*(drive(s) for s in stations))
    return tally, loop.time() - started


# -- the two runs ----------------------------------------------------------------------------------


def mb(n: int) -> float:
    return round(n / 2**20, 1)


def require_clean(server: str, phase: str, tally: Tally) -> None:
    if tally.errors:
        raise RuntimeError(
            f"{server} {phase}: {tally.errors} failed calls; first: {tally.first_error}"
        )


SAMPLES_PER_CALL = 2  # every MeterValues and TransactionEvent frame carries two sampled values


def check_stored(db: Path, answered: Counter[str]) -> dict[str, int]:
    """What evgi's CSMS persisted, read after it stopped; it must be every answered call."""
    with contextlib.closing(sqlite3.connect(db)) as conn:

        def count(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        stored = {
            "transactions": count("SELECT count(*) FROM csms_transactions"),
            "transactions_ended": count(
                "SELECT count(*) FROM csms_transactions WHERE state = 'ended'"
            ),
            "meter_values": count("SELECT count(*) FROM csms_meter_values"),
        }
    expected = {
        "transactions": answered["started"],
        "transactions_ended": answered["ended"],
        "meter_values": SAMPLES_PER_CALL * sum(answered[k] for k in ("meter", *TRANSACTION_EVENTS)),
    }
    if stored != expected:
        raise RuntimeError(f"evgi stored {stored}, but the answered calls imply {expected}")
    return stored


async def throughput_run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    profile = args.profile if kind == "evgi" else None
    with server_process(kind, args.stations, profile) as server:
        base = server.rss()
        progress(
            f"{kind}: pid {server.pid}, port {server.port} (RSS {mb(base)} MB); connecting "
            f"{args.stations:,} stations"
        )
        connect = Tally()
        started = time.monotonic()
        stations = await open_stations(args.stations, server.port, args.batch, connect, True)
        require_clean(kind, "connect", connect)
        connect_s = time.monotonic() - started
        connected = server.rss()
        progress(
            f"{kind}: {len(stations):,} connected in {connect_s:.1f} s; RSS {mb(connected)} MB"
            f"; warm-up {args.warmup:g} s"
        )
        warm, _ = await saturate(stations, args.warmup)
        require_clean(kind, "warm-up", warm)

        progress(f"{kind}: saturated load, {args.duration:g} s")
        cpu = server.cpu_seconds()
        client_cpu = time.process_time()
        if profile is not None:
            server.send(signal.SIGUSR1)
        saturated, elapsed = await saturate(stations, args.duration)
        if profile is not None:
            server.send(signal.SIGUSR2)
        cpu = server.cpu_seconds() - cpu
        client_cpu = time.process_time() - client_cpu
        require_clean(kind, "saturated", saturated)
        calls = len(saturated.latencies)
        progress(
            f"{kind}: {calls / elapsed:,.0f} calls/s, p50 {saturated.percentile_ms(0.5)} ms,"
            f" p99 {saturated.percentile_ms(0.99)} ms, CPU: server {cpu / elapsed:.0%}, "
            f"client {client_cpu / elapsed:.0%}"
        )

        paced: Tally | None = None
        paced_elapsed = 0.0
        if args.rate > 0:
            offered = args.rate * len(stations)
            progress(
                f"{kind}: paced load, {args.rate:g} calls/s per station "
                f"({offered:,.0f} calls/s), {args.duration:g} s"
            )
            paced, paced_elapsed = await pace(stations, args.duration, args.rate)
            require_clean(kind, "paced", paced)
            progress(
                f"{kind}: paced p50 {paced.percentile_ms(0.5)} ms, "
                f"p99 {paced.percentile_ms(0.99)} ms"
            )
        after = server.rss()
        peak = server.status("VmHWM")
        threads = server.status("Threads")
        await close_stations(stations)
        server.stop()
        result: dict[str, Any] = {
            "calls_per_s": round(calls / elapsed, 1),
            "p50_ms": saturated.percentile_ms(0.5),
            "p99_ms": saturated.percentile_ms(0.99),
            "calls": calls,
            "server_cpu_ms_per_call": round(1000 * cpu / calls, 3),
            "server_cpu_share": round(cpu / elapsed, 2),
            "client_cpu_share": round(client_cpu / elapsed, 2),
            "paced_calls_per_s": round(len(paced.latencies) / paced_elapsed, 1) if paced else None,
            "paced_p50_ms": paced.percentile_ms(0.5) if paced else None,
            "paced_p99_ms": paced.percentile_ms(0.99) if paced else None,
            "connect_s": round(connect_s, 1),
            "rss_listening_mb": mb(base),
            "rss_connected_mb": mb(connected),
            "rss_after_load_mb": mb(after),
            "rss_peak_mb": mb(peak),
            "kb_per_connection": round((connected - base) / len(stations) / 1024, 1),
            "kb_per_connection_after_load": round((after - base) / len(stations) / 1024, 1),
            "server_threads": threads,
        }
        if kind == "evgi":
            answered = sum((s.answered for s in stations), Counter())
            result["stored"] = check_stored(server.data / "evgi.db", answered)
    return result


async def idle_run(
    kind: str, count: int, args: argparse.Namespace, capped: str | None
) -> dict[str, Any]:
    """Hold `count` booted idle stations (fewer than asked when `capped` says why)."""
    with server_process(kind, count) as server:
        base = server.rss()
        progress(
            f"{kind}: listening (RSS {mb(base)} MB); opening {count:,} idle connections "
            f"in batches of {args.batch}"
        )
        tally = Tally()
        started = time.monotonic()
        stations = await open_stations(count, server.port, args.batch, tally, False)
        connect_s = time.monotonic() - started
        progress(
            f"{kind}: {len(stations):,} booted in {connect_s:.1f} s; holding them {args.hold:g} s"
        )
        await asyncio.sleep(args.hold)
        held = [s for s in stations if not s.closed.done()]
        rss = server.rss()
        progress(f"{kind}: {len(held):,} connections held, server RSS {mb(rss)} MB")
        await close_stations(stations)
    dropped = len(stations) - len(held)
    reasons = [capped] if capped else []
    if tally.errors:
        reasons.append(f"{tally.errors} failed to connect or boot, first: {tally.first_error}")
    if dropped:
        reasons.append(f"{dropped} connections closed while idle")
    return {
        "held": len(held),
        "failed": args.idle - len(held),
        "why_fewer": "; ".join(reasons) if len(held) < args.idle else None,
        "connect_s": round(connect_s, 1),
        "rss_listening_mb": mb(base),
        "rss_mb": mb(rss),
        "kb_per_connection": round((rss - base) / max(1, len(held)) / 1024, 1),
    }


def raise_open_files(needed: int) -> tuple[int, int]:
    """Lift the open-file limit to `needed` (the server processes inherit it): the soft limit
    up to the hard one, the hard one too where the process may (root); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if hard != infinite and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            soft = hard = needed
    if soft != infinite and soft < needed:
        soft = needed if hard == infinite else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if hard != infinite and hard < needed:
        progress(
            f"the hard open-file limit is {hard} and {needed} are needed: raise it as root "
            f"(`ulimit -Hn {needed}` in the shell that runs the bench, `nofile` in "
            "/etc/security/limits.conf, or LimitNOFILE= for a systemd service)"
        )
    return soft, hard


def ratio(runs: dict[str, dict[str, Any]], key: str) -> float | None:
    """evgi's figure over the peer's, when both servers ran and have it."""
    a = runs.get("evgi", {}).get(key)
    b = runs.get("peer", {}).get(key)
    return None if a is None or not b else round(a / b, 2)


def profile_report(path: Path, lines: int = 30) -> None:
    """The evgi server's hottest functions during the saturated load, on stderr."""
    if not path.exists():
        progress(f"no profile written at {path}")
        return
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.strip_dirs()
    progress("evgi server, saturated load, by own time:")
    stats.sort_stats("tottime").print_stats(lines)
    progress("evgi server, saturated load, by cumulative time:")
    stats.sort_stats("cumulative").print_stats(lines)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    servers = ["evgi", "peer"] if args.servers == "both" else [args.servers]
    if args.idle:
        soft, hard = raise_open_files(args.idle + FD_MARGIN)
        count = max(0, min(args.idle, soft - FD_MARGIN))
        capped = None
        if count < args.idle:
            capped = (
                f"open-file limit {soft} (hard {hard}): at most {count} connections "
                f"besides the {FD_MARGIN} descriptors a process needs"
            )
            progress(capped)
        idle = {kind: await idle_run(kind, count, args, capped) for kind in servers}
        evgi = idle.get("evgi")
        return {
            "bench": "csms_idle_connections",
            "requested": args.idle,
            **idle,
            "ratio_kb_per_connection": ratio(idle, "kb_per_connection"),
            "target_under_1gb": None
            if evgi is None
            else (evgi["held"] == args.idle and evgi["rss_mb"] * 2**20 < TARGET_IDLE_BYTES),
            "hold_s": args.hold,
            "open_files": {"soft": soft, "hard": hard},
            "machine": machine,
        }

    raise_open_files(args.stations + FD_MARGIN)
    runs = {kind: await throughput_run(kind, args) for kind in servers}
    if args.profile is not None:
        profile_report(args.profile)
    evgi, peer = runs.get("evgi"), runs.get("peer")
    return {
        "bench": "csms_throughput",
        "stations": args.stations,
        "duration_s": args.duration,
        "rate_per_station": args.rate,
        **runs,
        "ratio_calls_per_s": ratio(runs, "calls_per_s"),
        # The peer's server CPU time per call over evgi's: what calls/s tracks when both servers
        # get a core each, and steadier than calls/s on a machine shared with other work.
        "ratio_cpu_per_call": None
        if not (evgi and peer)
        else round(peer["server_cpu_ms_per_call"] / evgi["server_cpu_ms_per_call"], 2),
        "ratio_paced_p99": ratio(runs, "paced_p99_ms"),
        "ratio_kb_per_connection": ratio(runs, "kb_per_connection"),
        "targets": {
            "calls_per_s_2x_peer": None
            if not (evgi and peer)
            else evgi["calls_per_s"] >= TARGET_RATIO * peer["calls_per_s"],
            "paced_p99_under_50ms": None
            if not (evgi and evgi["paced_p99_ms"] is not None)
            else evgi["paced_p99_ms"] < TARGET_P99_MS,
        },
        "mix": {"TransactionEvent": 5, "MeterValues": 3, "Heartbeat": 2},
        "machine": machine,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="OCPP 2.0.1 calls/s, latency and memory per connection: evgi's CSMS "
        "(validation + SQLite persistence) vs a bare `ocpp` library server. "
        "Prints one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--stations", type=int, default=1000, help="simulated stations, each on its own WebSocket"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=15,
        help="seconds of each measured load (saturated, then paced)",
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of unmeasured saturated load first"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.5,
        help="calls per second each station sends in the paced load; 0 skips it",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="connections opened at once (the servers' listen backlog is 100)",
    )
    parser.add_argument(
        "--servers",
        choices=("both", "evgi", "peer"),
        default="both",
        help="which servers to measure (ratios need both)",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=0,
        metavar="N",
        help="instead: hold N booted idle connections to each server and report "
        "its RSS (raises the open-file limit; 0 = off)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=30,
        help="with --idle: seconds to hold the connections before reading RSS "
        "(over 20 s, so the servers' keepalive pings are answered once)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="cProfile evgi's server during the saturated load, write the stats "
        "to FILE and print the hot spots to stderr (slows evgi down)",
    )
    parser.add_argument(
        "--serve",
        choices=("evgi", "peer"),
        default=None,
        help="internal: run one server in this process (the bench starts it)",
    )
    parser.add_argument("--port", type=int, default=0, help="internal: with --serve, the port")
    parser.add_argument(
        "--data", type=Path, default=None, help="internal: with --serve, the data folder"
    )
    args = parser.parse_args(argv)

    if args.serve is not None:
        if args.data is None or not args.port:
            parser.error("--serve needs --port and --data")
        if args.serve == "evgi":
            serve_evgi(args.port, args.data, args.stations, args.profile)
        else:
            serve_peer(args.port, args.data)
        return
    if min(args.stations, args.batch) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--stations and --batch must be positive, --duration above 0")
    if args.rate < 0 or args.idle < 0 or args.hold < 0:
        parser.error("--rate, --idle and --hold cannot be negative")
    if args.profile is not None:
        args.profile = args.profile.resolve()
    print(json.dumps(asyncio.run(bench(args))))


if __name__ == "__main__":
    main()
