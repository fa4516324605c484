"""File transfers a station makes on a CSMS's request: firmware downloads and log uploads.

Stations fetch firmware and deliver logs over HTTP(S) or FTP themselves; the CSMS only names the
location and then follows the status notifications. Other schemes fail, as they would on a
station that does not speak them.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import urllib.request
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

MAX_FIRMWARE_BYTES = 64 * 1024 * 1024
TIMEOUT_S = 30


class TransferFailed(Exception):
    pass


def _ftp(location: str) -> tuple[ftplib.FTP, str]:
    parts = urlsplit(location)
    ftp = ftplib.FTP(timeout=TIMEOUT_S)
    ftp.connect(parts.hostname or "", parts.port or 21)
    ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
    return ftp, unquote(parts.path)


def _download(location: str) -> bytes:
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        with urllib.request.urlopen(location, timeout=TIMEOUT_S) as response:
            data: bytes = response.read(MAX_FIRMWARE_BYTES + 1)
    elif scheme == "ftp":
        buffer = io.BytesIO()
        ftp, path = _ftp(location)
        with ftp:
            ftp.retrbinary(f"RETR {path}", buffer.write)
        data = buffer.getvalue()
    else:
        raise TransferFailed(f"unsupported scheme {scheme!r}")
    if len(data) > MAX_FIRMWARE_BYTES:
        raise TransferFailed("firmware image too large")
    return data


def _upload(location: str, filename: str, content: bytes) -> None:
    scheme = urlsplit(location).scheme.lower()
    target = location + filename if location.endswith("/") else location
    if scheme in ("http", "https"):
        request = urllib.request.Request(
            target,
            data=content,
            method="PUT",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S):
            pass
    elif scheme == "ftp":
        ftp, path = _ftp(target)
        with ftp:
            ftp.storbinary(f"STOR {path or PurePosixPath(filename).name}", io.BytesIO(content))
    else:
        raise TransferFailed(f"unsupported scheme {scheme!r}")


async def download(location: str) -> bytes:
    try:
        return await asyncio.to_thread(_download, location)
    except (OSError, ValueError, ftplib.Error) as exc:
        raise TransferFailed(str(exc)) from exc


async def upload(location: str, filename: str, content: bytes) -> None:
    try:
        await asyncio.to_thread(_upload, location, filename, content)
    except (OSError, ValueError, ftplib.Error) as exc:
        raise TransferFailed(str(exc)) from exc
