"""Row-level security on PostgreSQL (store/postgres_rls.py, migration m010), on a real PostgreSQL 18 as the
service role the tests connect as (tests/_backends.py: the tables' owner, neither superuser nor exempt): a
session set to tenant B sees, changes and deletes none of tenant A's rows even with statements that forget the
tenant filter, a store method that forgets it still answers for its own tenant only, and what the policies do
not cover (a superuser, the full-text table) is what docs/postgres.md says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from _backends import SERVICE_ROLE, PostgresServer
from frugalsense.results import Box
from frugalsense.store import NewFace, NewItem
from frugalsense.store.jobs import JobFile, PostgresJobStore
from frugalsense.store.postgres import PostgresStore, PostgresUsageLedger
from frugalsense.store.postgres_db import COPY_ROWS, PgConn, connect
from frugalsense.store.postgres_rls import ALL_TENANTS, TENANT_TABLES, all_tenants, scope_of, tenant_scope
from frugalsense.store.postgres_search import PostgresSearchStore
from frugalsense.store.usage import UsageEntry

pytestmark = pytest.mark.postgres


def _face(seed: int, **fields: Any) -> NewFace:
    vector = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return NewFace(vector / np.linalg.norm(vector), "sface", Box(1, 2, 3, 4), [(1.0, 2.0)] * 5, 0.9, "0" * 64,
                   f"{seed}.jpg", **fields)  # fmt: skip


def _item(source: str, face_id: str, person_id: str) -> NewItem:
    return NewItem(
        source=source,
        sha256="1" * 64,
        modality="image",
        mime="image/jpeg",
        byte_size=10,
        pages=1,
        duration_s=None,
        captured_at="2024-05-01T10:00:00",
        nsfw=0.0,
        flagged=False,
        phash=7,
        encoder="conse",
        result={"pages": [{"faces": [{"face_id": face_id, "decision": person_id, "candidates": []}]}]},
        text=f"receipt {source}",
        transcript="",
        labels={"receipt": 0.8},
        faces=[(face_id, 1)],
        vectors=[("image", np.ones(128, dtype=np.float32) / np.sqrt(128))],
    )


@pytest.fixture()
def two_tenants(postgres_server: PostgresServer) -> Iterator[dict[str, Any]]:
    """A fresh database with a row of every kind for tenants A and B, written through the stores."""
    url = postgres_server.fresh()
    with PostgresStore(url) as store:
        made: dict[str, Any] = {"url": url}
        for name in ("a", "b"):
            tenant = store.create_tenant(name).id
            staff = store.create_collection(tenant, "staff").id
            person = store.create_person(tenant, staff, f"Person {name}").id
            faces = store.add_faces(tenant, [_face(i, collection_id=staff, person_id=person, enrolled=True)
                                             for i in range(3)])  # fmt: skip
            store.add_face_embedding(tenant, faces[0].id, "dlib", np.ones(128, dtype=np.float32))
            store.correct_face(tenant, faces[1].id, person, "is")
            store.create_api_key(tenant, f"key {name}")
            search = PostgresSearchStore(url)
            item = search.put_item(tenant, _item(f"{name}.jpg", faces[2].id, person)).item
            search.close()
            ledger = PostgresUsageLedger(url)
            ledger.add([UsageEntry(tenant, "2026-01-02", "faces", 0.5, 0.01, 1)])
            ledger.close()
            jobs = PostgresJobStore(url)
            job = jobs.start(tenant, "index", {"root": name})
            jobs.record(tenant, job.id, [JobFile(f"{name}.jpg", "added", item_id=item.id if item else None)])
            jobs.close()
            made[name] = {"tenant": tenant, "collection": staff, "person": person, "faces": [f.id for f in faces]}
            made[name]["item"] = item.id if item is not None else None
        yield made


def _session(url: str, tenant: str | None) -> Any:
    return connect(url, tenant=tenant)


def test_the_service_role_is_subject_to_the_policies_of_every_table_of_tenant_rows(
    two_tenants: dict[str, Any],
) -> None:
    with _session(two_tenants["url"], None) as conn:
        role = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert conn.execute("SELECT current_user").fetchone()[0] == SERVICE_ROLE
        assert tuple(role) == (False, False)  # a superuser or BYPASSRLS role would pass every policy unseen
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),"
            " (SELECT COUNT(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            " AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'"
            " AND NOT a.attisdropped) OR c.relname = 'tenants')"
        ).fetchall()
    found = {r[0]: tuple(r[1:]) for r in tables}
    # every table that holds tenant rows is listed, but the full text (its GIN indexes need no policy)
    assert set(found) - set(TENANT_TABLES) == {"item_text"}
    for table in TENANT_TABLES:
        # FORCE: the owner, which the service role is, obeys the policy too
        assert found[table] == (True, True, SERVICE_ROLE, 1), table


def test_a_session_of_tenant_b_never_sees_changes_or_deletes_tenant_as_rows(two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    with _session(two_tenants["url"], b["tenant"]) as conn:
        # statements that forget the tenant filter find only B's rows, in every table
        for table, column in TENANT_TABLES.items():
            owners = {r[0] for r in conn.execute(f"SELECT {column} FROM {table}").fetchall()}
            expected = set() if table == "console_sessions" else {b["tenant"]}  # nobody signed in to the console
            assert owners == expected, table
        assert conn.execute("SELECT COUNT(*) FROM faces WHERE id = ANY(%s)", (a["faces"],)).fetchone()[0] == 0
        # and cannot change or delete A's: the rows are not there for them
        assert conn.execute("UPDATE persons SET name = 'Mallory' WHERE id = %s", (a["person"],)).rowcount == 0
        assert conn.execute("DELETE FROM faces WHERE id = ANY(%s)", (a["faces"],)).rowcount == 0
        assert conn.execute("DELETE FROM api_keys WHERE tenant_id = %s", (a["tenant"],)).rowcount == 0
        # nor write rows in A's name, or move one of B's rows to A
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO collections (id, tenant_id, name, created_at) VALUES ('col_x', %s, 'x', 'now')",
                (a["tenant"],),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE items SET tenant_id = %s", (a["tenant"],))
        # a bulk write (binary COPY, through its policy-checked twin) in A's name is refused as well
        rows = [(f"face_x{i}", a["tenant"], "0" * 64, "x.jpg", "[]", "[]", 0.9, _face(i).embedding.tobytes(),
                 "sface", "now") for i in range(COPY_ROWS)]  # fmt: skip
        columns = ["id", "tenant_id", "source_sha256", "source_name", "box", "landmarks", "det_score", "embedding",
                   "model", "created_at"]  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            PgConn(conn).copy_rows("faces", columns, rows)
    with _session(two_tenants["url"], "") as conn:  # a session that names no tenant sees nothing at all
        assert conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM tenants").fetchone()[0] == 0
    with _session(two_tenants["url"], ALL_TENANTS) as conn:  # A's rows are all still there
        assert conn.execute("SELECT name FROM persons WHERE id = %s", (a["person"],)).fetchone()[0] == "Person a"
        assert conn.execute("SELECT COUNT(*) FROM faces WHERE tenant_id = %s", (a["tenant"],)).fetchone()[0] == 3
        assert conn.execute("SELECT COUNT(*) FROM items WHERE tenant_id = %s", (a["tenant"],)).fetchone()[0] == 1
        # (by id: in LIKE 'face_x%' the "_" matches any character, so a random face id could count)
        assert (
            conn.execute("SELECT COUNT(*) FROM faces WHERE id = ANY(%s)", ([r[0] for r in rows],)).fetchone()[0]
            == 0
        )


class _Forgetful(PostgresStore):
    """A store with the bug row-level security is there for: a tenant's method whose SQL forgot the tenant."""

    def face_ids(self, tenant_id: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT id FROM faces ORDER BY rowid")]

    def rename_everyone(self, tenant_id: str, name: str) -> int:
        with self._write() as conn:
            return int(conn.execute("UPDATE persons SET name = ?", (name,)).rowcount)


def test_a_store_method_that_forgets_the_tenant_filter_still_answers_for_its_tenant_only(
    two_tenants: dict[str, Any],
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    with _Forgetful(two_tenants["url"]) as store:
        assert scope_of(_Forgetful, "face_ids") == "tenant"
        assert store.face_ids(b["tenant"]) == b["faces"]
        assert store.face_ids(a["tenant"]) == a["faces"]
        assert store.rename_everyone(b["tenant"], "Mallory") == 1
        assert store.get_person(a["tenant"], a["person"]).name == "Person a"
        # outside any store method (a private read from elsewhere) nothing is visible
        assert store._rows("SELECT COUNT(*) FROM faces")[0][0] == 0
        with tenant_scope(b["tenant"]):
            assert store._rows("SELECT COUNT(*) FROM faces")[0][0] == 3
        with all_tenants():
            assert store._rows("SELECT COUNT(*) FROM faces")[0][0] == 6
        # a tenant id that says "every tenant" gets nothing, not everything
        assert store.face_ids(ALL_TENANTS) == []


def test_only_the_methods_that_cannot_know_a_tenant_cross_tenants() -> None:
    """The store methods that run as every tenant, listed so that a new one is a decision (docs/postgres.md)."""

    def crossing(cls: type) -> set[str]:
        names = [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))]
        return {n for n in names if scope_of(cls, n) == "all"}

    # keys are found by their prefix before the tenant is known; tenants are listed and made by the operator;
    # erasures cut short are finished at start-up for every tenant; `db copy` counts every table
    assert crossing(PostgresStore) == {
        "create_tenant",
        "list_tenants",
        "verify_api_key",
        "erasing_collections",
        "table_counts",
    }
    # vector rows are read by row number, right after the tenant's own write returned them
    assert crossing(PostgresSearchStore) == {"vector_rows"}
    # one batch of usage holds several tenants' receipts
    assert crossing(PostgresUsageLedger) == {"add"}
    assert scope_of(PostgresStore, "get_face") == "tenant" and scope_of(PostgresSearchStore, "keyword") == "tenant"


def test_what_the_policies_do_not_cover(two_tenants: dict[str, Any], postgres_server: PostgresServer) -> None:
    """A superuser passes every policy, and the full text keeps only its statements' own tenant filter."""
    a, b = two_tenants["a"], two_tenants["b"]
    database = psycopg.conninfo.conninfo_to_dict(two_tenants["url"])["dbname"]
    with psycopg.connect(postgres_server.url(database), autocommit=True) as admin:
        admin.execute("SELECT set_config('frugalsense.tenant', %s, false)", (b["tenant"],))
        assert admin.execute("SELECT COUNT(*) FROM faces WHERE tenant_id = %s", (a["tenant"],)).fetchone()[0] == 3
    with _session(two_tenants["url"], b["tenant"]) as conn:
        owners = {r[0] for r in conn.execute("SELECT tenant_id FROM item_text").fetchall()}
        assert owners == {a["tenant"], b["tenant"]}
