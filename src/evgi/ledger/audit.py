"""Re-verification of the whole history: every link, root and signature, and the state re-derived
from genesis and compared with the stored state, naming the first bad block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Select, exists, func, or_, select

from evgi.core.canonical import parse_json
from evgi.core.digest import from_hex, to_hex
from evgi.core.errors import EvgiError
from evgi.core.merkle import merkle_root
from evgi.ledger.block import BlockHeader, Genesis, encoded_writes, writes_root
from evgi.ledger.receipt import Receipt
from evgi.ledger.state import DictState, execute_block
from evgi.ledger.transaction import SignedTransaction
from evgi.storage.models import BLOCKS as _BLOCKS
from evgi.storage.models import STATE as _STATE
from evgi.storage.models import TRANSACTIONS as _TXS

_PAGE = 200


@dataclass
class AuditReport:
    ok: bool
    blocks: int = 0
    transactions: int = 0
    state_keys: int = 0
    bad_block: int | None = None
    problem: str = ""
    head_hash: str = ""
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blocks": self.blocks,
            "transactions": self.transactions,
            "state_keys": self.state_keys,
            "bad_block": self.bad_block,
            "problem": self.problem,
            "head_hash": self.head_hash,
        }


class _Bad(Exception):
    def __init__(self, height: int, problem: str) -> None:
        super().__init__(problem)
        self.height = height
        self.problem = problem


def _pages(db: Engine) -> Iterator[tuple[Any, list[Any]]]:
    start = 0
    while True:
        with db.connect() as conn:
            blocks = conn.execute(
                select(_BLOCKS)
                .where(_BLOCKS.c.height >= start)
                .order_by(_BLOCKS.c.height)
                .limit(_PAGE)
            ).all()
            if not blocks:
                orphan = conn.execute(_orphan_height(start)).scalar()
                if orphan is not None:
                    raise _orphaned(orphan)
                return
            last = blocks[-1].height
            txs = conn.execute(
                select(_TXS)
                .where(_TXS.c.block_height.between(start, last))
                .order_by(_TXS.c.block_height, _TXS.c.position)
            ).all()
        by_block: dict[int, list[Any]] = {}
        for tx in txs:
            by_block.setdefault(tx.block_height, []).append(tx)
        for block in blocks:
            yield block, by_block.pop(block.height, [])
        if by_block:  # transactions pointing at heights that have no block row
            raise _orphaned(min(by_block))
        start = last + 1


def _orphan_height(start: int) -> Select[Any]:
    """Lowest height past the last block (or below genesis) that transaction rows claim.

    The pages only read transactions of the heights they hold, so without this a row placed
    beyond the head would never be seen. One statement, so a block committed meanwhile is not
    taken for an orphan.
    """
    has_block = exists().where(_BLOCKS.c.height == _TXS.c.block_height)
    return select(func.min(_TXS.c.block_height)).where(
        or_(_TXS.c.block_height >= start, _TXS.c.block_height < 0), ~has_block
    )


def _orphaned(height: int) -> _Bad:
    return _Bad(height, f"transactions reference block {height}, which does not exist")


def _check_block(
    row: Any, txs: list[Any], prev: BlockHeader | None, state: DictState, chain_id: int
) -> BlockHeader:
    header = BlockHeader.from_row(row)
    h = row.height
    if header.compute_hash() != row.hash:
        raise _Bad(h, f"block {h}: header does not hash to its stored hash")
    if prev is None:
        if h != 0:
            raise _Bad(h, "history does not start with a genesis block")
    else:
        if h != prev.height + 1:
            raise _Bad(h, f"block {h} follows block {prev.height}: heights are not contiguous")
        if header.prev_hash != prev.compute_hash():
            raise _Bad(h, f"block {h}: prev_hash does not link to block {prev.height}")
        if header.timestamp < prev.timestamp:
            raise _Bad(h, f"block {h}: timestamp runs backwards")
    if len(txs) != header.tx_count:
        raise _Bad(h, f"block {h}: holds {len(txs)} transactions, header says {header.tx_count}")
    if h == 0:
        writes = Genesis.decode(header.extra).writes()
        if header.writes_root != writes_root(encoded_writes(writes)):
            raise _Bad(0, "genesis block: state writes do not match its root")
        state.apply(writes, 0)
        return header
    signed: list[SignedTransaction] = []
    for position, tx in enumerate(txs):
        if tx.position != position:
            raise _Bad(h, f"block {h}: transaction positions are not contiguous")
        try:
            stx = SignedTransaction.from_encoded(tx.body.encode(), from_hex(tx.signature))
            stx.check_signature()
        except EvgiError as exc:
            raise _Bad(h, f"block {h}, transaction {tx.hash}: {exc.message}") from exc
        if stx.hash_hex != tx.hash or stx.tx.sender != tx.sender or stx.tx.nonce != tx.nonce:
            raise _Bad(
                h,
                f"block {h}, transaction {tx.hash}: stored hash, sender or nonce "
                "do not match the signed body",
            )
        signed.append(stx)
    if to_hex(merkle_root([s.hash for s in signed])) != header.tx_root:
        raise _Bad(h, f"block {h}: transactions do not match the tx root")
    try:
        execution = execute_block(state, signed, h, header.timestamp, chain_id)
    except EvgiError as exc:
        raise _Bad(h, f"block {h}: re-execution failed: {exc.message}") from exc
    for tx, receipt in zip(txs, execution.receipts, strict=True):
        try:
            stored = Receipt.from_row(tx)
        except EvgiError as exc:
            raise _Bad(h, f"block {h}, transaction {tx.hash}: {exc.message}") from exc
        if stored != receipt:
            raise _Bad(
                h, f"block {h}, transaction {tx.hash}: stored receipt differs from re-execution"
            )
    if to_hex(merkle_root([r.commitment() for r in execution.receipts])) != header.receipts_root:
        raise _Bad(h, f"block {h}: receipts do not match the receipts root")
    if writes_root(encoded_writes(execution.writes)) != header.writes_root:
        raise _Bad(h, f"block {h}: re-derived state writes do not match the writes root")
    state.apply(execution.writes, h)
    return header


def _compare_state(db: Engine, state: DictState) -> tuple[int, _Bad | None]:
    with db.connect() as conn:
        rows = conn.execute(select(_STATE.c.key, _STATE.c.value, _STATE.c.block_height)).all()
    stored_keys = set()
    first: _Bad | None = None

    def note(height: int, problem: str) -> None:
        nonlocal first
        if first is None or height < first.height:
            first = _Bad(height, problem)

    for key, raw, height in rows:
        stored_keys.add(key)
        expected = state.values.get(key)
        if expected is None:
            note(height, f"block {height}: state row {key!r} exists but history never wrote it")
            continue
        written = state.written_at[key]
        try:
            value = parse_json(raw)
        except EvgiError:
            value = object()
        if value != expected:
            note(written, f"block {written}: state row {key!r} differs from the re-derived value")
        elif height != written:
            note(written, f"block {written}: state row {key!r} claims block {height}")
    for key in state.values.keys() - stored_keys:
        written = state.written_at[key]
        note(written, f"block {written}: state row {key!r} is missing")
    return len(rows), first


def audit_history(db: Engine, progress: Callable[[int, int], None] | None = None) -> AuditReport:
    with db.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(_BLOCKS)).scalar_one())
    report = AuditReport(ok=True)
    state = DictState()
    prev: BlockHeader | None = None
    chain_id = 0
    try:
        for row, txs in _pages(db):
            if prev is None and row.height == 0:
                chain_id = Genesis.decode(row.extra).chain_id
            prev = _check_block(row, txs, prev, state, chain_id)
            report.blocks += 1
            report.transactions += len(txs)
            if progress is not None:
                progress(report.blocks, total)
        if prev is None:
            raise _Bad(0, "the ledger has no blocks")
        report.head_hash = prev.compute_hash()
        report.state_keys, bad = _compare_state(db, state)
        if bad is not None:
            raise bad
    except _Bad as bad:
        report.ok = False
        report.bad_block = bad.height
        report.problem = bad.problem
    return report
