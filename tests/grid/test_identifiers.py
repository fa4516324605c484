from __future__ import annotations

import pytest

from evgi.core.errors import ValidationError
from evgi.grid import lfdi, normalize_lfdi, sfdi


def test_sfdi_of_the_standards_example() -> None:
    # IEEE 2030.5-2018 section 6.3.4 works this LFDI through to this SFDI.
    assert sfdi("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5") == 167261211391


def test_lfdi_is_the_truncated_sha256_of_the_certificate() -> None:
    import hashlib

    der = b"\x30\x03\x02\x01\x01"
    assert lfdi(der) == hashlib.sha256(der).hexdigest()[:40].upper()


@pytest.mark.parametrize("bad", ["", "3E4F", "Z" * 40, "3E4F45AB31EDFE5B67E343E5E4562E31984E23E55"])
def test_malformed_lfdis_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        normalize_lfdi(bad)
    with pytest.raises(ValidationError):
        sfdi(bad)
