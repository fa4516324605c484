"""pools: pool clients, root certificate pool and trust list, provisioning certificates,
signed contract data and the drivers' recorded consent

Revision ID: pools_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import UtcDateTime

revision = "pools_0001"
down_revision = None
branch_labels = ("pools",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pool_clients",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "pool_roots",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("trusted", sa.Boolean, nullable=False),
        sa.Column("added_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "pool_provisioning_certificates",
        sa.Column("pcid", sa.String(18), primary_key=True),
        sa.Column("oem", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(24), nullable=False),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "pool_contracts",
        sa.Column("pcid", sa.String(18), primary_key=True),
        sa.Column("emaid", sa.String(18), primary_key=True),
        sa.Column("emsp", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("signed_data", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "pool_consents",
        sa.Column("pcid", sa.String(18), primary_key=True),
        sa.Column("emaid", sa.String(18), nullable=False),
        sa.Column("driver", sa.String(128), nullable=False),
        sa.Column("consented_at", UtcDateTime, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "pool_consents",
        "pool_contracts",
        "pool_provisioning_certificates",
        "pool_roots",
        "pool_clients",
    ):
        op.drop_table(table)
