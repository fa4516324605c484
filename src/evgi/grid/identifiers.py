"""Device identifiers of IEEE 2030.5 (section 6.3.4): both are derived from the device's TLS
certificate, so a device cannot claim another's resources without that device's private key."""

from __future__ import annotations

import hashlib

from evgi.core.errors import ValidationError

_LFDI_HEX_DIGITS = 40
_SFDI_BITS = 36


def lfdi(certificate_der: bytes) -> str:
    """Long-form device identifier: the first 160 bits of SHA-256 over the certificate's DER."""
    return hashlib.sha256(certificate_der).hexdigest()[:_LFDI_HEX_DIGITS].upper()


def sfdi(lfdi_hex: str) -> int:
    """Short-form device identifier: the LFDI's first 36 bits as a decimal number, followed by a
    check digit that makes the sum of all its digits a multiple of ten."""
    if len(lfdi_hex) != _LFDI_HEX_DIGITS:
        raise ValidationError(f"an LFDI has {_LFDI_HEX_DIGITS} hex digits, not {len(lfdi_hex)}")
    try:
        value = int(lfdi_hex, 16) >> (_LFDI_HEX_DIGITS * 4 - _SFDI_BITS)
    except ValueError as exc:
        raise ValidationError(f"{lfdi_hex!r} is not hexadecimal") from exc
    digit_sum = sum(int(digit) for digit in str(value))
    return value * 10 + (10 - digit_sum % 10) % 10


def normalize_lfdi(text: str) -> str:
    """An LFDI as typed by an operator or sent by a device, in the canonical upper case."""
    candidate = text.strip().upper()
    if len(candidate) != _LFDI_HEX_DIGITS or any(c not in "0123456789ABCDEF" for c in candidate):
        raise ValidationError(f"{text!r} is not an LFDI (40 hex digits)")
    return candidate
