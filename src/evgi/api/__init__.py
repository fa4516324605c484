"""The HTTP API on port 8000: each layer contributes its router; OpenAPI is served at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from evgi import __version__
from evgi.api import identity, ledger
from evgi.app import Platform


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="evgi",
        version=__version__,
        description="EV charging and grid integration platform: operator API and trust layer.",
    )
    app.state.platform = platform

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
    return app


__all__ = ["create_app"]
