"""grid: IEEE 2030.5 devices, DER programs, controls, curves, device documents, responses,
mirrored meter readings, subscriptions and log events

Revision ID: grid_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "grid_0001"
down_revision = None
branch_labels = ("grid",)
depends_on = None


def _program_fk() -> sa.Column[int]:
    return sa.Column(
        "program_id",
        SerialKey,
        sa.ForeignKey("grid_programs.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "grid_devices",
        sa.Column("lfdi", sa.String(40), primary_key=True),
        sa.Column("sfdi", sa.BigInteger, nullable=False, unique=True),
        sa.Column("pin", sa.Integer, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("registered_at", UtcDateTime, nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.Column("last_seen", UtcDateTime, nullable=True),
    )
    op.create_table(
        "grid_programs",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("mrid", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.String(32), nullable=False),
        sa.Column("primacy", sa.SmallInteger, nullable=False),
        sa.Column("default_control", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "grid_controls",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _program_fk(),
        sa.Column("mrid", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.String(32), nullable=False),
        sa.Column("creation_time", UtcDateTime, nullable=False),
        sa.Column("start", UtcDateTime, nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=False),
        sa.Column("randomize_start_s", sa.Integer, nullable=True),
        sa.Column("randomize_duration_s", sa.Integer, nullable=True),
        sa.Column("base", sa.Text, nullable=False),
        sa.Column("cancelled_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_grid_controls_program", "grid_controls", ["program_id", "start"])
    op.create_table(
        "grid_curves",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _program_fk(),
        sa.Column("mrid", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.String(32), nullable=False),
        sa.Column("curve_type", sa.SmallInteger, nullable=False),
        sa.Column("creation_time", UtcDateTime, nullable=False),
        sa.Column("points", sa.Text, nullable=False),
        sa.Column("x_multiplier", sa.SmallInteger, nullable=False),
        sa.Column("y_multiplier", sa.SmallInteger, nullable=False),
        sa.Column("y_ref_type", sa.SmallInteger, nullable=False),
    )
    op.create_table(
        "grid_device_documents",
        sa.Column(
            "lfdi",
            sa.String(40),
            sa.ForeignKey("grid_devices.lfdi", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "grid_responses",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("lfdi", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(32), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_grid_responses_lfdi", "grid_responses", ["lfdi"])
    op.create_index("ix_grid_responses_subject", "grid_responses", ["subject", "id"])
    op.create_table(
        "grid_mirror_usage_points",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("lfdi", sa.String(40), nullable=False),
        sa.Column("mrid", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.String(32), nullable=False),
        sa.Column("role_flags", sa.String(4), nullable=False),
        sa.Column("service_kind", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_grid_mirror_usage_points_lfdi", "grid_mirror_usage_points", ["lfdi"])
    op.create_table(
        "grid_mirror_readings",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column(
            "usage_point_id",
            SerialKey,
            sa.ForeignKey("grid_mirror_usage_points.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("meter_reading", sa.String(32), nullable=False),
        sa.Column("description", sa.String(32), nullable=False),
        sa.Column("uom", sa.SmallInteger, nullable=True),
        sa.Column("power_of_ten", sa.SmallInteger, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index(
        "ix_grid_mirror_readings_point", "grid_mirror_readings", ["usage_point_id", "id"]
    )
    op.create_table(
        "grid_subscriptions",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("lfdi", sa.String(40), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("notification_uri", sa.String(400), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("limit", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_grid_subscriptions_lfdi", "grid_subscriptions", ["lfdi"])
    op.create_table(
        "grid_log_events",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        sa.Column("lfdi", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("function_set", sa.SmallInteger, nullable=False),
        sa.Column("code", sa.SmallInteger, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("pen", sa.BigInteger, nullable=False),
        sa.Column("profile_id", sa.SmallInteger, nullable=False),
        sa.Column("details", sa.String(32), nullable=True),
    )
    op.create_index("ix_grid_log_events_lfdi", "grid_log_events", ["lfdi"])


def downgrade() -> None:
    for table in (
        "grid_log_events",
        "grid_subscriptions",
        "grid_mirror_readings",
        "grid_mirror_usage_points",
        "grid_responses",
        "grid_device_documents",
        "grid_curves",
        "grid_controls",
        "grid_programs",
        "grid_devices",
    ):
        op.drop_table(table)
