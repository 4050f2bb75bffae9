"""The usage ledger: CPU-seconds, dollars, request counts and billable units per tenant, day and feature, written
with every receipt the HTTP edge returns and read back by ``GET /v1/usage`` and the console's Costs page.

A feature's units are what a cloud would bill for the same answers: the pictures it analysed (one photo is one,
a PDF of 12 pages analysed is 12, a video is its sampled frames), where ``count`` is the requests.

Rows are daily sums (one per tenant, day and feature), so a year of traffic is a few thousand rows however many
requests it held. A tenant's rows go with the tenant (foreign key, cascade).

    >>> import tempfile
    >>> from frugalsense.store import SQLiteStore
    >>> store = SQLiteStore(tempfile.mkdtemp() + "/frugalsense.db")
    >>> acme = store.create_tenant("acme")
    >>> ledger = UsageLedger(store.path)
    >>> ledger.add([UsageEntry(acme.id, "2026-01-02", "text", 0.25, 0.0000035, 1, units=12)])
    1
    >>> [(r.feature, r.count, r.units) for r in ledger.daily(acme.id, "2026-01-01", "2026-01-31")]
    [('text', 1, 12)]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from frugalsense.store._database import Database

__all__ = ["DAILY", "Ledger", "UsageEntry", "UsageLedger", "daily_entry"]


@dataclass(frozen=True)
class UsageEntry:
    """What one request (or a day's sum of them) spent on one feature."""

    tenant_id: str
    day: str  # ISO date, UTC
    feature: str
    cpu_seconds: float
    usd: float
    count: int
    #: billable units (pictures analysed); None: one per request, as ``count``
    units: int | None = None

    @property
    def billable(self) -> int:
        return self.count if self.units is None else self.units

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "feature": self.feature,
            "cpu_seconds": round(self.cpu_seconds, 6),
            "usd": self.usd,
            "count": self.count,
            "units": self.billable,
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
                        "INSERT INTO usage (tenant_id, day, feature, cpu_seconds, usd, count, units)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (tenant_id, day, feature) DO UPDATE SET"
                        " cpu_seconds = cpu_seconds + excluded.cpu_seconds, usd = usd + excluded.usd,"
                        " count = count + excluded.count, units = units + excluded.units",
                        (
                            entry.tenant_id,
                            entry.day,
                            entry.feature,
                            entry.cpu_seconds,
                            entry.usd,
                            entry.count,
                            entry.billable,
                        ),
                    )
                    kept += 1
                except sqlite3.IntegrityError:  # the tenant is gone
                    continue
        return kept

    def daily(self, tenant_id: str, since: str, until: str) -> list[UsageEntry]:
        """The tenant's sums per day and feature from ``since`` to ``until`` (ISO dates, both included)."""
        rows = self._rows(DAILY, (tenant_id, since, until))
        return [daily_entry(tenant_id, r) for r in rows]


#: a tenant's rows from one day to another, in the order the report shows them (both backends)
DAILY = (
    "SELECT day, feature, cpu_seconds, usd, count, units FROM usage"
    " WHERE tenant_id = ? AND day >= ? AND day <= ? ORDER BY day, feature"
)


def daily_entry(tenant_id: str, row: Sequence[Any]) -> UsageEntry:
    """A row of `DAILY` as an entry."""
    return UsageEntry(tenant_id, row[0], row[1], float(row[2]), float(row[3]), int(row[4]), int(row[5]))
