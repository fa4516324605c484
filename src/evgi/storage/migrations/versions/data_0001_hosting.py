"""data: containers, records, archived stream segments, delivered certificates, access log

Revision ID: data_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "data_0001"
down_revision = None
branch_labels = ("data",)
depends_on = None


def _container_fk() -> sa.Column[str]:
    return sa.Column(
        "container_id",
        sa.String(64),
        sa.ForeignKey("data_containers.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "data_containers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("host", sa.String(42), nullable=False),
        sa.Column("data_type", sa.String(64), nullable=False),
        sa.Column("schema", sa.String(200), nullable=False),
        sa.Column("uri", sa.String(400), nullable=False),
        sa.Column("dbc", sa.String(66), nullable=False),
        sa.Column("retention_s", sa.Integer, nullable=True),
        sa.Column("nearline_s", sa.Integer, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_data_containers_owner", "data_containers", ["owner"])
    op.create_table(
        "data_records",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _container_fk(),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("registration", sa.String(66), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("container_id", "seq", name="uq_data_record_seq"),
    )
    op.create_table(
        "data_archives",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _container_fk(),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_at", UtcDateTime, nullable=False),
        sa.Column("last_at", UtcDateTime, nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("blob", sa.LargeBinary, nullable=True),
        sa.Column("path", sa.String(400), nullable=True),
        sa.Column("moved_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_data_archive_container", "data_archives", ["container_id", "first_seq"])
    op.create_table(
        "data_certificates",
        sa.Column("hash", sa.String(66), primary_key=True),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("issuer", sa.String(42), nullable=False),
        sa.Column("subject", sa.String(42), nullable=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "data_access_log",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("container_id", sa.String(64), nullable=False),
        sa.Column("accessor", sa.String(42), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("via", sa.String(80), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("records", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_data_access_owner", "data_access_log", ["owner", "id"])
    op.create_index("ix_data_access_at", "data_access_log", ["at_us"])


def downgrade() -> None:
    op.drop_table("data_access_log")
    op.drop_table("data_certificates")
    op.drop_table("data_archives")
    op.drop_table("data_records")
    op.drop_table("data_containers")
