"""Charging stations for the tests: the `ocpp` library's own client side over real WebSockets."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import websockets
from ocpp.v16 import ChargePoint as Station16
from ocpp.v21 import ChargePoint as Station21
from ocpp.v201 import ChargePoint as Station201

STATIONS: dict[str, type[Any]] = {
    "ocpp1.6": Station16,
    "ocpp2.0.1": Station201,
    "ocpp2.1": Station21,
}


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@asynccontextmanager
async def raw_socket(
    url: str, station_id: str, subprotocols: list[str], password: str | None = None, **options: Any
) -> AsyncIterator[websockets.ClientConnection]:
    headers = basic_auth(station_id, password) if password is not None else None
    async with websockets.connect(
        f"{url}/{station_id}",
        subprotocols=subprotocols,  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=5,
        **options,
    ) as socket:
        yield socket


@asynccontextmanager
async def station(
    url: str,
    station_id: str,
    version: str,
    password: str | None = None,
    station_class: type[Any] | None = None,
) -> AsyncIterator[Any]:
    """A connected library ChargePoint of `version` (a subclass may add @on handlers)."""
    async with raw_socket(url, station_id, [version], password) as socket:
        client = (station_class or STATIONS[version])(station_id, socket, response_timeout=5)
        task = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
