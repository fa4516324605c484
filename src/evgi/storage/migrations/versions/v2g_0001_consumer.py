"""v2g: discharge programs, driver consents, agreement-to-discharge decisions

Revision ID: v2g_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "v2g_0001"
down_revision = None
branch_labels = ("v2g",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "v2g_programs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(16), nullable=False),
        sa.Column("operator_id", sa.String(100), nullable=False),
        sa.Column("executed_by", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("max_discharge_w", sa.BigInteger, nullable=False),
        sa.Column("evse_ids", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "v2g_consents",
        sa.Column("vehicle", sa.String(64), primary_key=True),
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("driver", sa.String(100), nullable=False),
        sa.Column("min_soc_percent", sa.Integer, nullable=False),
        sa.Column("departure_at", UtcDateTime, nullable=False),
        sa.Column("departure_energy_wh", sa.BigInteger, nullable=False),
        sa.Column("energy_transfer", sa.Text, nullable=False),
        sa.Column("given_at", UtcDateTime, nullable=False),
        sa.Column("opted_out_at", UtcDateTime, nullable=True),
        sa.Column("sep2_status", sa.Integer, nullable=False),
        sa.Column("allowed_energy_transfer", sa.Text, nullable=False),
    )
    op.create_table(
        "v2g_decisions",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("vehicle", sa.String(64), nullable=False),
        sa.Column("evse_id", sa.String(64), nullable=False),
        sa.Column("decided_at", UtcDateTime, nullable=False),
        sa.Column("agreed", sa.Integer, nullable=False),
        sa.Column("refusals", sa.Text, nullable=False),
    )
    op.create_index("ix_v2g_decisions_vehicle", "v2g_decisions", ["vehicle", "id"])


def downgrade() -> None:
    op.drop_index("ix_v2g_decisions_vehicle", "v2g_decisions")
    op.drop_table("v2g_decisions")
    op.drop_table("v2g_consents")
    op.drop_table("v2g_programs")
