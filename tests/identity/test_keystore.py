"""Encrypted key files: created once, loaded by name or address, refused with a wrong password."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from evgi.core import NotFoundError, SignatureError, ValidationError
from evgi.identity import Keystore


def test_create_and_load(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys", "pw")
    account = store.create("volt-charge")
    assert store.load("volt-charge").address == account.address
    assert store.load(account.address).private_key == account.private_key
    assert store.entries() == [("volt-charge", account.address)]
    mode = (tmp_path / "keys" / "volt-charge.json").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert b"private" not in (tmp_path / "keys" / "volt-charge.json").read_bytes().lower()


def test_refusals(tmp_path: Path) -> None:
    store = Keystore(tmp_path, "right")
    store.create("a")
    with pytest.raises(ValidationError, match="already exists"):
        store.create("a")
    with pytest.raises(ValidationError, match="key name"):
        store.create("../escape")
    with pytest.raises(NotFoundError):
        store.load("missing")
    with pytest.raises(SignatureError, match="wrong keystore password"):
        Keystore(tmp_path, "wrong").load("a")
    assert store.get_or_create("a").address == store.load("a").address
