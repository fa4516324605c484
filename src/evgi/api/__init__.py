"""The HTTP API on port 8000: each layer contributes its router; OpenAPI is served at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from evgi import __version__
from evgi.api import (
    bidirectional,
    charging_profiles,
    commands,
    data,
    export_payments,
    identity,
    ledger,
    opcp,
    pki,
    stations,
    tokens,
    transactions,
    wallets,
)
from evgi.app import Platform
from evgi.csms import Csms


def create_app(platform: Platform, csms: Csms | None = None) -> FastAPI:
    """`csms` is the running CSMS of `evgi serve` (its store, registry and commands), kept in
    `app.state.csms` for the operator routes."""
    app = FastAPI(
        title="evgi",
        version=__version__,
        description="EV charging and grid integration platform: operator API and trust layer.",
    )
    app.state.platform = platform
    app.state.csms = csms

    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        head = platform.ledger.head()
        return {
            "status": "ok",
            "version": __version__,
            "ledger": {"engine": platform.ledger.engine_name, "height": head.height},
        }

    app.include_router(ledger.router, prefix="/api/ledger")
    app.include_router(identity.router, prefix="/api/identity")
    app.include_router(data.router, prefix="/data")
    app.include_router(opcp.router, prefix="/opcp/v1")
    app.include_router(opcp.est_router, prefix="/.well-known/est")
    app.include_router(pki.router, prefix="/pki")
    app.include_router(stations.router, prefix="/api/stations")
    app.include_router(bidirectional.router, prefix="/api/stations")
    app.include_router(
        charging_profiles.router, prefix="/api/stations/{station_id}/charging-profiles"
    )
    app.include_router(commands.router, prefix="/api/stations/{station_id}/commands")
    app.include_router(tokens.router, prefix="/api/tokens")
    app.include_router(transactions.router, prefix="/api")
    app.include_router(export_payments.router, prefix="/api")
    app.include_router(wallets.router, prefix="/api/wallets")
    return app


__all__ = ["create_app"]
