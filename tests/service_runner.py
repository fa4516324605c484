"""Starts the real `evgi serve` on free loopback ports and stops it, as an operator would."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports the kernel hands to bind(0) and to outgoing connections (PostgreSQL's, httpx's) come
# from the ephemeral range: a port picked there and closed again can be taken before the service
# binds it. Picking below that range, each port once per test run, leaves no such race.
_PORTS = list(range(20000, _ephemeral_floor()))
random.Random(os.getpid()).shuffle(_PORTS)
_NEXT_PORT = itertools.cycle(_PORTS)
_PORT_LOCK = threading.Lock()


def free_port() -> int:
    """A loopback port no other part of this test run was given and nothing listens on."""
    with _PORT_LOCK:
        for port in _NEXT_PORT:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")  # pragma: no cover - the cycle never ends


@contextmanager
def running_service(
    cwd: Path, *args: str, timeout: float = 30, ocpp_port: int | None = None
) -> Iterator[str]:
    """Yield the base URL of a running `evgi serve`; stop it with SIGINT afterwards.

    The OCPP server listens on `ocpp_port`, or on a free port when none is given."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evgi",
            *args,
            "serve",
            "--port",
            str(port),
            "--ocpp-port",
            str(ocpp_port or free_port()),
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    # Read the service's log as it comes: a full pipe would stall the service mid-test.
    reader = threading.Thread(
        target=lambda: output.extend(process.stdout or ()), name="evgi-serve-log", daemon=True
    )
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                reader.join(timeout=5)
                raise RuntimeError("evgi serve exited early:\n" + "".join(output))
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "evgi serve did not answer /api/health in time:\n" + "".join(output)
                )
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
