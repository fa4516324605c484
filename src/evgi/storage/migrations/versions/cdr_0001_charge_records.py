"""cdr: charge detail records and the Merkle batches that anchor them

Revision ID: cdr_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "cdr_0001"
down_revision = None
branch_labels = ("cdr",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cdr_batches",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("root", sa.String(66), nullable=False, unique=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("block", sa.BigInteger, nullable=True),
        sa.Column("chain_id", sa.BigInteger, nullable=True),
        sa.Column("anchored_at", UtcDateTime, nullable=True),
    )
    op.create_table(
        "cdr_records",
        sa.Column("session_id", sa.String(120), primary_key=True),
        sa.Column("digest", sa.String(66), nullable=False, unique=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("stop", UtcDateTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("saved_at", UtcDateTime, nullable=False),
        sa.Column(
            "batch_id",
            SerialKey,
            sa.ForeignKey("cdr_batches.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("leaf_index", sa.Integer, nullable=True),
    )
    op.create_index("ix_cdr_pending", "cdr_records", ["batch_id", "saved_at"])


def downgrade() -> None:
    op.drop_table("cdr_records")
    op.drop_table("cdr_batches")
