"""Storage, reached only through the `Store` and `SearchStore` Protocols so another backend (PostgreSQL) can
drop in; `open_store` opens the service's database.

>>> from frugalsense.store import SQLiteStore
>>> store = SQLiteStore(":memory:")
>>> tenant = store.create_tenant("acme")
>>> [c.name for c in store.list_collections(tenant.id)]
[]
"""

from __future__ import annotations

from frugalsense.settings import Settings
from frugalsense.store.base import (
    ApiKey,
    Collection,
    Correction,
    CorrectionKind,
    Erased,
    FaceRecord,
    FaceVectors,
    NewApiKey,
    NewFace,
    Person,
    Role,
    SearchStore,
    Store,
    Tenant,
)
from frugalsense.store.items import FaceLink, Filters, Item, NewItem, StoredVectors, WriteOutcome
from frugalsense.store.sqlite import DB_FILENAME, SQLiteStore, new_id
from frugalsense.store.sqlite_search import SQLiteSearchStore
from frugalsense.store.validation import Limits

__all__ = [
    "DB_FILENAME",
    "ApiKey",
    "Collection",
    "Correction",
    "CorrectionKind",
    "Erased",
    "FaceLink",
    "FaceRecord",
    "FaceVectors",
    "Filters",
    "Item",
    "Limits",
    "NewApiKey",
    "NewFace",
    "NewItem",
    "Person",
    "Role",
    "SQLiteSearchStore",
    "SQLiteStore",
    "SearchStore",
    "Store",
    "StoredVectors",
    "Tenant",
    "WriteOutcome",
    "new_id",
    "open_store",
]


def open_store(settings: Settings) -> Store:
    """The service's database as the settings describe it: PostgreSQL when ``database_url`` is a
    ``postgresql://`` address (the driver is imported only then), else SQLite in ``DATA_DIR/frugalsense.db``;
    close it when done."""
    if settings.database_url:
        from frugalsense.store.postgres_db import is_postgres_url

        if not is_postgres_url(settings.database_url):
            from frugalsense.errors import ConfigurationError

            raise ConfigurationError(
                f"database_url must start with postgresql://, got {settings.database_url.split(':')[0]!r}"
            )
        from frugalsense.store.postgres import PostgresStore

        return PostgresStore.open(settings)
    return SQLiteStore.open(settings)
