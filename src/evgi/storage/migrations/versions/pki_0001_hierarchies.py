"""pki: ISO 15118 certificate authorities, issued certificates and revocations, contracts

Revision ID: pki_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import UtcDateTime

revision = "pki_0001"
down_revision = None
branch_labels = ("pki",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pki_authorities",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("branch", sa.String(8), nullable=False),
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("key_algorithm", sa.String(16), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "pki_certificates",
        sa.Column("issuer", sa.String(64), primary_key=True),
        sa.Column("serial", sa.String(42), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("common_name", sa.String(64), nullable=False),
        sa.Column("not_after", UtcDateTime, nullable=False),
        sa.Column("issued_at", UtcDateTime, nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("revoked_at", UtcDateTime, nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_pki_certificates_role_cn", "pki_certificates", ["role", "common_name"])
    op.create_table(
        "pki_contracts",
        sa.Column("emaid", sa.String(18), primary_key=True),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pki_contracts")
    op.drop_table("pki_certificates")
    op.drop_table("pki_authorities")
