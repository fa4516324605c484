"""csms: stations, EVSEs, connectors, id tokens, transactions, meter values and station reports

Revision ID: csms_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evgi.storage.models import SerialKey, UtcDateTime

revision = "csms_0001"
down_revision = None
branch_labels = ("csms",)
depends_on = None


def _station_fk(primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(
        "station_id",
        sa.String(48),
        sa.ForeignKey("csms_stations.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "csms_stations",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("ocpp_version", sa.String(16)),
        sa.Column("vendor", sa.String(50)),
        sa.Column("model", sa.String(50)),
        sa.Column("serial_number", sa.String(50)),
        sa.Column("firmware_version", sa.String(50)),
        sa.Column("boot_status", sa.String(16), nullable=False),
        sa.Column("boot_reason", sa.String(40)),
        sa.Column("password_hash", sa.Text),
        sa.Column("security_profile", sa.SmallInteger, nullable=False),
        sa.Column("registered_at", UtcDateTime, nullable=False),
        sa.Column("last_boot_at", UtcDateTime),
        sa.Column("last_seen", UtcDateTime),
        sa.Column("connected", sa.Boolean, nullable=False),
    )
    op.create_table(
        "csms_evses",
        _station_fk(primary_key=True),
        sa.Column("evse_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("operational_status", sa.String(16), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_connectors",
        _station_fk(primary_key=True),
        sa.Column("evse_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("connector_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(50)),
        sa.Column("info", sa.String(50)),
        sa.Column("vendor_error_code", sa.String(255)),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_id_tokens",
        sa.Column("token", sa.String(255), primary_key=True),
        sa.Column("token_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expires_at", UtcDateTime),
        sa.Column("group_id", sa.String(255)),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_local_lists",
        _station_fk(primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_local_list_entries",
        _station_fk(primary_key=True),
        sa.Column("token", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "csms_transactions",
        sa.Column("number", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("evse_id", sa.Integer),
        sa.Column("connector_id", sa.Integer),
        sa.Column("id_token", sa.String(255)),
        sa.Column("group_id", sa.String(255)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("charging_state", sa.String(32)),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("stopped_at", UtcDateTime),
        sa.Column("meter_start_wh", sa.BigInteger),
        sa.Column("meter_stop_wh", sa.BigInteger),
        sa.Column("stop_reason", sa.String(40)),
        sa.Column("stop_id_token", sa.String(255)),
        sa.Column("last_seq_no", sa.Integer),
        sa.Column("missing_seq_nos", sa.Text, nullable=False),
        sa.Column("offline_messages", sa.Integer, nullable=False),
        sa.Column("remote_start_id", sa.Integer),
        sa.Column("reservation_id", sa.Integer),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("station_id", "transaction_id", name="uq_csms_tx_station_id"),
    )
    op.create_index("ix_csms_tx_state", "csms_transactions", ["station_id", "state"])
    op.create_table(
        "csms_meter_values",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column(
            "transaction_number",
            SerialKey,
            sa.ForeignKey("csms_transactions.number", ondelete="CASCADE"),
        ),
        sa.Column("evse_id", sa.Integer, nullable=False),
        sa.Column("timestamp", UtcDateTime, nullable=False),
        sa.Column("measurand", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(8)),
        sa.Column("unit", sa.String(20)),
        sa.Column("multiplier", sa.SmallInteger, nullable=False),
        sa.Column("context", sa.String(32)),
        sa.Column("location", sa.String(16)),
        sa.Column("value", sa.Float),
        sa.Column("signed", sa.Text),
    )
    op.create_index("ix_csms_mv_tx", "csms_meter_values", ["transaction_number", "timestamp"])
    op.create_index("ix_csms_mv_station", "csms_meter_values", ["station_id", "timestamp"])
    op.create_table(
        "csms_charging_profiles",
        _station_fk(primary_key=True),
        sa.Column("profile_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("evse_id", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(48), nullable=False),
        sa.Column("stack_level", sa.Integer, nullable=False),
        sa.Column("transaction_id", sa.String(36)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("installed_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_reservations",
        _station_fk(primary_key=True),
        sa.Column("reservation_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("evse_id", sa.Integer),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_firmware_log_status",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_id", sa.Integer),
        sa.Column("status", sa.String(48), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_security_events",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("timestamp", UtcDateTime, nullable=False),
        sa.Column("tech_info", sa.Text),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_data_transfers",
        sa.Column("id", SerialKey, primary_key=True, autoincrement=True),
        _station_fk(),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("vendor_id", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(50)),
        sa.Column("data", sa.Text),
        sa.Column("status", sa.String(32)),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "csms_variables",
        _station_fk(primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("component", sa.String(50), nullable=False),
        sa.Column("component_instance", sa.String(50)),
        sa.Column("evse_id", sa.Integer),
        sa.Column("connector_id", sa.Integer),
        sa.Column("variable", sa.String(50), nullable=False),
        sa.Column("variable_instance", sa.String(50)),
        sa.Column("attribute_type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("mutability", sa.String(16)),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "csms_variables",
        "csms_data_transfers",
        "csms_security_events",
        "csms_firmware_log_status",
        "csms_reservations",
        "csms_charging_profiles",
        "csms_meter_values",
        "csms_transactions",
        "csms_local_list_entries",
        "csms_local_lists",
        "csms_id_tokens",
        "csms_connectors",
        "csms_evses",
        "csms_stations",
    ):
        op.drop_table(table)
