"""Storage: one SQLAlchemy engine, SQLite by default or PostgreSQL by URL, migrated by Alembic.

Every subsystem's table module is imported here, so `Base.metadata` always describes the whole
schema the migrations build.
"""

from evgi.storage import data_hosting
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
    "ChargingProfileRecord",
    "ChargingStore",
    "ChargingTransaction",
    "Connector",
    "IdToken",
    "MeterSample",
    "Reservation",
    "StateRow",
    "Station",
    "StoredMeterSample",
    "TransactionRow",
    "VariableRecord",
    "create_database_engine",
    "data_hosting",
    "migrate",
    "open_database",
]
