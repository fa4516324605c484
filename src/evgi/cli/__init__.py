"""The `evgi` command: one typer app, one module per command group."""

import sys

from evgi.cli import csms, data, grid, identity, ledger, pki, service, settlement, sim, wallet
from evgi.cli.context import app

__all__ = [
    "app",
    "csms",
    "data",
    "grid",
    "identity",
    "ledger",
    "main",
    "pki",
    "service",
    "settlement",
    "sim",
    "wallet",
]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
