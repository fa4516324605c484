"""settlement: wallets and their id tokens, station tariffs, quotes and session escrows

Revision ID: settlement_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "settlement_0001"
down_revision = None
branch_labels = ("settlement",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_wallets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "settlement_wallet_tokens",
        sa.Column("id_token", sa.String(255), primary_key=True),
        sa.Column(
            "wallet",
            sa.String(64),
            sa.ForeignKey("settlement_wallets.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("linked_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_settlement_wallet_tokens_wallet", "settlement_wallet_tokens", ["wallet"])
    op.create_table(
        "settlement_station_tariffs",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("tariff", sa.Text, nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("payee", sa.String(42), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "settlement_quotes",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("tariff", sa.Text, nullable=False),
        sa.Column("tariff_digest", sa.String(66), nullable=False),
        sa.Column("estimate_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_index(
        "ix_settlement_quote_token", "settlement_quotes", ["id_token", "station_id", "id"]
    )
    op.create_table(
        "settlement_sessions",
        sa.Column("session_id", sa.String(120), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("payer", sa.String(42), nullable=False),
        sa.Column("payee", sa.String(42), nullable=False),
        sa.Column("escrow_id", sa.String(64), nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("hold_minor", sa.BigInteger, nullable=False),
        sa.Column("tariff", sa.Text, nullable=False),
        sa.Column("tariff_digest", sa.String(66), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("quote_id", sa.Integer, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.Column("cost_minor", sa.BigInteger, nullable=True),
        sa.Column("payee_minor", sa.BigInteger, nullable=True),
        sa.Column("fee_minor", sa.BigInteger, nullable=True),
        sa.Column("record_hash", sa.String(66), nullable=True),
        sa.Column("closed_at", UtcDateTime, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_settlement_session_state", "settlement_sessions", ["state", "opened_at"])
    op.create_index("ix_settlement_sessions_id_token", "settlement_sessions", ["id_token"])


def downgrade() -> None:
    op.drop_table("settlement_sessions")
    op.drop_table("settlement_quotes")
    op.drop_table("settlement_station_tariffs")
    op.drop_table("settlement_wallet_tokens")
    op.drop_table("settlement_wallets")
