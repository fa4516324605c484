"""The platform a request runs against, as a FastAPI dependency shared by every router."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request

from evgi.app import Platform

T = TypeVar("T")
# Re-entrant: making one kept service may ask for another.
_lock = threading.RLock()


def current_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(current_platform)]


def kept_on_app(app: FastAPI, name: str, make: Callable[[], T]) -> T:
    """`app.state.<name>`, made on first use under a lock so that concurrent first requests
    share one instance."""
    kept: T | None = getattr(app.state, name, None)
    if kept is None:
        with _lock:
            kept = getattr(app.state, name, None)
            if kept is None:
                kept = make()
                setattr(app.state, name, kept)
    return kept
