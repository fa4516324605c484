"""csms: index transactions by id token and state, looked up on every transaction start

Revision ID: csms_0002
Revises: csms_0001
"""

from __future__ import annotations

from alembic import op

revision = "csms_0002"
down_revision = "csms_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_csms_tx_token_state", "csms_transactions", ["id_token", "state"])


def downgrade() -> None:
    op.drop_index("ix_csms_tx_token_state", "csms_transactions")
