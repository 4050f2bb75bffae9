"""Storage, reached only through the `Store` Protocol so another backend (PostgreSQL) can drop in.

>>> from frugalsense.store import SQLiteStore
>>> store = SQLiteStore(":memory:")
>>> tenant = store.create_tenant("acme")
>>> [c.name for c in store.list_collections(tenant.id)]
[]
"""

from __future__ import annotations

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
    Store,
    Tenant,
)
from frugalsense.store.sqlite import DB_FILENAME, SQLiteStore, new_id
from frugalsense.store.validation import Limits

__all__ = [
    "DB_FILENAME",
    "ApiKey",
    "Collection",
    "Correction",
    "CorrectionKind",
    "Erased",
    "FaceRecord",
    "FaceVectors",
    "Limits",
    "NewApiKey",
    "NewFace",
    "Person",
    "Role",
    "SQLiteStore",
    "Store",
    "Tenant",
    "new_id",
]
