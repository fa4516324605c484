"""pki: index certificates by revocation time, counted whenever a relying party asks whether
anything was revoked since it last looked

Revision ID: pki_0002
Revises: pki_0001
"""

from __future__ import annotations

from alembic import op

revision = "pki_0002"
down_revision = "pki_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pki_certificates_revoked_at", "pki_certificates", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_pki_certificates_revoked_at", "pki_certificates")
