"""The platform a request runs against, as a FastAPI dependency shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from evgi.app import Platform


def current_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(current_platform)]
