"""Console sessions in the store, on SQLite and on PostgreSQL: against real `frugalsense serve` processes on
127.0.0.1 (a session survives a restart; expiry, sign-out, a revoked key and an erased tenant end it; two servers
on one PostgreSQL database share it) and on the store itself (the clocks, throttled last-seen writes, the cap).
Also the usage ledger's billable units: a PDF's pages priced one by one, as a cloud bills them."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from _backends import PostgresServer, postgres_files, postgres_rows
from _server import Server
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, open_store
from frugalsense.store.sessions import IDLE_S, LIFETIME_S, SessionStore, open_sessions, session_digest

ENV = {"FRUGALSENSE_RATE_PER_KEY": "0"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, server_database: str | None
) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("sessions"), model_dir, env=ENV, database_url=server_database).start()
    yield srv
    srv.kill()


def _rows(server: Server, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows read behind the server's back, from its database."""
    if server.database_url:
        return postgres_rows(server.database_url, sql.replace("?", "%s"), params)
    with closing(sqlite3.connect(server.data_dir / DB_FILENAME)) as db:
        return [tuple(row) for row in db.execute(sql, params)]


def _execute(server: Server, sql: str, params: tuple[Any, ...] = ()) -> None:
    if server.database_url:
        postgres_rows(server.database_url, sql.replace("?", "%s") + " RETURNING 1", params)
        return
    with closing(sqlite3.connect(server.data_dir / DB_FILENAME)) as db, db:
        db.execute(sql, params)


class Browser:
    """What a signed-in page holds: the session cookie and the CSRF token, sent to any server given."""

    def __init__(self, url: str, key: str) -> None:
        answer = httpx.post(f"{url}/console/session", json={"key": key}, timeout=30)
        assert answer.status_code == 200, answer.text
        self.cookie = answer.cookies["fs_session"]
        self.csrf: str = answer.json()["csrf"]
        self.who: dict[str, str] = answer.json()

    def call(self, url: str, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if csrf and method != "GET" else {}
        return httpx.request(
            method, f"{url}{path}", headers=headers, cookies={"fs_session": self.cookie}, timeout=60, **kwargs
        )

    @property
    def digest(self) -> str:
        return session_digest(self.cookie)


def _session_rows(server: Server, browser: Browser) -> list[tuple[Any, ...]]:
    return _rows(
        server, "SELECT tenant_id, key_id, role FROM console_sessions WHERE digest = ?", (browser.digest,)
    )


def _database_bytes(server: Server) -> bytes:
    if server.database_url:
        return postgres_files(server.database_url)
    db = server.data_dir / DB_FILENAME
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_a_session_survives_a_restart_and_only_its_digest_is_stored(server: Server) -> None:
    page = Browser(server.url, server.admin_key)
    assert page.call(server.url, "GET", "/console/session").json()["csrf"] == page.csrf
    assert _session_rows(server, page) == [(page.who["tenant_id"], page.who["key_id"], "admin")]
    assert page.digest == hashlib.sha256(page.cookie.encode()).hexdigest()

    server.kill()
    server.start()

    again = page.call(server.url, "GET", "/console/session")
    assert again.status_code == 200 and again.json()["csrf"] == page.csrf
    made = page.call(server.url, "POST", "/v1/collections", json={"name": "after the restart"})
    assert made.status_code == 201, made.text
    forged = page.call(server.url, "POST", "/v1/collections", json={"name": "no token"}, csrf=False)
    assert forged.status_code == 403
    stored = _database_bytes(server)
    assert page.digest.encode() in stored
    assert page.cookie.encode() not in stored and page.csrf.encode() not in stored


@pytest.mark.parametrize(
    ("column", "age_s"),
    [("seen", IDLE_S + 5), ("created", LIFETIME_S + 5)],
    ids=["idle", "past-lifetime"],
)
def test_an_expired_session_is_refused_and_deleted(server: Server, column: str, age_s: float) -> None:
    page = Browser(server.url, server.admin_key)
    assert page.call(server.url, "GET", "/console/session").status_code == 200
    _execute(server, f"UPDATE console_sessions SET {column} = {column} - ? WHERE digest = ?", (age_s, page.digest))
    refused = page.call(server.url, "GET", "/v1/collections")
    assert refused.status_code == 401 and "sign in again" in refused.json()["detail"]
    assert _session_rows(server, page) == []


def test_sign_out_ends_the_session(server: Server) -> None:
    page = Browser(server.url, server.admin_key)
    other = Browser(server.url, server.admin_key)
    assert page.call(server.url, "DELETE", "/console/session", csrf=False).status_code == 403
    assert page.call(server.url, "DELETE", "/console/session").status_code == 204
    assert _session_rows(server, page) == []
    assert page.call(server.url, "GET", "/console/session").status_code == 401
    assert other.call(server.url, "GET", "/console/session").status_code == 200  # only that one


def test_the_people_screen_reads_the_servers_own_database(server: Server) -> None:
    """Its paged reads go to the database the server stores in (PostgreSQL too), not to a file beside it."""
    page = Browser(server.url, server.admin_key)
    made = page.call(server.url, "POST", "/v1/collections", json={"name": "people screen"})
    assert made.status_code == 201, made.text
    collection = made.json()["id"]
    person = page.call(server.url, "POST", f"/v1/collections/{collection}/persons", json={"name": "Ada Lovelace"})
    assert person.status_code == 201, person.text
    listed = page.call(server.url, "GET", f"/console/api/persons?collection_id={collection}&name=lovelace")
    assert listed.status_code == 200, listed.text
    assert [p["name"] for p in listed.json()["persons"]] == ["Ada Lovelace"] and listed.json()["total"] == 1
    counted = page.call(server.url, "GET", f"/console/api/persons/{person.json()['id']}/erasure")
    assert counted.status_code == 200 and counted.json()["name"] == "Ada Lovelace"
    assert page.call(server.url, "GET", "/console/api/clusters").json()["total"] == 0


def test_revoking_a_key_ends_its_sessions(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    made = httpx.post(f"{server.url}/v1/keys", headers=admin, json={"name": "front desk", "role": "user"})
    assert made.status_code == 201, made.text
    desk = Browser(server.url, made.json()["key"])
    assert desk.who["role"] == "user" and len(_session_rows(server, desk)) == 1
    assert desk.call(server.url, "GET", "/v1/collections").status_code == 200
    revoked = httpx.delete(f"{server.url}/v1/keys/{made.json()['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert _session_rows(server, desk) == []
    assert desk.call(server.url, "GET", "/v1/collections").status_code == 401
    assert httpx.post(f"{server.url}/console/session", json={"key": made.json()["key"]}).status_code == 401


def test_erasing_a_tenant_leaves_no_session_row(server: Server) -> None:
    key = server.tenant_key("leaving-soon")
    page = Browser(server.url, key)
    second = Browser(server.url, key)
    tenant = page.who["tenant_id"]
    assert len(_rows(server, "SELECT digest FROM console_sessions WHERE tenant_id = ?", (tenant,))) == 2
    erased = page.call(server.url, "DELETE", "/v1/tenant")
    assert erased.status_code == 200, erased.text
    assert _rows(server, "SELECT digest FROM console_sessions WHERE tenant_id = ?", (tenant,)) == []
    assert second.call(server.url, "GET", "/console/session").status_code == 401
    assert tenant.encode() not in _database_bytes(server)


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_database_share_sessions(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.fresh()
    a = Server(tmp_path_factory.mktemp("server-a"), model_dir, env=ENV, database_url=url).start()
    try:
        b = Server(tmp_path_factory.mktemp("server-b"), model_dir, env=ENV, database_url=url).start()
        try:
            page = Browser(a.url, a.admin_key)  # signed in on a ...
            who = page.call(b.url, "GET", "/console/session")  # ... known to b
            assert who.status_code == 200 and who.json()["csrf"] == page.csrf
            made = page.call(b.url, "POST", "/v1/collections", json={"name": "made through b"})
            assert made.status_code == 201, made.text
            assert page.call(b.url, "POST", "/v1/collections", json={"name": "x"}, csrf=False).status_code == 403
            listed = page.call(a.url, "GET", "/v1/collections").json()["collections"]
            assert "made through b" in [c["name"] for c in listed]
            assert page.call(b.url, "DELETE", "/console/session").status_code == 204  # signed out on b ...
            assert page.call(a.url, "GET", "/console/session").status_code == 401  # ... and so on a
        finally:
            b.kill()
    finally:
        a.kill()


# -- the store itself, on both backends --------------------------------------------------------------------


@pytest.fixture()
def sessions(store_settings: Settings) -> Iterator[tuple[SessionStore, str, str]]:
    """The sessions of a fresh database, with a tenant and an admin key of it."""
    store = open_store(store_settings)
    tenant = store.create_tenant("acme").id
    key = store.create_api_key(tenant, "desk", "admin").record.id
    found = open_sessions(store.path)  # type: ignore[attr-defined]
    yield found, tenant, key
    found.close()
    store.close()


def test_last_seen_is_written_at_most_once_a_minute_and_idle_sessions_end(
    sessions: tuple[SessionStore, str, str],
) -> None:
    store, tenant, key = sessions
    opened = store.open(tenant, key, "admin", now=1000.0)
    assert opened is not None
    token, session = opened

    def seen(at: float) -> float:
        found = store.find(token, now=at)
        assert found is not None and found.csrf == session.csrf
        return found.seen

    assert seen(1059.0) == 1000.0  # a read, no write: under a minute since the last
    assert seen(1060.0) == 1060.0 and seen(1061.0) == 1060.0  # written once, then read back
    assert seen(1060.0 + IDLE_S) == 1060.0 + IDLE_S  # idle exactly as long as allowed
    assert store.find(token, now=1060.0 + 2 * IDLE_S + 1) is None  # the last write was at +IDLE_S
    assert store.count(tenant) == 0
    assert store.find("forged", now=1000.0) is None and store.find("", now=1000.0) is None


def test_a_session_ends_after_its_lifetime_however_busy(sessions: tuple[SessionStore, str, str]) -> None:
    store, tenant, key = sessions
    opened = store.open(tenant, key, "admin", now=0.0)
    assert opened is not None
    token = opened[0]
    moment = 0.0
    while moment + 3600.0 <= LIFETIME_S:
        moment += 3600.0
        assert store.find(token, now=moment) is not None
    assert store.find(token, now=LIFETIME_S + 1) is None


def test_signing_in_purges_expired_sessions_and_keeps_a_tenant_under_its_cap(
    sessions: tuple[SessionStore, str, str],
) -> None:
    store, tenant, key = sessions
    assert store.open(tenant, key, "admin", now=0.0) is not None
    later = IDLE_S + 1
    store.open(tenant, key, "admin", now=later)
    assert store.count(tenant) == 1  # the first had expired
    store.max_per_tenant = 3
    tokens = [store.open(tenant, key, "admin", now=later + i) for i in range(1, 5)]
    assert store.count(tenant) == 3
    assert [store.find(t[0], now=later + 5) is not None for t in tokens if t] == [False, True, True, True]
    assert store.purge(now=later + 5 + LIFETIME_S) == 3 and store.count(tenant) == 0


def test_a_revoked_key_or_an_unknown_one_opens_no_session(sessions: tuple[SessionStore, str, str]) -> None:
    store, tenant, key = sessions
    assert store.open(tenant, "key_unknown", "admin") is None
    assert store.open("ten_other", key, "admin") is None
    assert store.open(tenant, key, "admin") is not None


# -- billable units: pictures, priced one by one -----------------------------------------------------------


def _photo_pdf(photo: Path, pages: int) -> bytes:
    image = Image.open(photo).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PDF", save_all=True, append_images=[image] * (pages - 1), resolution=72)
    return buf.getvalue()


def test_a_pdf_is_billed_at_cloud_prices_page_by_page(server: Server, eval_dir: Path) -> None:
    key = server.tenant_key("pdf-pages")
    auth = {"Authorization": f"Bearer {key}"}
    photo = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "train" / "obama" / "obama.jpg"
    pdf = _photo_pdf(photo, 3)

    def analyze(name: str, data: bytes, mime: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{server.url}/v1/analyze",
            headers=auth,
            files={"file": (name, data, mime)},
            data={"features": "faces,labels"},
            timeout=300,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    assert len(analyze("three.pdf", pdf, "application/pdf")["pages"]) == 3
    analyze("three.pdf", pdf, "application/pdf")  # served from the result cache: a cloud would bill it again
    analyze("photo.jpg", photo.read_bytes(), "image/jpeg")
    report = httpx.get(f"{server.url}/v1/usage", headers=auth, timeout=60).json()
    rows = {r["feature"]: r for r in report["rows"]}
    assert (rows["faces"]["count"], rows["faces"]["units"]) == (3, 7)
    assert (rows["labels"]["count"], rows["labels"]["units"]) == (3, 7)
    assert rows["faces"]["cloud_usd"] == {"aws_rekognition": 0.007, "google_vision": 0.0105}
    assert report["totals"]["requests"] == 3 and rows["shared"]["units"] == 3
    assert report["totals"]["aws_rekognition_usd"] == pytest.approx(0.014)
