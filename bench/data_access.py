"""Unlock + authorized read per second over HTTP on loopback: `evgi serve` against a bare endpoint.

evgi: the bench starts the real `evgi serve` on a fresh data folder, on-boards a driver and an OEM
(through the same folder, as the CLI does), publishes battery-health records into the driver's
bucket and has the driver grant the OEM an access certificate. Each operation is then one signed
Unlock Request (POST /data/unlock: signature, replay and time window, on-boarding, block list
and AC checked against the ledger) and one read with the session token (GET .../records,
re-authorized against the ledger); both must answer 200.

Peer: the same records served by a bare FastAPI endpoint on the same uvicorn, with no
permissioning at all (held in memory, so it is the ceiling of serving these bytes), one read per
operation. The same client drives both: plain HTTP/1.1 keep-alive, one asyncio protocol per
connection on uvloop, light enough not to be what is measured, though it runs on the same cores
as the server.
Unlock Requests are signed before the clock starts. Besides the rates, the bench reports each
server's CPU time per operation, the figure that holds still on a machine shared with other work.

Prints one JSON line to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import uvloop

from evgi.app import GENESIS_KEY, open_platform
from evgi.config import Settings
from evgi.core import Account, EntityKind
from evgi.data import BatteryHealth, DataHost, DataPublisher, DataType
from evgi.identity import did_for, issue_entity_certificate
from evgi.permissions import Role, issue_access_certificate, sign_unlock_request

RECORDS = 10
WARMUP = 300


def progress(message: str) -> None:
    print(f"[data_access] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(command: Sequence[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends; wait until it answers /api/health."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not answer /api/health") from None
                time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the scene: a driver's battery-health bucket, an OEM allowed to read it ------------------


def set_up(data_dir: Path) -> tuple[str, Account, str, list[dict[str, Any]]]:
    """On-board driver and OEM, publish records, grant an AC; returns what the client needs."""
    platform_ = open_platform(Settings(data_dir=data_dir))
    host = DataHost.open(platform_, GENESIS_KEY)
    try:
        anchor = platform_.submitter(GENESIS_KEY)
        driver = platform_.keystore.create("driver")
        oem = platform_.keystore.create("oem")
        issue_entity_certificate(anchor, driver.address, EntityKind.USER, {"role": "driver"})
        issue_entity_certificate(
            anchor, oem.address, EntityKind.OEM, {"legalName": "Aurora Motors", "country": "DE"}
        )
        battery = did_for(platform_.ledger.chain_id, Account.generate().address)
        start = datetime.now(UTC) - timedelta(days=RECORDS * 30)
        readings = [
            BatteryHealth(
                battery=battery,
                measuredAt=start + timedelta(days=30 * i),
                stateOfHealthPercent=100 - 0.4 * i,
                usableCapacityWh=77_000 - 300 * i,
                equivalentFullCycles=25 * i,
            )
            for i in range(RECORDS)
        ]
        publisher = DataPublisher(host)
        publisher.battery_health(driver.address, readings)
        bucket = publisher.container(driver.address, DataType.BATTERY_HEALTH)
        issue_access_certificate(
            platform_.submitter(driver),
            oem.address,
            bucket.id,
            bucket.uri,
            Role.READER,
            datetime.now(UTC) + timedelta(days=30),
        )
        records = [r.to_json() for r in host.store.records(bucket.id)]
        return bucket.id, oem, host.did, records
    finally:
        host.close()
        platform_.close()


# -- client ---------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a request and collects its one response:
    a protocol over the transport, so a request costs the client one write and one parse of
    the bytes as they arrive, not a stream reader's buffering and awaits."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        length = _content_length(bytes(self._buffer[:end]))
        if len(self._buffer) < end + 4 + length:
            return
        status = int(self._buffer[9:12])
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        waiter, self._waiter = self._waiter, None
        waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("the server closed the connection"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _content_length(head: bytes) -> int:
    """The Content-Length of a response head (0 if it has none)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def _drive(
    port: int, work: list[bytes | None], connections: int, read_path: str, token: str
) -> float:
    """Run the operations in `work` over `connections` keep-alive connections; ops per second.

    An item is an Unlock Request body (unlock, then read with the token it returns) or None
    (a read with `token`: an open session's, or nothing for the peer).
    """
    queue = iter(work)
    loop = asyncio.get_running_loop()
    unlock = b"POST /data/unlock HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    read = f"GET {read_path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ".encode()

    async def worker() -> None:
        _, connection = await loop.create_connection(_Connection, "127.0.0.1", port)
        try:
            for body in queue:
                session = token
                if body is not None:
                    status, answer = await connection.exchange(
                        b"%sContent-Length: %d\r\n\r\n%s" % (unlock, len(body), body)
                    )
                    if status != 200:
                        raise RuntimeError(f"unlock answered {status}: {answer[:300]!r}")
                    session = json.loads(answer)["session"]["token"]
                status, answer = await connection.exchange(
                    b"%s%s\r\n\r\n" % (read, session.encode())
                )
                if status != 200 or b'"seq"' not in answer:
                    raise RuntimeError(f"read answered {status}: {answer[:300]!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(work) / (time.perf_counter() - started)


def measure(
    port: int, work: list[bytes | None], connections: int, read_path: str, token: str = ""
) -> float:
    """Drive the server from uvloop: the client shares the machine's cores with the server, and
    the less it spends per request the more is left for what is measured (alike for both)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_drive(port, work, connections, read_path, token))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere).

    On a shared machine the rate swings with whatever else runs; the server's CPU time per
    operation swings far less, and says how many operations one core would serve."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_cpu(
    pid: int, port: int, work: list[bytes | None], connections: int, read_path: str, token: str = ""
) -> tuple[float, float]:
    """Operations per second, and the server's CPU microseconds per operation."""
    before = cpu_seconds(pid)
    rate = measure(port, work, connections, read_path, token)
    return rate, (cpu_seconds(pid) - before) * 1e6 / len(work)


def open_session(port: int, unlock_request: bytes) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/unlock",
        unlock_request,
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.loads(response.read())["session"]["token"]
        return token


# -- peer -------------------------------------------------------------------------------------


def serve_peer(port: int, records_file: Path) -> None:
    """A bare FastAPI endpoint returning the same records, no permissioning, same uvicorn."""
    import uvicorn
    from fastapi import FastAPI, Response

    body = records_file.read_bytes()
    app = FastAPI()

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/data/containers/{container_id}/records")
    async def records(container_id: str) -> Response:
        return Response(body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Unlock + authorized read per second: evgi serve vs a bare FastAPI endpoint."
    )
    parser.add_argument("--n", type=int, default=20_000, help="operations per run (20000)")
    parser.add_argument("--connections", type=int, default=32, help="client connections (32)")
    parser.add_argument("--peer", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer:
        serve_peer(int(args.peer[0]), Path(args.peer[1]))
        return
    if min(args.n, args.connections) < 1:
        parser.error("--n and --connections must be positive")

    with tempfile.TemporaryDirectory(prefix="evgi-bench-") as tmp:
        folder = Path(tmp)
        data_dir = folder / "evgi-data"
        port = free_port()
        evgi = [
            sys.executable,
            "-m",
            "evgi",
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            str(port),
        ]
        progress(f"starting evgi serve on 127.0.0.1:{port}")
        with server(evgi, port, folder / "serve.log") as serving:
            bucket, oem, host_did, records = set_up(data_dir)
            path = f"/data/containers/{bucket}/records"
            chain_id = Settings().chain_id

            def unlocks(count: int) -> list[bytes | None]:
                return [
                    json.dumps(
                        sign_unlock_request(
                            oem, chain_id, host_did, bucket, Role.READER, datetime.now(UTC)
                        )
                    ).encode()
                    for _ in range(count)
                ]

            progress(
                f"evgi: warm-up, then {args.n} unlock + read over {args.connections} connections"
            )
            measure(port, unlocks(WARMUP), args.connections, path)
            evgi_pairs, evgi_pair_cpu = measure_cpu(
                serving.pid, port, unlocks(args.n), args.connections, path
            )
            progress(
                f"evgi: {evgi_pairs:,.0f} unlock + read per second "
                f"({evgi_pair_cpu:,.0f} µs of server CPU each)"
            )
            token = open_session(port, unlocks(1)[0] or b"")
            reads: list[bytes | None] = [None] * args.n
            measure(port, reads[:WARMUP], args.connections, path, token)
            evgi_reads = measure(port, reads, args.connections, path, token)
            progress(f"evgi: {evgi_reads:,.0f} reads per second on an open session")

        records_file = folder / "records.json"
        records_file.write_text(json.dumps({"container": bucket, "records": records}))
        peer_port = free_port()
        peer = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--peer",
            str(peer_port),
            str(records_file),
        ]
        progress(f"starting the bare FastAPI peer on 127.0.0.1:{peer_port}")
        with server(peer, peer_port, folder / "peer.log") as serving:
            plain: list[bytes | None] = [None] * args.n
            measure(peer_port, plain[:WARMUP], args.connections, path)
            peer_reads, peer_read_cpu = measure_cpu(
                serving.pid, peer_port, plain, args.connections, path
            )
            progress(
                f"peer: {peer_reads:,.0f} reads per second "
                f"({peer_read_cpu:,.0f} µs of server CPU each)"
            )

    print(
        json.dumps(
            {
                "bench": "data_access",
                "evgi_unlock_read_per_s": round(evgi_pairs, 1),
                "evgi_session_read_per_s": round(evgi_reads, 1),
                "peer_read_per_s": round(peer_reads, 1),
                "evgi_server_cpu_us_per_unlock_read": round(evgi_pair_cpu, 1),
                "peer_server_cpu_us_per_read": round(peer_read_cpu, 1),
                "ratio": round(evgi_pairs / peer_reads, 3),
                "n": args.n,
                "connections": args.connections,
                "records_per_read": RECORDS,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            }
        )
    )


if __name__ == "__main__":
    main()
