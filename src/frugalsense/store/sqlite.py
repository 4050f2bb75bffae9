"""The SQLite backend: one file, WAL, full fsync on commit, foreign keys on, deleted bytes overwritten.

One connection per store, guarded by a lock: the HTTP server calls in from worker threads, every call is short,
and one connection keeps ``PRAGMA data_version`` meaningful (it changes only for commits by other processes).
The tables are written by one class per idea (`_tenants.py`, `_collections.py`, `_faces.py`); `SQLiteStore`
joins them, and `sqlite_search.py` holds the search index's tables.

    >>> store = SQLiteStore(":memory:")
    >>> tenant = store.create_tenant("acme")
    >>> new = store.create_api_key(tenant.id, "ci")
    >>> new.key.startswith("fs_"), store.verify_api_key(new.key).tenant_id == tenant.id
    (True, True)
"""

from __future__ import annotations

from frugalsense.errors import ConfigurationError
from frugalsense.settings import Settings
from frugalsense.store._collections import CollectionTables
from frugalsense.store._faces import FaceTables
from frugalsense.store._tables import ERASE_CHUNK, new_id
from frugalsense.store._tenants import TenantTables
from frugalsense.store.sqlite_search import SQLiteSearchStore
from frugalsense.store.usage import UsageLedger
from frugalsense.store.validation import Limits

__all__ = ["DB_FILENAME", "ERASE_CHUNK", "SQLiteStore", "new_id"]

DB_FILENAME = "frugalsense.db"


class SQLiteStore(TenantTables, CollectionTables, FaceTables):
    """A `Store` in one SQLite file (``":memory:"`` for a throw-away one)."""

    @classmethod
    def open(cls, settings: Settings) -> SQLiteStore:
        """The service's database: ``DATA_DIR/frugalsense.db`` (folders created), with the settings' limits on
        what callers may store."""
        return cls(settings.data_dir / DB_FILENAME, limits=Limits.from_settings(settings))

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def face_version(self, tenant_id: str) -> int:
        row = self._rows("SELECT version FROM face_state WHERE tenant_id = ?", (tenant_id,))
        return int(row[0][0]) if row else 0

    def usage_ledger(self) -> UsageLedger:
        """The usage ledger on a connection of its own to this database file (close it when done)."""
        return UsageLedger(self.path)

    def search_store(self) -> SQLiteSearchStore:
        """The search tables of this database file on a connection of their own (close it when done), with
        this store's limits on what callers may store."""
        if self.path == ":memory:":
            raise ConfigurationError("the search index needs a database file, not ':memory:'")
        return SQLiteSearchStore(self.path, limits=self.limits)
