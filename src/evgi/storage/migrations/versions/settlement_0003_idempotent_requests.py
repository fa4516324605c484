"""settlement: idempotency keys of wallet top-ups and withdrawals, with their answers

Revision ID: settlement_0003
Revises: settlement_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import UtcDateTime

revision = "settlement_0003"
down_revision = "settlement_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_idempotent_requests",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("wallet", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("body_digest", sa.String(66), nullable=False),
        sa.Column("claimed_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.SmallInteger),
        sa.Column("answer", sa.Text),
        sa.Column("answered_at", UtcDateTime),
    )


def downgrade() -> None:
    op.drop_table("settlement_idempotent_requests")
