"""The usage ledger: CPU-seconds, dollars and request counts per tenant, day and feature, written with every
receipt the HTTP edge returns and read back by ``GET /v1/usage`` and the console's Costs page.

Rows are daily sums (one per tenant, day and feature), so a year of traffic is a few thousand rows however many
requests it held. A tenant's rows go with the tenant (foreign key, cascade).

    >>> import tempfile
    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/frugalsense.db")
    >>> acme = store.create_tenant("acme")
    >>> ledger = UsageLedger(store.path)
    >>> ledger.add([UsageEntry(acme.id, "2026-01-02", "faces", 0.25, 0.0000035, 1)])
    1
    >>> [(r.feature, r.count) for r in ledger.daily(acme.id, "2026-01-01", "2026-01-31")]
    [('faces', 1)]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from frugalsense.store._database import Database

__all__ = ["Ledger", "UsageEntry", "UsageLedger"]


@dataclass(frozen=True)
class UsageEntry:
    """What one request (or a day's sum of them) spent on one feature."""

    tenant_id: str
    day: str  # ISO date, UTC
    feature: str
    cpu_seconds: float
    usd: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "feature": self.feature,
            "cpu_seconds": round(self.cpu_seconds, 6),
            "usd": self.usd,
            "count": self.count,
        }


class Ledger(Protocol):
    """What the HTTP edge needs from a usage ledger, whatever the backend (``Store.usage_ledger()`` opens one)."""

    def add(self, entries: Sequence[UsageEntry]) -> int: ...
    def daily(self, tenant_id: str, since: str, until: str) -> list[UsageEntry]: ...
    def close(self) -> None: ...


class UsageLedger(Database):
    """The ``usage`` table on a connection of its own to the service's database file. Thread-safe."""

    def add(self, entries: Sequence[UsageEntry]) -> int:
        """Add entries onto their day's sums in one transaction; returns how many were kept. Entries of a tenant
        erased in the meantime are dropped (there is nobody left to bill)."""
        kept = 0
        with self._write() as conn:
            for entry in entries:
                try:
                    conn.execute(
                        "INSERT INTO usage (tenant_id, day, feature, cpu_seconds, usd, count)"
                        " VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (tenant_id, day, feature) DO UPDATE SET"
                        " cpu_seconds = cpu_seconds + excluded.cpu_seconds, usd = usd + excluded.usd,"
                        " count = count + excluded.count",
                        (entry.tenant_id, entry.day, entry.feature, entry.cpu_seconds, entry.usd, entry.count),
                    )
                    kept += 1
                except sqlite3.IntegrityError:  # the tenant is gone
                    continue
        return kept

    def daily(self, tenant_id: str, since: str, until: str) -> list[UsageEntry]:
        """The tenant's sums per day and feature from ``since`` to ``until`` (ISO dates, both included)."""
        rows = self._rows(
            "SELECT day, feature, cpu_seconds, usd, count FROM usage"
            " WHERE tenant_id = ? AND day >= ? AND day <= ? ORDER BY day, feature",
            (tenant_id, since, until),
        )
        return [UsageEntry(tenant_id, r[0], r[1], float(r[2]), float(r[3]), int(r[4])) for r in rows]
