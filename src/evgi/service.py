"""`evgi serve`: every network service of the platform in one asyncio loop."""

from __future__ import annotations

import asyncio

import structlog
import uvicorn

from evgi.api import create_app
from evgi.app import Platform

log = structlog.get_logger(__name__)


async def serve(platform: Platform) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM); each service logs where it listens."""
    settings = platform.settings
    http = uvicorn.Server(
        uvicorn.Config(
            create_app(platform),
            host=settings.http_host,
            port=settings.http_port,
            log_level="info",
            lifespan="on",
        )
    )
    log.info(
        "http api listening",
        url=f"http://{settings.http_host}:{settings.http_port}",
        docs=f"http://{settings.http_host}:{settings.http_port}/docs",
    )
    await asyncio.gather(http.serve())
