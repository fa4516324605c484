"""Station passwords for security profiles 1 and 2 (HTTP Basic auth), kept only as scrypt hashes.

The hash string names its parameters, so stronger ones can be adopted without a migration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from evgi.core.errors import ValidationError

# OCPP 2.0.1 BasicAuthPassword: 16 to 40 characters.
MIN_PASSWORD, MAX_PASSWORD = 16, 40
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32


def _kdf(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_LENGTH, maxmem=2 * 128 * r * n
    )


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError(
            f"station passwords have {MIN_PASSWORD} to {MAX_PASSWORD} characters (OCPP)"
        )
    salt = os.urandom(16)
    digest = _kdf(password, salt, _N, _R, _P)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _kdf(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """User and password of an `Authorization: Basic ...` header, or None if it is not one."""
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
