"""Ledger fixtures: the trust anchor as the issuer of a founded EUR token."""

from __future__ import annotations

import pytest

from evgi.core import Account
from evgi.ledger import Submitter
from evgi.ledger.journal import LocalLedger
from tests.ledger.economy import Holders, found_token


@pytest.fixture
def issuer(ledger: LocalLedger, anchor: Account) -> Submitter:
    """The trust anchor, after it created the EUR token and made itself its issuer (block 1)."""
    submitter = Submitter(ledger, anchor)
    found_token(submitter)
    return submitter


@pytest.fixture
def holders(ledger: LocalLedger) -> Holders:
    """Three account holders with no balance yet: alice, bob and carol."""
    alice, bob, carol = (Submitter(ledger, Account.generate()) for _ in range(3))
    return alice, bob, carol
