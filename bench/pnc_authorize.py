"""Plug & Charge authorizations/s and latency: evgi's ChainValidator vs pyhanko-certvalidator.

One authorization is what a CSMS does for an Authorize carrying a contract certificate chain:
validate the chain (leaf, MO sub-CA 2, MO sub-CA 1) up to the MO root, ask the OCSP responder
named in each certificate's AIA about it (three requests over loopback HTTP, fresh each time,
nonce-checked), and look the eMAID's contract up. The responder is the real `evgi serve`, in a
process of its own, over a fresh ISO 15118-2 ecosystem with `--chains` issued contracts.

evgi: `ChainValidator.of(hierarchies, OcspClient())`, one kept-alive HTTP connection. Peer:
pyhanko-certvalidator (the maintained fork of certvalidator) validating the same chains against
the same root with `allow_fetching=True, revocation_mode="hard-fail"`: a new validation context
per authorization, so it fetches OCSP afresh as evgi does; it looks no contract up. Both run
the same chains in the same order, one authorization at a time, after a warm-up; every verdict
must be Accepted (a refusal fails the bench).

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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from evgi.config import Settings
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
def _serve(folder: Path, port: int) -> Iterator[str]:
    """`evgi serve` on `folder`'s data, answering /pki on `port`."""
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
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _measure(name: str, chains: list[IssuedChain], authorize: Callable[[IssuedChain], None],
             warmup: int) -> dict[str, Any]:  # fmt: skip
    for chain in chains[:warmup]:
        authorize(chain)
    latencies: list[float] = []
    started = time.perf_counter()
    for chain in chains:
        begin = time.perf_counter()
        authorize(chain)
        latencies.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "authorizations": len(chains),
        "per_s": round(len(chains) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
    }
    _log(f"{name}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=300, help="contract chains to authorize")
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="evgi-bench-pnc-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        settings = Settings(data_dir=folder / "data", http_port=port)
        engine = open_database(settings.db_url)
        hierarchies = Hierarchies(settings, engine)
        hierarchies.init(ECOSYSTEM)
        _log(f"issuing {args.chains} contract chains")
        chains = [hierarchies.issue_contract(f"DEBEN{index:09d}") for index in range(args.chains)]
        root = chains[0].root

        with _serve(folder, port):
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

            def peer_authorize(chain: IssuedChain) -> None:
                context = ValidationContext(
                    trust_roots=trust, allow_fetching=True, revocation_mode="hard-fail"
                )
                validator = CertificateValidator(
                    asn1(chain.certificate),
                    intermediate_certs=[asn1(c) for c in chain.sub_cas],
                    validation_context=context,
                )
                asyncio.run(validator.async_validate_usage({"digital_signature"}))

            evgi = _measure("evgi", chains, evgi_authorize, args.warmup)
            peer = _measure("pyhanko-certvalidator", chains, peer_authorize, args.warmup)
            ocsp.close()
        engine.dispose()

    print(
        json.dumps(
            {
                "bench": "pnc_authorize",
                "what": "contract chain validation + OCSP (3 requests, loopback) + contract "
                "lookup, one at a time",
                "evgi": evgi,
                "pyhanko_certvalidator": peer,
                "ratio_per_s": round(evgi["per_s"] / peer["per_s"], 2),
                "ratio_p99": round(peer["p99_ms"] / evgi["p99_ms"], 2),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            }
        )
    )


if __name__ == "__main__":
    main()
