"""What the SQLite table classes share: ids, timestamps, the filters that hide a collection being erased, and
the ownership check every write starts with.

    >>> new_id("per").startswith("per_"), len(new_id("item", 16))
    (True, 21)
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from frugalsense.errors import NotFoundError
from frugalsense.store._database import Database

__all__ = [
    "ALPHABET",
    "ERASE_CHUNK",
    "LIVE_COLLECTION",
    "LIVE_FACE",
    "LIVE_PERSON",
    "Tables",
    "new_id",
    "now",
]

# Lower-case letters and digits without look-alikes (i, l, o, u): ids survive being read aloud or retyped.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
#: faces deleted per transaction when a collection is erased, so other work interleaves between chunks. Another
#: tenant's identify waits for at most one chunk (it records its sighting under the same lock): erasing 20,000
#: faces, its p95 was 84-101 ms at 500 a chunk and 60-69 ms at 150 (idle 36-43), for 1.3 s of erasure instead
#: of 1.0-1.1 s (bench/abuse.py --only delete-collection, side by side)
ERASE_CHUNK = 150
# Rows of a collection being erased (its faces deleted chunk by chunk) are hidden from every read.
LIVE_COLLECTION = "erasing = 0"
LIVE_PERSON = "NOT EXISTS (SELECT 1 FROM collections c WHERE c.id = {p}.collection_id AND c.erasing = 1)"
LIVE_FACE = "({f}collection_id IS NULL OR {f}collection_id NOT IN (SELECT id FROM collections WHERE erasing = 1))"
_LIVE = {
    "collections": f" AND {LIVE_COLLECTION}",
    "persons": f" AND {LIVE_PERSON.format(p='persons')}",
    "faces": f" AND {LIVE_FACE.format(f='')}",
}
_WHAT = {"tenants": "tenant", "collections": "collection", "persons": "person", "faces": "face", "api_keys": "key"}


def new_id(prefix: str, length: int = 12) -> str:
    """A random public id such as ``per_3k9x...``: 5 bits per character, never guessable across tenants."""
    return f"{prefix}_{''.join(secrets.choice(ALPHABET) for _ in range(length))}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Tables(Database):
    """A `Database` with the lookups the table classes share."""

    def _one(self, sql: str, params: Sequence[Any], missing: str) -> sqlite3.Row:
        rows = self._rows(sql, params)
        if not rows:
            raise NotFoundError(missing)
        return rows[0]

    def _require(
        self, conn: sqlite3.Connection, table: str, object_id: str, tenant_id: str | None, *, erasing: bool = False
    ) -> None:
        """Raise NotFoundError unless the object exists and (for tenant data) belongs to ``tenant_id``. What a
        collection's erasure hides counts as missing, unless ``erasing`` (to finish the erasure)."""
        if tenant_id is None:
            found = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (object_id,)).fetchone()
        else:
            live = "" if erasing else _LIVE.get(table, "")
            found = conn.execute(
                f"SELECT 1 FROM {table} WHERE id = ? AND tenant_id = ?{live}", (object_id, tenant_id)
            ).fetchone()
        if found is None:
            raise NotFoundError(f"no {_WHAT[table]} {object_id!r}")

    def _bump(self, conn: sqlite3.Connection, tenant_id: str) -> None:
        """Count one change to the tenant's faces or corrections, inside the transaction that makes it."""
        conn.execute(
            "INSERT INTO face_state (tenant_id, version) VALUES (?, 1)"
            " ON CONFLICT (tenant_id) DO UPDATE SET version = face_state.version + 1",
            (tenant_id,),
        )
