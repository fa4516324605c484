"""settlement: export payments of V2G sessions, one per session

Revision ID: settlement_0002
Revises: settlement_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import UtcDateTime

revision = "settlement_0002"
down_revision = "settlement_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_export_payments",
        sa.Column("session_id", sa.String(120), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("wallet", sa.String(64), nullable=False),
        sa.Column("driver_address", sa.String(42), nullable=False),
        sa.Column("payer", sa.String(42), nullable=False),
        sa.Column("export_wh", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("nonce", sa.BigInteger),
        sa.Column("sent_hashes", sa.Text, nullable=False),
        sa.Column("tx_hash", sa.String(66)),
        sa.Column("claimed_at", UtcDateTime, nullable=False),
        sa.Column("paid_at", UtcDateTime),
        sa.Column("note", sa.Text),
    )
    op.create_index(
        "ix_settlement_export_wallet", "settlement_export_payments", ["wallet", "claimed_at"]
    )
    op.create_index("ix_settlement_export_state", "settlement_export_payments", ["state"])


def downgrade() -> None:
    op.drop_table("settlement_export_payments")
