"""The platform a command or service runs on: storage, ledger, keys, event bus and clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from evgi.config import Settings
from evgi.core.clock import Clock, SystemClock
from evgi.core.events import EventBus
from evgi.core.keys import Account
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger, Submitter, open_evm_ledger, open_local_ledger
from evgi.ledger.journal import has_genesis
from evgi.storage import open_database

GENESIS_KEY = "trust-anchor"


@dataclass
class Platform:
    settings: Settings
    db: Engine
    ledger: Ledger
    keystore: Keystore
    bus: EventBus
    clock: Clock
    _submitters: dict[str, Submitter] = field(default_factory=dict)

    def account(self, name: str) -> Account:
        return self.keystore.load(name)

    def submitter(self, account: Account | str) -> Submitter:
        """One submitter per account, so nonces stay in step across calls."""
        if isinstance(account, str):
            account = self.account(account)
        if account.address not in self._submitters:
            self._submitters[account.address] = Submitter(self.ledger, account)
        return self._submitters[account.address]

    def close(self) -> None:
        self.ledger.close()
        self.db.dispose()


def open_platform(settings: Settings, clock: Clock | None = None) -> Platform:
    """Open (and on first use create) the database, the ledger and its genesis trust anchor (on
    the evm engine: the key that deploys the contracts and is their first trust anchor)."""
    clock = clock or SystemClock()
    db = open_database(settings.db_url)
    keystore = Keystore(settings.keys_dir, settings.keystore_password)
    ledger: Ledger
    if settings.ledger == "evm":
        assert settings.rpc_url is not None  # Settings refuses evm without it
        deployer = keystore.get_or_create(GENESIS_KEY)
        ledger = open_evm_ledger(
            settings.rpc_url,
            deployer,
            settings.evm_deployment_file,
            [deployer.address],
            settings.evm_dev_funding_wei,
        )
    else:
        anchors: list[str] = []
        if not has_genesis(db):
            anchors.append(keystore.get_or_create(GENESIS_KEY).address)
        ledger = open_local_ledger(
            db, settings.chain_id, anchors, clock, settings.block_max_transactions
        )
    return Platform(settings, db, ledger, keystore, EventBus(), clock)
