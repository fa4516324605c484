"""The `local` engine: an append-only, hash-chained journal of signed transactions in the storage
database, cut into blocks and applied by the deterministic state machine.

A block, its transactions, their receipts and its state writes are one database transaction, so
a killed process loses nothing committed and leaves nothing half applied.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from evgi.core.canonical import parse_json
from evgi.core.clock import Clock, SystemClock, unix_seconds
from evgi.core.digest import from_hex, to_hex
from evgi.core.errors import ConfigError, NonceError, NotFoundError, ValidationError
from evgi.core.keys import Account
from evgi.core.merkle import merkle_proof, merkle_root
from evgi.ledger.audit import AuditReport, audit_history
from evgi.ledger.block import BlockHeader, Genesis, encoded_writes, writes_root
from evgi.ledger.proof import TransactionProof
from evgi.ledger.receipt import Receipt
from evgi.ledger.signature_checks import BlockChecks, SignatureChecks
from evgi.ledger.state import account_nonce, block_reads, execute_block, run_query
from evgi.ledger.transaction import SignedTransaction, Transaction
from evgi.storage.models import BLOCKS as _BLOCKS
from evgi.storage.models import STATE as _STATE
from evgi.storage.models import TRANSACTIONS as _TXS
from evgi.storage.rows import execute_many

_FETCH_CHUNK = 500  # keys per query, within every SQLite build's bound on parameters
_NULL = b"null"  # a deletion, as encoded_writes gives it


def has_genesis(db: Engine) -> bool:
    with db.connect() as conn:
        return (
            conn.execute(select(_BLOCKS.c.height).where(_BLOCKS.c.height == 0)).first() is not None
        )


class _CommittedState:
    """Read-through cache of committed state; only ever updated after a successful commit.

    A read that raced a commit must not be cached after it (its value may be the one the commit
    replaced): `generation` counts commits and clears, and a read is cached only if none came
    between its start and its end.
    """

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.cache: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.generation = 0

    def get(self, key: str) -> Any:
        try:
            return self.cache[key]
        except KeyError:
            pass
        generation = self.generation
        with self.db.connect() as conn:
            raw = conn.execute(select(_STATE.c.value).where(_STATE.c.key == key)).scalar()
        value = parse_json(raw) if raw is not None else None
        with self.lock:
            if self.generation == generation:
                self.cache[key] = value
        return value

    def fetch(self, keys: Iterable[str]) -> dict[str, Any]:
        """Committed values of the keys not cached, a few queries for all; absent ones are None."""
        missing = [key for key in keys if key not in self.cache]
        values: dict[str, Any] = dict.fromkeys(missing)
        if missing:
            with self.db.connect() as conn:
                for start in range(0, len(missing), _FETCH_CHUNK):
                    chunk = missing[start : start + _FETCH_CHUNK]
                    rows = conn.execute(
                        select(_STATE.c.key, _STATE.c.value).where(_STATE.c.key.in_(chunk))
                    )
                    values.update((key, parse_json(raw)) for key, raw in rows)
        return values

    def scan(self, prefix: str) -> dict[str, Any]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.db.connect() as conn:
            rows = conn.execute(
                select(_STATE.c.key, _STATE.c.value).where(
                    _STATE.c.key.like(escaped + "%", escape="\\")
                )
            ).all()
        return {k: parse_json(v) for k, v in rows}

    def update(self, writes: dict[str, Any]) -> None:
        with self.lock:
            self.cache.update(writes)
            self.generation += 1

    def clear(self) -> None:
        with self.lock:
            self.cache.clear()
            self.generation += 1


class _BlockReads:
    """Committed state as one block reads it: the keys fetched up front, others through the cache.

    Lives only while the block executes (under the write lock), so what it holds cannot go stale.
    """

    def __init__(self, state: _CommittedState, fetched: dict[str, Any]) -> None:
        self.state = state
        self.fetched = fetched

    def get(self, key: str) -> Any:
        try:
            return self.fetched[key]
        except KeyError:
            return self.state.get(key)

    def scan(self, prefix: str) -> dict[str, Any]:
        return self.state.scan(prefix)


class LocalLedger:
    """The embedded ledger engine (see `evgi.ledger.engine.Ledger` for the contract)."""

    engine_name = "local"

    def __init__(
        self,
        db: Engine,
        chain_id: int,
        trust_anchors: Sequence[str] = (),
        clock: Clock | None = None,
        block_max_transactions: int = 2000,
    ) -> None:
        self._db = db
        self.chain_id = chain_id
        self._clock = clock or SystemClock()
        self._max = block_max_transactions
        self._state = _CommittedState(db)
        self._write_lock = threading.Lock()
        self._checks = SignatureChecks()
        self._head = self._load_or_create_genesis(trust_anchors)

    # -- genesis and head -----------------------------------------------------------------

    def _load_or_create_genesis(self, trust_anchors: Sequence[str]) -> BlockHeader:
        with self._db.connect() as conn:
            row = conn.execute(select(_BLOCKS).where(_BLOCKS.c.height == 0)).first()
        if row is not None:
            genesis = Genesis.decode(row.extra)
            if genesis.chain_id != self.chain_id:
                raise ConfigError(
                    f"this database holds chain {genesis.chain_id}, not {self.chain_id}"
                )
            return self._read_head()
        if not trust_anchors:
            raise ConfigError("a new ledger needs at least one trust anchor for its genesis block")
        genesis = Genesis(
            self.chain_id, tuple(sorted(set(trust_anchors))), unix_seconds(self._clock.now())
        )
        header = genesis.header()
        try:
            with self._db.begin() as conn:
                conn.execute(insert(_BLOCKS), [self._block_row(header)])
                self._write_state(conn, encoded_writes(genesis.writes()), 0)
        except sa_exc.IntegrityError:  # another process wrote genesis first
            return self._read_head()
        return header

    def _read_head(self) -> BlockHeader:
        with self._db.connect() as conn:
            row = conn.execute(select(_BLOCKS).order_by(_BLOCKS.c.height.desc()).limit(1)).first()
        if row is None:
            raise NotFoundError("the ledger has no genesis block")
        return BlockHeader.from_row(row)

    def genesis(self) -> Genesis:
        return Genesis.decode(self.block(0).extra)

    def head(self) -> BlockHeader:
        self._sync()
        return self._head

    def _sync(self) -> None:
        """Catch up with blocks another process committed, so reads are never stale."""
        if self._read_head_height() != self._head.height:
            with self._write_lock:
                self._state.clear()
                self._head = self._read_head()

    def block(self, height: int) -> BlockHeader:
        with self._db.connect() as conn:
            row = conn.execute(select(_BLOCKS).where(_BLOCKS.c.height == height)).first()
        if row is None:
            raise NotFoundError(f"no block {height}")
        return BlockHeader.from_row(row)

    def blocks(self, start: int = 0, limit: int = 100) -> list[BlockHeader]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(_BLOCKS)
                .where(_BLOCKS.c.height >= start)
                .order_by(_BLOCKS.c.height)
                .limit(limit)
            ).all()
        return [BlockHeader.from_row(r) for r in rows]

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        self._sync()
        return self._state.get(key)

    def scan(self, prefix: str) -> dict[str, Any]:
        self._sync()
        return self._state.scan(prefix)

    def query(self, module: str, name: str, **args: Any) -> Any:
        self._sync()
        return run_query(self._state, module, name, args)

    def nonce(self, address: str) -> int:
        self._sync()
        return account_nonce(self._state, address)

    def _tx_row(self, tx_hash: str) -> Any:
        with self._db.connect() as conn:
            row = conn.execute(select(_TXS).where(_TXS.c.hash == tx_hash.lower())).first()
        if row is None:
            raise NotFoundError(f"no transaction {tx_hash}")
        return row

    def transaction(self, tx_hash: str) -> tuple[SignedTransaction, Receipt]:
        row = self._tx_row(tx_hash)
        stx = SignedTransaction.from_encoded(row.body.encode(), from_hex(row.signature))
        return stx, Receipt.from_row(row)

    def receipt(self, tx_hash: str) -> Receipt:
        return Receipt.from_row(self._tx_row(tx_hash))

    def pending(self, tx_hash: str) -> bool:
        """Never: a transaction is committed in its block or was not taken at all."""
        return False

    def block_transactions(self, height: int) -> list[tuple[SignedTransaction, Receipt]]:
        with self._db.connect() as conn:
            rows = conn.execute(
                select(_TXS).where(_TXS.c.block_height == height).order_by(_TXS.c.position)
            ).all()
        return [
            (
                SignedTransaction.from_encoded(r.body.encode(), from_hex(r.signature)),
                Receipt.from_row(r),
            )
            for r in rows
        ]

    def proof(self, tx_hash: str) -> TransactionProof:
        row = self._tx_row(tx_hash)
        with self._db.connect() as conn:
            hashes = (
                conn.execute(
                    select(_TXS.c.hash)
                    .where(_TXS.c.block_height == row.block_height)
                    .order_by(_TXS.c.position)
                )
                .scalars()
                .all()
            )
        header = self.block(row.block_height)
        return TransactionProof(header, merkle_proof([from_hex(h) for h in hashes], row.position))

    # -- writes ----------------------------------------------------------------------------

    def sign(self, tx: Transaction, account: Account) -> SignedTransaction:
        stx = tx.sign(account)
        self._checks.signed(stx)
        return stx

    def submit(self, stx: SignedTransaction) -> Receipt:
        return self.submit_many([stx])[0]

    def submit_many(self, transactions: Sequence[SignedTransaction]) -> list[Receipt]:
        """Verify, apply and commit transactions; each block holds at most the configured count.

        Each block is all or nothing: a bad signature, a wrong chain or a replayed nonce refuses
        its block (blocks before it stay committed); a method that fails is committed as a failed
        receipt.
        """
        receipts: list[Receipt] = []
        for start in range(0, len(transactions), self._max):
            receipts.extend(self._commit_block(transactions[start : start + self._max]))
        return receipts

    def _commit_block(self, transactions: Sequence[SignedTransaction]) -> list[Receipt]:
        checks = self._checks.block(transactions)
        try:
            return self._execute_and_write(transactions, checks)
        finally:
            checks.cancel()

    def _execute_and_write(
        self, transactions: Sequence[SignedTransaction], checks: BlockChecks
    ) -> list[Receipt]:
        with self._write_lock:
            for _attempt in range(3):
                latest = self._read_head_height()
                if latest != self._head.height:  # another process extended the chain
                    self._state.clear()
                    self._head = self._read_head()
                height = self._head.height + 1
                timestamp = max(self._head.timestamp, unix_seconds(self._clock.now()))
                reads = _BlockReads(self._state, self._state.fetch(block_reads(transactions)))
                execution = execute_block(reads, transactions, height, timestamp, self.chain_id)
                encoded = encoded_writes(execution.writes)
                header = BlockHeader(
                    height=height,
                    prev_hash=self._head.compute_hash(),
                    timestamp=timestamp,
                    tx_root=to_hex(merkle_root([stx.hash for stx in transactions])),
                    receipts_root=to_hex(merkle_root([r.commitment() for r in execution.receipts])),
                    writes_root=writes_root(encoded),
                    tx_count=len(transactions),
                )
                try:
                    with self._db.begin() as conn:
                        conn.execute(insert(_BLOCKS), [self._block_row(header)])
                        execute_many(
                            conn,
                            _INSERT_TXS,
                            [
                                _tx_row(stx, receipt)
                                for stx, receipt in zip(
                                    transactions, execution.receipts, strict=True
                                )
                            ],
                        )
                        self._write_state(conn, encoded, height)
                        # A bad signature refuses the block before it commits; checking went on
                        # while the block executed and its rows were written.
                        checks.wait()
                except sa_exc.IntegrityError as exc:
                    if "uq_ledger_tx_sender_nonce" in str(exc) or "ledger_transactions" in str(exc):
                        self._state.clear()
                        raise NonceError(
                            "replay rejected: a transaction with this sender and nonce is "
                            "already committed"
                        ) from exc
                    continue  # lost a race for this height: re-read the head and retry
                self._state.update(execution.writes)
                self._head = header
                return execution.receipts
            raise ValidationError("could not commit a block after three attempts (busy ledger)")

    def _read_head_height(self) -> int:
        with self._db.connect() as conn:
            return int(conn.execute(select(func.max(_BLOCKS.c.height))).scalar_one())

    @staticmethod
    def _block_row(header: BlockHeader) -> dict[str, Any]:
        return {
            "height": header.height,
            "hash": header.compute_hash(),
            "prev_hash": header.prev_hash,
            "timestamp": header.timestamp,
            "tx_root": header.tx_root,
            "receipts_root": header.receipts_root,
            "writes_root": header.writes_root,
            "tx_count": header.tx_count,
            "extra": header.extra,
        }

    def _write_state(self, conn: Any, encoded: dict[str, bytes], height: int) -> None:
        """Keep the block's writes (`encoded_writes`): the bytes its writes root covers."""
        rows = [
            {"key": k, "value": v.decode(), "block_height": height}
            for k, v in encoded.items()
            if v != _NULL
        ]
        deleted = [k for k, v in encoded.items() if v == _NULL]
        if rows:
            execute_many(conn, _UPSERT_STATE[conn.dialect.name], rows)
        if deleted:
            conn.execute(delete(_STATE).where(_STATE.c.key.in_(deleted)))

    # -- verification ----------------------------------------------------------------------

    def verify(self, progress: Callable[[int, int], None] | None = None) -> AuditReport:
        return audit_history(self._db, progress)

    def iter_blocks(self) -> Iterator[BlockHeader]:
        start = 0
        while batch := self.blocks(start, 500):
            yield from batch
            start = batch[-1].height + 1

    def close(self) -> None:
        self._checks.close()


def _upsert_state(dialect: Any) -> Any:
    statement = dialect.insert(_STATE)
    return statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "value": statement.excluded.value,
            "block_height": statement.excluded.block_height,
        },
    )


_INSERT_TXS = insert(_TXS)
_UPSERT_STATE = {"sqlite": _upsert_state(sqlite), "postgresql": _upsert_state(postgresql)}


def _tx_row(stx: SignedTransaction, receipt: Receipt) -> dict[str, Any]:
    return {
        "hash": stx.hash_hex,
        "block_height": receipt.block,
        "position": receipt.position,
        "sender": stx.tx.sender,
        "nonce": stx.tx.nonce,
        "body": stx.encoded.decode(),
        "signature": to_hex(stx.signature),
        "status": 1 if receipt.ok else 0,
        "result": receipt.encoded_result.decode(),
        "error": receipt.error,
        "logs": receipt.encoded_logs.decode(),
    }
