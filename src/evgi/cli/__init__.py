"""The `evgi` command: one typer app, one module per command group."""

import sys

from evgi.cli import csms, data, identity, ledger, pki, service, sim
from evgi.cli.context import app

__all__ = ["app", "csms", "data", "identity", "ledger", "main", "pki", "service", "sim"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
