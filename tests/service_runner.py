"""Starts the real `evgi serve` on free loopback ports and stops it, as an operator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"evgi serve exited early:\n{process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("evgi serve did not answer /api/health in time")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
