"""Runs the real `evgi` command in a child process, as a user would, in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_evgi(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "evgi", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
