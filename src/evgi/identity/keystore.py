"""Encrypted key files (Web3 Secret Storage), one per named account, kept off the ledger."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from evgi.core.errors import NotFoundError, SignatureError, ValidationError
from evgi.core.keys import Account, normalize_address

_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# PBKDF2 keeps `evgi demo` quick; raise EVGI_KEYSTORE_ITERATIONS for production keys.
_ITERATIONS = int(os.environ.get("EVGI_KEYSTORE_ITERATIONS", "4096"))


class Keystore:
    def __init__(self, directory: Path, password: str = "") -> None:
        self.directory = directory
        self._password = password.encode()

    def _path(self, alias: str) -> Path:
        if not _ALIAS.match(alias):
            raise ValidationError(
                f"key name {alias!r}: use lower-case letters, digits, '.', '_' or '-'"
            )
        return self.directory / f"{alias}.json"

    def create(self, alias: str) -> Account:
        path = self._path(alias)
        if path.exists():
            raise ValidationError(f"a key named {alias!r} already exists in {self.directory}")
        account = Account.generate()
        self.directory.mkdir(parents=True, exist_ok=True)
        # Slow to import; only key creation and loading need it.
        from eth_keyfile.keyfile import create_keyfile_json

        data = create_keyfile_json(
            account.private_key, self._password, kdf="pbkdf2", iterations=_ITERATIONS
        )
        data["alias"] = alias
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        return account

    def load(self, name: str) -> Account:
        """Load by alias or by address."""
        path = self._find(name)
        data = json.loads(path.read_text())
        from eth_keyfile.keyfile import decode_keyfile_json

        try:
            secret = decode_keyfile_json(data, self._password)
        except ValueError as exc:
            raise SignatureError(
                f"cannot decrypt key {path.name}: wrong keystore password"
            ) from exc
        return Account(bytes(secret))

    def get_or_create(self, alias: str) -> Account:
        return self.load(alias) if self._path(alias).exists() else self.create(alias)

    def _find(self, name: str) -> Path:
        if name.startswith("0x"):
            wanted = normalize_address(name)[2:]
            for path in self.directory.glob("*.json"):
                if json.loads(path.read_text()).get("address", "").lower() == wanted:
                    return path
            raise NotFoundError(f"no key for address {name} in {self.directory}")
        path = self._path(name)
        if not path.exists():
            raise NotFoundError(
                f"no key named {name!r} in {self.directory} "
                f"(create it: evgi identity create {name})"
            )
        return path

    def entries(self) -> list[tuple[str, str]]:
        """(alias, address) of every key file."""
        result = []
        for path in sorted(self.directory.glob("*.json")):
            data = json.loads(path.read_text())
            result.append((data.get("alias", path.stem), "0x" + data["address"].lower()))
        return result
