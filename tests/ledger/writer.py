"""A ledger writer for the crash tests to kill: it commits small blocks of economy traffic.

    python -m tests.ledger.writer DB_URL CHAIN_ID SEED ISSUER_KEY HOLDER_KEY...

After each block it prints `<tx hash> <block> <ok>` per receipt and flushes, so a line on stdout
is a promise that its transaction is committed. It stops by itself after a while, in case nobody
is left to kill it.
"""

from __future__ import annotations

import random
import sys
import time

from evgi.core import Account
from evgi.ledger import Submitter, open_local_ledger
from evgi.storage import open_database
from tests.ledger.economy import SYMBOL, Economy, found_token

BLOCK_MAX_TRANSACTIONS = 4  # one economy round per block
LIFETIME_SECONDS = 120


def main(argv: list[str]) -> None:
    url, chain_id, seed, issuer_key, *holder_keys = argv
    ledger = open_local_ledger(
        open_database(url), int(chain_id), block_max_transactions=BLOCK_MAX_TRANSACTIONS
    )
    issuer = Submitter(ledger, Account.from_hex(issuer_key))
    if ledger.query("token", "info", symbol=SYMBOL) is None:
        found_token(issuer)
    holders = [Submitter(ledger, Account.from_hex(key)) for key in holder_keys]
    economy = Economy(issuer, holders, random.Random(int(seed)))
    deadline = time.monotonic() + LIFETIME_SECONDS
    while time.monotonic() < deadline:
        receipts = ledger.submit_many(economy.round())
        sys.stdout.write("".join(f"{r.tx_hash} {r.block} {int(r.ok)}\n" for r in receipts))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
