"""Plug & Charge authorizations/s and latency: evgi's ChainValidator vs pyhanko-certvalidator.

One authorization is what a CSMS does for an Authorize carrying a contract certificate chain:
validate the chain (leaf, MO sub-CA 2, MO sub-CA 1) up to the MO root, know each certificate's
OCSP status from the responder named in its AIA, and look the eMAID's contract up. The leaf is
new every time (a new vehicle: nothing about it is known yet), so its status is asked over
loopback HTTP for every authorization, nonce-checked; the two sub-CAs are the same for every
chain, and each side relies on the answers it already fetched about them as a relying party
does (RFC 5019), evgi until their nextUpdate or the next revocation recorded anywhere in the
PKI. The responder is the real `evgi serve`, in a process of its own, over a fresh ISO 15118-2
ecosystem with the chains issued.

evgi: `ChainValidator.of(hierarchies, OcspClient())`, one validator shared by every thread,
its client keeping one HTTP connection alive per thread. Peer: pyhanko-certvalidator (the
maintained fork of certvalidator) validating the same chains against the same root with
`allow_fetching=True, revocation_mode="hard-fail"`, one validation context per thread kept
for the whole load, so it too fetches each leaf's status and reuses what it fetched about the
sub-CAs; it looks no contract up. Every chain is authorized once per side, and every verdict
must be Accepted (a refusal fails the bench).

Two loads per side, after a warm-up, as a CSMS meets them: saturated (N authorizations in
flight, each thread starting the next as soon as one is answered, for each N of
`--concurrency`: the capacity in authorizations/s is the best of them, since past the cores
there are to share, threads only queue for them; each N's figures are printed too) and paced
(`--rate` authorizations/s due at a steady interval, served by as many threads as the largest
N; latency counts from when an authorization was due, so falling behind is not excused by
waiting to start). The machine's other load moves the figures: run it
several times. The CPU each authorization of the saturated load cost the validating process and
the responder moves far less with it, and is what to compare between versions.

The validating process settles its heap after start-up as `evgi serve` does
(`evgi.core.heap.settle_heap`), so that full collections do not walk what lives as long as it.

Prints one JSON line to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetchLimits

from evgi.config import Settings
from evgi.core.heap import settle_heap
from evgi.pnc import (
    Branch,
    ChainValidator,
    Hierarchies,
    Iso15118,
    IssuedChain,
    LeafRole,
    OcspClient,
    RootSpec,
)
from evgi.storage import open_database

ECOSYSTEM = (
    RootSpec("bench-v2g", Branch.V2G, "Bench V2G", Iso15118.PART_2, "secp256r1"),
    RootSpec("bench-mo", Branch.MO, "Bench MO", Iso15118.PART_2, "secp256r1"),
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _serve(folder: Path, port: int) -> Iterator[int]:
    """`evgi serve` on `folder`'s data, answering /pki on `port`; yields its process id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "evgi", "--data-dir", "data", "serve", "--port", str(port),
         "--ocpp-port", str(_free_port())],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("evgi serve did not start")
            time.sleep(0.2)
        yield process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


Authorize = Callable[[IssuedChain], None]


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU process `pid` has used (Linux's /proc), None where it cannot say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _figures(latencies: list[float], elapsed: float) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "authorizations": len(latencies),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }


def _saturate(chains: Sequence[IssuedChain], authorize: Authorize, threads: int) -> dict[str, Any]:
    """`threads` threads authorize `chains` back to back; latency from each one's start."""
    todo = iter(chains)
    lock = threading.Lock()
    latencies: list[float] = []

    def drive() -> None:
        while True:
            with lock:
                chain = next(todo, None)
            if chain is None:
                return
            begin = time.perf_counter()
            authorize(chain)
            latencies.append(time.perf_counter() - begin)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(drive) for _ in range(threads)]:
            done.result()
    return _figures(latencies, time.perf_counter() - started)


def _pace(
    chains: Sequence[IssuedChain], authorize: Authorize, threads: int, rate: float
) -> dict[str, Any]:
    """One authorization due every 1/`rate` s, run by `threads` threads; latency from when due."""

    def timed(chain: IssuedChain, due: float) -> float:
        authorize(chain)
        return time.perf_counter() - due

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        pending = []
        for index, chain in enumerate(chains):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pending.append(pool.submit(timed, chain, due))
        latencies = [done.result() for done in pending]
    return {"rate": rate, **_figures(latencies, time.perf_counter() - started)}


def _measure(name: str, chains: Sequence[IssuedChain], authorize: Authorize,
             args: argparse.Namespace, responder: int) -> dict[str, Any]:  # fmt: skip
    """Both loads; and the CPU milliseconds an authorization of each saturated load cost this
    process and the responder's (process id `responder`)."""
    warm, rest = chains[: args.warmup], chains[args.warmup :]
    threads = max(args.concurrency)
    _saturate(warm, authorize, threads)
    loads = []
    for in_flight in args.concurrency:
        saturated, rest = rest[: args.saturated], rest[args.saturated :]
        validator_before, responder_before = time.process_time(), _cpu_seconds(responder)
        load = {"concurrency": in_flight, **_saturate(saturated, authorize, in_flight)}
        validator_after, responder_after = time.process_time(), _cpu_seconds(responder)
        load["cpu_ms_per_authorization"] = {
            "validator": round((validator_after - validator_before) * 1000 / len(saturated), 3),
            "responder": None
            if responder_before is None or responder_after is None
            else round((responder_after - responder_before) * 1000 / len(saturated), 3),
        }
        loads.append(load)
    result: dict[str, Any] = {
        "saturated": max(loads, key=lambda load: load["per_s"]),
        "saturated_by_concurrency": loads,
        "paced": _pace(rest, authorize, threads, args.rate),
    }
    _log(f"{name}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--saturated", type=int, default=1500, help="chains authorized in each saturated load"
    )
    parser.add_argument(
        "--paced", type=int, default=1000, help="chains authorized in the paced load"
    )
    parser.add_argument("--warmup", type=int, default=100, help="chains authorized first")
    parser.add_argument(
        "--concurrency",
        type=lambda text: sorted({int(n) for n in text.split(",")}),
        default=[2, 4, 8],
        help="authorizations in flight (threads) of each saturated load, comma-separated",
    )
    parser.add_argument(
        "--rate", type=float, default=100, help="authorizations/s offered in the paced load"
    )
    args = parser.parse_args()
    if min(args.concurrency) < 1:
        parser.error("--concurrency takes positive numbers")
    count = args.warmup + args.saturated * len(args.concurrency) + args.paced

    with tempfile.TemporaryDirectory(prefix="evgi-bench-pnc-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        settings = Settings(data_dir=folder / "data", http_port=port)
        engine = open_database(settings.db_url)
        hierarchies = Hierarchies(settings, engine)
        hierarchies.init(ECOSYSTEM)
        _log(f"issuing {count} contract chains")
        chains = [hierarchies.issue_contract(f"DEBEN{index:09d}") for index in range(count)]
        root = chains[0].root

        with _serve(folder, port) as responder:
            ocsp = OcspClient()
            validator = ChainValidator.of(hierarchies, ocsp)

            def evgi_authorize(chain: IssuedChain) -> None:
                verdict = validator.validate(LeafRole.CONTRACT, chain.chain)
                if not verdict.accepted:
                    raise RuntimeError(f"evgi refused a valid chain: {verdict.message}")

            def asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
                return asn1_x509.Certificate.load(
                    certificate.public_bytes(serialization.Encoding.DER)
                )

            trust = [asn1(root)]
            # Each thread's own event loop and fetchers, kept for the whole load (the fetchers
            # keep the answers they fetched); a validation context per authorization, so that
            # each validates at its own time.
            local = threading.local()
            kept: list[tuple[asyncio.AbstractEventLoop, AIOHttpFetcherBackend]] = []

            def peer_authorize(chain: IssuedChain) -> None:
                if not hasattr(local, "fetchers"):
                    local.loop = asyncio.new_event_loop()
                    backend = AIOHttpFetcherBackend(limits=FetchLimits(max_requests=10**9))
                    local.fetchers = backend.get_fetchers()
                    kept.append((local.loop, backend))
                context = ValidationContext(
                    trust_roots=trust,
                    allow_fetching=True,
                    revocation_mode="hard-fail",
                    fetchers=local.fetchers,
                )
                validator = CertificateValidator(
                    asn1(chain.certificate),
                    intermediate_certs=[asn1(c) for c in chain.sub_cas],
                    validation_context=context,
                )
                local.loop.run_until_complete(validator.async_validate_usage({"digital_signature"}))

            settle_heap()
            evgi = _measure("evgi", chains, evgi_authorize, args, responder)
            peer = _measure("pyhanko-certvalidator", chains, peer_authorize, args, responder)
            ocsp.close()
            for loop, backend in kept:
                loop.run_until_complete(backend.close())
                loop.close()
        engine.dispose()

    print(
        json.dumps(
            {
                "bench": "pnc_authorize",
                "what": "contract chain validation + OCSP (the new leaf's status asked over "
                "loopback, the sub-CAs' kept) + contract lookup; saturated with "
                f"{'/'.join(map(str, args.concurrency))} in flight (the best kept), then "
                f"paced at {args.rate:g}/s",
                "evgi": evgi,
                "pyhanko_certvalidator": peer,
                "ratio_per_s": round(evgi["saturated"]["per_s"] / peer["saturated"]["per_s"], 2),
                "ratio_paced_p99": round(peer["paced"]["p99_ms"] / evgi["paced"]["p99_ms"], 2),
                "targets_met": {
                    "per_s_1000": evgi["saturated"]["per_s"] >= 1000,
                    "paced_p99_under_20ms": evgi["paced"]["p99_ms"] < 20,
                },
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            }
        )
    )


if __name__ == "__main__":
    main()
