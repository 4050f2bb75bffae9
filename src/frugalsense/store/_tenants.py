"""Tenants and their API keys, for `SQLiteStore`: a tenant's erasure, key creation, checks and revocation."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Callable

from frugalsense.errors import InvalidRequestError
from frugalsense.store import erasure
from frugalsense.store._tables import ALPHABET, ERASE_CHUNK, Tables, new_id, now
from frugalsense.store.base import ApiKey, Erased, NewApiKey, Role, Tenant

__all__ = ["TenantTables"]

_KEY_RE = re.compile(r"^fs_([0-9a-z]{8})_([0-9a-z]{40})$")


def _hash_key(key: str) -> str:
    # The secret has 200 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class TenantTables(Tables):
    """The tenants and api_keys tables."""

    def create_tenant(self, name: str) -> Tenant:
        tenant = Tenant(id=new_id("ten"), name=self.limits.name(name, "tenant"), created_at=now())
        with self._write() as conn:
            conn.execute("INSERT INTO tenants VALUES (?, ?, ?)", (tenant.id, tenant.name, tenant.created_at))
        return tenant

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self._one("SELECT * FROM tenants WHERE id = ?", (tenant_id,), f"no tenant {tenant_id!r}")
        return Tenant(id=row["id"], name=row["name"], created_at=row["created_at"])

    def list_tenants(self) -> list[Tenant]:
        rows = self._rows("SELECT * FROM tenants ORDER BY rowid")
        return [Tenant(id=r["id"], name=r["name"], created_at=r["created_at"]) for r in rows]

    def delete_tenant(self, tenant_id: str) -> Erased:
        """Erase a tenant and everything it owns: its faces `ERASE_CHUNK` at a time (one transaction each, so
        other work interleaves), then the rest (keys, collections, persons, items) in one transaction."""
        erased = Erased()
        while (chunk := self.erase_tenant_faces(tenant_id)).face_ids:
            erased = erased.plus(chunk)
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            # Faces stored since the last chunk; its items go too (by cascade), so no result is left to scrub.
            rows = conn.execute("SELECT id, crop_path FROM faces WHERE tenant_id = ?", (tenant_id,)).fetchall()
            last = erasure.delete_faces(conn, tenant_id, rows, scrub=False)
            counts = conn.execute(
                "SELECT (SELECT COUNT(*) FROM persons WHERE tenant_id = ?),"
                " (SELECT COUNT(*) FROM collections WHERE tenant_id = ?)",
                (tenant_id, tenant_id),
            ).fetchone()
            # Its console sessions (the cascade from its keys would take them too; said here for the reader).
            conn.execute("DELETE FROM console_sessions WHERE tenant_id = ?", (tenant_id,))
            conn.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
        self.checkpoint()
        return erased.plus(Erased(last.face_ids, last.crop_paths, counts[0], counts[1], last.corrections))

    def erase_tenant_faces(
        self, tenant_id: str, limit: int = ERASE_CHUNK, before_delete: Callable[[list[str]], None] | None = None
    ) -> Erased:
        """One transaction of a tenant's erasure: up to ``limit`` of its faces (``before_delete`` gets their ids
        first), with their corrections; what it returns lists no face once none is left."""
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            rows = conn.execute(
                "SELECT id, crop_path FROM faces WHERE tenant_id = ? LIMIT ?", (tenant_id, max(1, limit))
            ).fetchall()
            if not rows:
                return Erased()
            if before_delete is not None:
                before_delete([r["id"] for r in rows])
            # The results of its items still name these faces until its erasure ends with the items: that way
            # no result is rewritten only to be deleted.
            erased = erasure.delete_faces(conn, tenant_id, rows, scrub=False)
            self._bump(conn, tenant_id)
        return erased

    def create_api_key(self, tenant_id: str, name: str, role: Role = "user") -> NewApiKey:
        if role not in ("admin", "user"):
            raise InvalidRequestError(f"role must be 'admin' or 'user', got {role!r}")
        prefix = "".join(secrets.choice(ALPHABET) for _ in range(8))
        key = f"fs_{prefix}_{''.join(secrets.choice(ALPHABET) for _ in range(40))}"
        record = ApiKey(
            id=new_id("key"),
            tenant_id=tenant_id,
            name=self.limits.name(name, "key"),
            prefix=prefix,
            role=role,
            created_at=now(),
        )
        with self._write() as conn:
            self._require(conn, "tenants", tenant_id, None)
            conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.id, tenant_id, record.name, prefix, _hash_key(key), role, record.created_at),
            )
        return NewApiKey(record=record, key=key)

    def verify_api_key(self, key: str) -> ApiKey | None:
        """The active key's record, or None for a malformed, unknown or revoked key."""
        match = _KEY_RE.match(key.strip())
        rows = self._rows("SELECT * FROM api_keys WHERE prefix = ?", (match.group(1),)) if match else []
        # Compare even when nothing matched, so a miss takes as long as a wrong secret.
        stored = rows[0]["key_hash"] if rows else "0" * 64
        if not hmac.compare_digest(stored, _hash_key(key.strip())) or not rows:
            return None
        record = _api_key(rows[0])
        return record if record.active else None

    def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        rows = self._rows("SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY rowid", (tenant_id,))
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        with self._write() as conn:
            self._require(conn, "api_keys", key_id, tenant_id)
            conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?",
                (now(), key_id, tenant_id),
            )
            conn.execute("DELETE FROM console_sessions WHERE key_id = ?", (key_id,))  # they end with their key
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return _api_key(row)


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        prefix=row["prefix"],
        role=row["role"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
