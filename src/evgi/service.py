"""`evgi serve`: every network service of the platform in one asyncio loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from evgi.api import create_app
from evgi.api.data import HotRoutes
from evgi.api.hot_path import HotPath
from evgi.api.pki import OcspRoutes
from evgi.app import Platform
from evgi.core.heap import settle_heap
from evgi.csms import Csms, ocpp_tls
from evgi.grid import CsipServer
from evgi.settlement import CdrAnchoring, CoreClient, ExportPayments

log = structlog.get_logger(__name__)


def run(platform: Platform) -> None:
    """Run `serve` until interrupted, on uvloop where it is installed: it moves bytes through
    sockets at a fraction of the standard event loop's cost."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(platform))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(platform))


def front(app: FastAPI) -> HotPath:
    """`app` behind the front that answers the data exchanges' and OCSP's hot routes."""
    return HotPath(app, [HotRoutes(app, "/data"), OcspRoutes(app, "/pki")])


async def serve(platform: Platform) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM); each service logs where it listens."""
    settings = platform.settings
    csms = Csms(settings, platform.db, platform.bus, platform.clock)
    http = uvicorn.Server(
        uvicorn.Config(
            front(create_app(platform, csms)),
            host=settings.http_host,
            port=settings.http_port,
            log_level="info",
            # A line per request would cost more than a data unlock; the data host keeps its
            # owners' access log, and errors are still logged.
            access_log=False,
            lifespan="on",
        )
    )
    log.info(
        "http api listening",
        url=f"http://{settings.http_host}:{settings.http_port}",
        docs=f"http://{settings.http_host}:{settings.http_port}/docs",
    )
    core = CoreClient.for_platform(platform, csms.store)
    core.attach(platform.bus, csms.authorization)
    core.start()
    exports = ExportPayments.of_settings(core.wallets, csms.store, settings)
    if exports is not None:
        exports.attach(platform.bus)
    ssl_context, certificate_check = ocpp_tls(settings)
    await csms.start(ssl_context=ssl_context, certificate_check=certificate_check)
    grid = CsipServer(settings, platform.db, platform.clock)
    try:
        await grid.start(settings.grid_host, settings.grid_port)
    except OSError as exc:
        # The 2030.5 port is taken (another evgi serve?): the other services still run.
        log.error("IEEE 2030.5 server not started", port=settings.grid_port, error=str(exc))
    anchoring = CdrAnchoring.of_platform(
        platform.db, platform.ledger, platform.keystore, platform.clock
    )
    anchor_task = asyncio.create_task(anchoring.run(settings.cdr_anchor_interval))
    settle_heap()
    try:
        await asyncio.gather(http.serve())
    finally:
        anchor_task.cancel()
        await csms.stop()
        await grid.stop()
        core.stop()


@contextmanager
def http_in_background(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on `port` (a free one if 0) in a thread, for scenarios that drive the HTTP
    API in-process; yields the base URL and stops the server (running its shutdown) when the
    block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="evgi-http", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the HTTP server stopped while starting")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join()
