"""Storage: one SQLAlchemy engine, SQLite by default or PostgreSQL by URL, migrated by Alembic.

Every subsystem's table module is imported here, so `Base.metadata` always describes the whole
schema the migrations build.
"""

from evgi.storage import (
    bidirectional,
    data_hosting,
    export_payment,
    grid,
    idempotency,
    pki,
    pools,
    settlement,
    v2g,
)
from evgi.storage.charge_records import CdrBatch, CdrConflict, CdrStore, StoredCdr
from evgi.storage.charging import (
    ChargingProfileRecord,
    ChargingStore,
    ChargingTransaction,
    Connector,
    IdToken,
    MeterSample,
    Reservation,
    Station,
    StoredMeterSample,
    VariableRecord,
)
from evgi.storage.database import create_database_engine, migrate, open_database
from evgi.storage.models import (
    BLOCKS,
    STATE,
    TRANSACTIONS,
    Base,
    BlockRow,
    StateRow,
    TransactionRow,
)

__all__ = [
    "BLOCKS",
    "STATE",
    "TRANSACTIONS",
    "Base",
    "BlockRow",
    "CdrBatch",
    "CdrConflict",
    "CdrStore",
    "ChargingProfileRecord",
    "ChargingStore",
    "ChargingTransaction",
    "Connector",
    "IdToken",
    "MeterSample",
    "Reservation",
    "StateRow",
    "Station",
    "StoredCdr",
    "StoredMeterSample",
    "TransactionRow",
    "VariableRecord",
    "bidirectional",
    "create_database_engine",
    "data_hosting",
    "export_payment",
    "grid",
    "idempotency",
    "migrate",
    "open_database",
    "pki",
    "pools",
    "settlement",
    "v2g",
]
