"""The SQLite store: schema and migrations, the writer's database side, the spool, stats."""

from ttamond.store.database import Database, is_transient
from ttamond.store.schema import SCHEMA_VERSION, migrate
from ttamond.store.spool import Spool
from ttamond.store.stats import StoreStats

__all__ = ["SCHEMA_VERSION", "Database", "Spool", "StoreStats", "is_transient", "migrate"]
