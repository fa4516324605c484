"""ledger journal: blocks, transactions with receipts, state

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_blocks",
        sa.Column("height", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(66), nullable=False, unique=True),
        sa.Column("prev_hash", sa.String(66), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("tx_root", sa.String(66), nullable=False),
        sa.Column("receipts_root", sa.String(66), nullable=False),
        sa.Column("writes_root", sa.String(66), nullable=False),
        sa.Column("tx_count", sa.Integer, nullable=False),
        sa.Column("extra", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("hash", sa.String(66), primary_key=True),
        sa.Column("block_height", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("logs", sa.Text, nullable=False),
        sa.UniqueConstraint("sender", "nonce", name="uq_ledger_tx_sender_nonce"),
    )
    op.create_index("ix_ledger_tx_block", "ledger_transactions", ["block_height", "position"])
    op.create_table(
        "ledger_state",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("block_height", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_state")
    op.drop_index("ix_ledger_tx_block", "ledger_transactions")
    op.drop_table("ledger_transactions")
    op.drop_table("ledger_blocks")
