"""csms: OCPP 2.1 EV charging needs and DER alarms

Revision ID: csms_0003
Revises: csms_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "csms_0003"
down_revision = "csms_0002"
branch_labels = None
depends_on = None


def _station_fk() -> sa.Column[str]:
    return sa.Column(
        "station_id",
        sa.String(48),
        sa.ForeignKey("csms_stations.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "csms_ev_charging_needs",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("evse_id", sa.Integer, nullable=False),
        sa.Column("transaction_id", sa.String(36)),
        sa.Column("requested_energy_transfer", sa.String(32), nullable=False),
        sa.Column("control_mode", sa.String(32)),
        sa.Column("departure_at", UtcDateTime),
        sa.Column("max_charge_w", sa.Float),
        sa.Column("max_discharge_w", sa.Float),
        sa.Column("needs", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("answer", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_csms_ev_needs_evse", "csms_ev_charging_needs", ["station_id", "evse_id", "id"]
    )
    op.create_table(
        "csms_der_alarms",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("control_type", sa.String(48), nullable=False),
        sa.Column("grid_event_fault", sa.String(48)),
        sa.Column("alarm_ended", sa.Boolean, nullable=False),
        sa.Column("timestamp", UtcDateTime, nullable=False),
        sa.Column("extra_info", sa.Text),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_csms_der_alarms_station", "csms_der_alarms", ["station_id", "id"])


def downgrade() -> None:
    op.drop_table("csms_der_alarms")
    op.drop_table("csms_ev_charging_needs")
