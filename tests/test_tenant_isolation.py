"""Tenant isolation, route by route, against a real `frugalsense serve` on SQLite and on PostgreSQL (where the
store connects as a role under row-level security: tests/_backends.py).

Tenant A stores real data (a person enrolled from a real face, a stranger's face and its cluster, a correction,
a user key, a receipt and photos indexed for search, an analysis in the result cache, a console session); then
tenant B, with data of its own, calls every route of the app with A's ids. For each route the table `ROUTES`
says how; `test_every_route_of_the_app_has_an_isolation_check` fails when a route is added without a row. B must
get, for any id of A's, exactly what it gets for an id that does not exist (same status, same problem body but
for the id), must never find A's items, persons, faces, keys, clusters or names in a list or a search, must not
be served A's cached answers, and its usage must count its own requests only. At the end A's rows are all in the
database, as many as before, and A's own calls still find everything.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from _backends import postgres_rows
from _server import Server
from frugalsense.api.app import create_app
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME

#: A's person: a name no other row holds, looked for in every answer B gets
NAME = "Adaline Quennell-Vorst"
VAULT = "vault-of-a"  # A's collection; B may make one of the same name
#: what A's rows are counted in, before and after B's walk
TABLES = ("api_keys", "collections", "persons", "faces", "corrections", "items", "item_vectors", "usage")


@dataclass
class World:
    server: Server
    files: dict[str, bytes]
    company: str  # words of A's receipt
    ids: dict[str, str] = field(default_factory=dict)  # A's, by the path parameter they fill (and a few more)
    own: dict[str, str] = field(default_factory=dict)  # B's own, by the same names
    billed: Counter[str] = field(default_factory=Counter)  # answers that carried a cost receipt, per tenant
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)  # console sessions, per tenant

    @property
    def a(self) -> httpx.Client:
        return self.clients["a"]

    @property
    def b(self) -> httpx.Client:
        return self.clients["b"]

    def client(self, who: str, key: str) -> httpx.Client:
        """A client with ``who``'s key that counts the answers billed to it (they carry ``X-Cost-Receipt``)."""

        def count(response: httpx.Response) -> None:
            self.billed[who] += "x-cost-receipt" in response.headers

        headers = {"Authorization": f"Bearer {key}", "Origin": self.server.url}
        self.clients[who] = httpx.Client(
            base_url=self.server.url, headers=headers, timeout=180, event_hooks={"response": [count]}
        )
        return self.clients[who]

    @property
    def secrets(self) -> list[str]:
        """What B must never read: every id of A's, and A's person's name."""
        return list(self.ids.values())


def _missing(value: str) -> str:
    """An id of the same kind and length as ``value`` that nobody has (a name: one nobody has)."""
    if " " in value:
        return "Z" * len(value)
    prefix, _, rest = value.partition("_")
    return f"{prefix}_{'z' * len(rest)}"


def _sent(w: World, request: httpx.Request) -> tuple[str, ...]:
    """A's ids and names a request of B's carries (in its path, query or body)."""
    try:
        body = request.content
    except httpx.RequestNotRead:  # a multipart upload: its stream is read again
        body = request.read()
    text = unquote_plus(str(request.url)) + body.decode("utf-8", "ignore")
    return tuple(s for s in w.secrets if s in text)


def _clean(w: World, response: httpx.Response) -> None:
    """B's answer holds nothing of A's (but what B itself sent, echoed in a problem's detail)."""
    sent = _sent(w, response.request)
    leaked = [s for s in w.secrets if s in response.text and s not in sent]
    assert not leaked, (response.request.method, response.request.url.path, leaked, response.text[:300])


#: what may differ between two answers of the same shape: how long they took, what they cost
_VOLATILE = {"took_ms", "receipt"}


def _steady(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _steady(v) for k, v in body.items() if k not in _VOLATILE}
    return [_steady(v) for v in body] if isinstance(body, list) else body


def _shape(response: httpx.Response, ids: list[str]) -> tuple[int, str, Any]:
    """An answer's status, content type and body, with ``ids`` replaced and timings and receipts left out."""
    text = response.text
    for value in ids:
        text = text.replace(value, "<id>")
    kind = response.headers.get("content-type", "").split(";")[0]
    return response.status_code, kind, _steady(json.loads(text)) if "json" in kind else text


def _as_missing(
    w: World,
    method: str,
    path: str,
    *,
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None,
    expect: int | None = 404,
) -> httpx.Response:
    """B's call with A's ids answers exactly as with ids nobody has: same status (``expect``), same body but
    for the ids. ``path`` and ``body`` get A's ids (or ids nobody has) by the names in `World.ids`."""
    nobody = {k: _missing(v) for k, v in w.ids.items()}
    answers = []
    for ids in (w.ids, nobody):
        kwargs = body(ids) if body is not None else {}
        answers.append(w.b.request(method, path.format(**ids), **kwargs))
    found, missing = answers
    sent = _sent(w, found.request)
    assert sent, (method, path, "sends none of A's ids")
    assert _shape(found, list(sent)) == _shape(missing, [_missing(v) for v in sent]), (method, path)
    if expect is not None:
        assert found.status_code == expect, (method, path, found.status_code, found.text[:300])
    if found.status_code >= 400:
        assert found.headers["content-type"].startswith("application/problem+json")
    _clean(w, found)
    return found


def _upload(name: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"files": {"file": ("photo.jpg", w.files[name])}}


# -- the checks, one per route -----------------------------------------------------------------------------


def _public(w: World, method: str, path: str) -> None:
    """A page or document with no tenant in it: the same for everyone, and nothing of A's in it."""
    response = w.b.request(method, path.format(name="console.js"))
    assert response.status_code == 200, (path, response.status_code)
    _clean(w, response)


def _cache_kept_apart(name: str) -> Callable[[World, str, str], None]:
    """B sends the very bytes A had analysed (``name``): B is not served A's cached answer (A is, again)."""

    def check(w: World, method: str, path: str) -> None:
        call = _CACHED[path](w.files[name])
        notes = {}
        for who, client in (("b", w.b), ("a", w.a)):
            response = client.request(method, path, **call)  # type: ignore[arg-type]
            assert response.status_code == 200, response.text
            notes[who] = [s["note"] or "" for s in response.json()["receipt"]["stages"]]
            if who == "b":
                _clean(w, response)
        assert not any("served from cache" in n for n in notes["b"]), (path, notes["b"])
        assert any("served from cache" in n for n in notes["a"]), (path, notes["a"])

    return check


def _compare(w: World, method: str, path: str) -> None:
    files = {"a": ("a.jpg", w.files["enrolled"]), "b": ("b.jpg", w.files["indexed"])}
    response = w.b.request(method, path, files=files)
    assert response.status_code == 200 and response.json()["same"] is True, response.text
    _clean(w, response)


def _create_collection(w: World, method: str, path: str) -> None:
    """Names are per tenant: B may make a collection named as A's (a 409 would tell B that A has one)."""
    response = w.b.request(method, path, json={"name": VAULT})
    assert response.status_code == 201 and response.json()["id"] != w.ids["collection_id"], response.text


def _listing(params: dict[str, Any] | None = None, key: str = "") -> Callable[[World, str, str], None]:
    """A list of B's: answered, holding B's own ``key`` id when given, nothing of A's."""

    def check(w: World, method: str, path: str) -> None:
        response = w.b.request(method, path.format(**w.own), params=params)
        assert response.status_code == 200, (path, response.text)
        if key:
            assert w.own[key] in response.text, (path, response.text[:300])
        _clean(w, response)

    return check


def _foreign(
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None, expect: int | None = 404
) -> Callable[[World, str, str], None]:
    def check(w: World, method: str, path: str) -> None:
        _as_missing(w, method, path, body=body, expect=expect)

    return check


def _foreign_upload(name: str) -> Callable[[World, str, str], None]:
    def check(w: World, method: str, path: str) -> None:
        _as_missing(w, method, path, body=lambda _: _upload(name)(w))

    return check


def _face_search(w: World, method: str, path: str) -> None:
    """B searches its faces with A's photos: none of A's faces come back, and A's collection is as unknown as
    one that does not exist."""
    for name in ("enrolled", "indexed"):
        response = w.b.request(method, path, **_upload(name)(w))  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        _clean(w, response)
    body = lambda ids: {**_upload("enrolled")(w), "data": {"collection_id": ids["collection_id"]}}  # noqa: E731
    _as_missing(w, method, path, body=body, expect=None)


def _corrections(w: World, method: str, path: str) -> None:
    # A's face, named as B's person; then B's own face, named as A's person
    _as_missing(w, method, path, body=lambda ids: {"json": {"is_not_person": w.own["person_id"]}})
    mixed = path.replace("{face_id}", w.own["face_id"])
    _as_missing(w, method, mixed, body=lambda ids: {"json": {"is_person": ids["person_id"]}})


def _promote(w: World, method: str, path: str) -> None:
    # A's cluster into B's collection; then B's cluster into A's collection
    _as_missing(w, method, path, body=lambda ids: {"json": {"collection_id": w.own["collection_id"], "name": "M"}})
    mixed = path.replace("{cluster_id}", w.own["cluster_id"])
    _as_missing(w, method, mixed, body=lambda ids: {"json": {"collection_id": ids["collection_id"], "name": "M"}})


def _create_key(w: World, method: str, path: str) -> None:
    response = w.b.request(method, path, json={"name": "b's camera"})
    assert response.status_code == 201 and response.json()["tenant_id"] == w.own["tenant_id"], response.text


def _index(w: World, method: str, path: str) -> None:
    """A's collection is unknown to B's index call; and B indexing A's very receipt and photo under A's very
    source keys adds new items of B's (an 'unchanged' would tell B that A has them)."""
    body = lambda ids: {**_upload("receipt")(w), "data": {"collection_id": ids["collection_id"]}}  # noqa: E731
    _as_missing(w, method, path, body=body)
    for name, source in (("receipt", "a/r.jpg"), ("indexed", "album/1.jpg")):
        response = w.b.request(method, path, files={"file": ("f.jpg", w.files[name])}, data={"source": source})
        assert response.status_code == 201 and response.json()["status"] == "added", response.text
        w.own[f"copied {name}"] = response.json()["item_id"]
        _clean(w, response)


def _search(w: World, method: str, path: str) -> None:
    found = w.b.request(method, path, params={"q": w.company})
    assert found.status_code == 200, found.text
    assert [h["item"]["id"] for h in found.json()["hits"]][:1] == [w.own["copied receipt"]]  # B's copy, not A's
    _clean(w, found)
    for person in ("person_id", "person_name", "cluster_id"):  # A's person by id and by name, A's cluster
        _as_missing(w, method, path, body=lambda ids, p=person: {"params": {"person": ids[p]}}, expect=None)


def _search_image(w: World, method: str, path: str) -> None:
    """B has one copy of a picture A holds twice: B finds its own, none of A's."""
    response = w.b.request(method, path, **_upload("indexed")(w))  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.json()["hits"][0]["item"]["id"] == w.own["copied indexed"]
    _clean(w, response)


def _usage(w: World, method: str, path: str) -> None:
    """B's usage counts B's metered answers, none of A's."""
    response = w.b.request(method, path)
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["requests"] == w.billed["b"], (response.json()["totals"], w.billed)
    _clean(w, response)


def _sign_in(w: World, method: str, path: str) -> None:
    response = w.b.request(method, path, json={"key": str(w.b.headers["authorization"])[7:]})
    assert response.status_code == 200 and response.json()["tenant_id"] == w.own["tenant_id"], response.text
    w.cookies["b"], w.cookies["b csrf"] = response.cookies["fs_session"], response.json()["csrf"]


def _whoami(w: World, method: str, path: str) -> None:
    with httpx.Client(base_url=w.server.url, cookies={"fs_session": w.cookies["b"]}) as console:
        response = console.request(method, path)
    assert response.status_code == 200 and response.json()["tenant_id"] == w.own["tenant_id"], response.text


def _sign_out(w: World, method: str, path: str) -> None:
    """B signs out: its session ends, A's does not."""
    headers = {"x-csrf-token": w.cookies["b csrf"]}
    with httpx.Client(base_url=w.server.url, cookies={"fs_session": w.cookies["b"]}, headers=headers) as console:
        assert console.request(method, path).status_code == 204
        assert console.get(path).status_code == 401
    with httpx.Client(base_url=w.server.url, cookies={"fs_session": w.cookies["a"]}) as console:
        assert console.get(path).json()["tenant_id"] == w.ids["tenant_id"]


def _erase_tenant(w: World, method: str, path: str) -> None:
    """Last: B erases its own tenant, which takes nothing of A's."""
    response = w.b.request(method, path)
    assert response.status_code == 200 and response.json()["erased"]["id"] == w.own["tenant_id"], response.text
    _clean(w, response)


#: what A sent to each analysing route, as B sends it again
_CACHED: dict[str, Callable[[bytes], dict[str, Any]]] = {
    "/v1/analyze": lambda data: {"files": {"file": ("p.jpg", data)}, "data": {"features": "faces"}},
    "/v1/faces/detect": lambda data: {"files": {"file": ("p.jpg", data)}},
    "/v1/documents/fields": lambda data: {"files": {"file": ("r.jpg", data)}},
}
_NEW_PERSON = lambda ids: {"json": {"name": "Mallory"}}  # noqa: E731
_CONSOLE_PERSONS = lambda ids: {"params": {"collection_id": ids["collection_id"]}}  # noqa: E731

#: (method, path) -> how tenant B calls it with A's ids, and what it must answer; in the order they run
ROUTES: dict[tuple[str, str], Callable[[World, str, str], None]] = {
    ("GET", "/openapi.json"): _public,
    ("GET", "/docs"): _public,
    ("GET", "/docs/oauth2-redirect"): _public,
    ("GET", "/redoc"): _public,
    ("GET", "/healthz"): _public,
    ("GET", "/readyz"): _public,
    ("GET", "/metrics"): _public,
    ("GET", "/"): _public,
    ("GET", "/console/static/{name}"): _public,
    ("POST", "/v1/analyze"): _cache_kept_apart("analysed"),
    ("POST", "/v1/faces/detect"): _cache_kept_apart("detected"),
    ("POST", "/v1/faces/compare"): _compare,
    ("POST", "/v1/documents/fields"): _cache_kept_apart("receipt"),
    ("POST", "/v1/collections"): _create_collection,
    ("GET", "/v1/collections"): _listing(key="collection_id"),
    ("POST", "/v1/collections/{collection_id}/persons"): _foreign(_NEW_PERSON),
    ("GET", "/v1/collections/{collection_id}/persons"): _foreign(),
    ("GET", "/v1/persons/{person_id}"): _foreign(),
    ("POST", "/v1/persons/{person_id}/faces"): _foreign_upload("enrolled"),
    ("POST", "/v1/collections/{collection_id}/identify"): _foreign_upload("enrolled"),
    ("POST", "/v1/faces/search"): _face_search,
    ("GET", "/v1/faces/{face_id}"): _foreign(),
    ("POST", "/v1/faces/{face_id}/corrections"): _corrections,
    ("GET", "/v1/clusters"): _listing({"min_size": 1}, key="cluster_id"),
    ("POST", "/v1/clusters/{cluster_id}/promote"): _promote,
    ("POST", "/v1/keys"): _create_key,
    ("GET", "/v1/keys"): _listing(),
    ("DELETE", "/v1/keys/{key_id}"): _foreign(),
    ("POST", "/v1/index"): _index,
    ("GET", "/v1/search"): _search,
    ("POST", "/v1/search/image"): _search_image,
    ("GET", "/v1/search/duplicates"): _listing(),
    ("GET", "/v1/items"): _listing(key="item_id"),
    ("GET", "/v1/items/{item_id}"): _foreign(),
    ("POST", "/console/session"): _sign_in,
    ("GET", "/console/session"): _whoami,
    ("GET", "/console/api/persons"): _foreign(_CONSOLE_PERSONS, expect=None),
    ("GET", "/console/api/persons/{person_id}/faces"): _foreign(expect=None),
    ("GET", "/console/api/persons/{person_id}/erasure"): _foreign(expect=None),
    ("GET", "/console/api/clusters"): _listing({"min_size": 1}),
    ("GET", "/console/api/crops/{face_id}"): _foreign(),
    ("GET", "/console/api/items/{item_id}/thumbnail"): _foreign(),
    ("DELETE", "/console/session"): _sign_out,
    ("DELETE", "/v1/items/{item_id}"): _foreign(),
    ("DELETE", "/v1/faces/{face_id}"): _foreign(),
    ("DELETE", "/v1/persons/{person_id}"): _foreign(),
    ("DELETE", "/v1/collections/{collection_id}"): _foreign(),
    ("GET", "/v1/usage"): _usage,
    ("DELETE", "/v1/tenant"): _erase_tenant,
}


def test_every_route_of_the_app_has_an_isolation_check(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or ()) if m != "HEAD"}
    assert routes == set(ROUTES), f"without a check: {sorted(routes - set(ROUTES))}"


# -- the two tenants and their data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, server_database: str | None
) -> Iterator[Server]:
    env = {"FRUGALSENSE_RATE_PER_KEY": "0"}
    srv = Server(tmp_path_factory.mktemp("isolation"), model_dir, env=env, database_url=server_database).start()
    yield srv
    srv.kill()


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url.path, response.status_code, response.text[:300])
    return response.json()


def _cluster_of(client: httpx.Client, face_id: str) -> str:
    clusters = _ok(client.get("/v1/clusters", params={"min_size": 1}))["clusters"]
    return next(c["id"] for c in clusters if face_id in json.dumps(c))


def _tenant_a(w: World, eval_dir: Path) -> None:
    """A: a collection and a person enrolled from a real face, a stranger seen (an unknown face, its cluster) and
    corrected, a user key, a receipt and a photo indexed (the photo twice: near-duplicates), an analysis in the
    result cache, a console session."""
    a = w.client("a", w.server.tenant_key("shop-a"))
    ids = w.ids
    ids["tenant_id"] = _ok(a.get("/v1/keys"))["keys"][0]["tenant_id"]
    ids["collection_id"] = _ok(a.post("/v1/collections", json={"name": VAULT}), 201)["id"]
    ids["person_name"] = NAME
    ids["person_id"] = _ok(a.post(f"/v1/collections/{ids['collection_id']}/persons", json={"name": NAME}), 201)[
        "id"
    ]
    enrolled = a.post(f"/v1/persons/{ids['person_id']}/faces", **_upload("enrolled")(w))  # type: ignore[arg-type]
    ids["face_id"] = _ok(enrolled, 201)["face"]["id"]
    seen = _ok(a.post(f"/v1/collections/{ids['collection_id']}/identify", **_upload("stranger")(w)))  # type: ignore[arg-type]
    assert [f["decision"] for f in seen["faces"]] == ["unknown"]
    ids["stranger_face"] = seen["faces"][0]["face_id"]
    ids["cluster_id"] = _cluster_of(a, ids["stranger_face"])
    _ok(a.post(f"/v1/faces/{ids['stranger_face']}/corrections", json={"is_not_person": ids["person_id"]}))
    ids["key_id"] = _ok(a.post("/v1/keys", json={"name": "a's camera"}), 201)["id"]
    receipt = a.post("/v1/index", files={"file": ("r.jpg", w.files["receipt"])}, data={"source": "a/r.jpg"})
    ids["item_id"] = _ok(receipt, 201)["item_id"]
    for source in ("album/1.jpg", "album/1 copy.jpg"):
        data = {"source": source, "collection_id": ids["collection_id"]}
        photo = a.post("/v1/index", files={"file": ("p.jpg", w.files["indexed"])}, data=data)
        ids[source] = _ok(photo, 201)["item_id"]
    for path, name in (
        ("/v1/analyze", "analysed"),
        ("/v1/faces/detect", "detected"),
        ("/v1/documents/fields", "receipt"),
    ):
        _ok(a.post(path, **_CACHED[path](w.files[name])))  # type: ignore[arg-type]
    signed = a.post("/console/session", json={"key": str(a.headers["authorization"])[7:]})
    w.cookies["a"] = _ok(signed) and signed.cookies["fs_session"]


def _tenant_b(w: World) -> None:
    """B: its own collection, person, enrolled face, a stranger's cluster and a receipt."""
    b = w.client("b", w.server.tenant_key("shop-b"))
    own = w.own
    own["tenant_id"] = _ok(b.get("/v1/keys"))["keys"][0]["tenant_id"]
    own["collection_id"] = _ok(b.post("/v1/collections", json={"name": "b-staff"}), 201)["id"]
    own["person_id"] = _ok(b.post(f"/v1/collections/{own['collection_id']}/persons", json={"name": "Bo"}), 201)[
        "id"
    ]
    enrolled = b.post(f"/v1/persons/{own['person_id']}/faces", **_upload("b's face")(w))  # type: ignore[arg-type]
    own["face_id"] = _ok(enrolled, 201)["face"]["id"]
    seen = _ok(b.post(f"/v1/collections/{own['collection_id']}/identify", **_upload("b's stranger")(w)))  # type: ignore[arg-type]
    own["cluster_id"] = _cluster_of(b, seen["faces"][0]["face_id"])
    receipt = b.post("/v1/index", files={"file": ("r.jpg", w.files["b's receipt"])}, data={"source": "b/r.jpg"})
    own["item_id"] = _ok(receipt, 201)["item_id"]


@pytest.fixture()
def world(server: Server, eval_dir: Path) -> Iterator[World]:
    gallery, deepface = eval_dir / "faces-gallery" / "examples", eval_dir / "faces-deepface" / "images"
    paths = {
        "enrolled": deepface / "img4.jpg",  # A's person (Angelina Jolie)
        "indexed": deepface / "img1.jpg",  # another photo of her, indexed by A
        "stranger": gallery / "lin-manuel-miranda.png",  # seen by A's camera, unknown
        "analysed": gallery / "knn_examples" / "train" / "biden" / "biden.jpg",
        "detected": gallery / "knn_examples" / "train" / "biden" / "biden2.jpg",
        "receipt": eval_dir / "ocr-sroie" / "img" / "006.jpg",
        "b's face": gallery / "knn_examples" / "train" / "obama" / "obama.jpg",
        "b's stranger": gallery / "alex-lacamoire.png",
        "b's receipt": eval_dir / "ocr-sroie" / "img" / "000.jpg",
    }
    company = json.loads((eval_dir / "ocr-sroie" / "key" / "006.json").read_text())["company"]
    w = World(server, {k: p.read_bytes() for k, p in paths.items()}, company)
    try:
        _tenant_a(w, eval_dir)
        _tenant_b(w)
        yield w
    finally:
        for client in w.clients.values():
            client.close()


def _rows_of(server: Server, tenant_id: str) -> dict[str, int]:
    """How many rows of each table in `TABLES` the tenant has, read behind the server's back."""
    sql = {t: f"SELECT COUNT(*) FROM {t} WHERE tenant_id = ?" for t in TABLES}
    if server.database_url:
        return {t: int(postgres_rows(server.database_url, q.replace("?", "%s"), (tenant_id,))[0][0])  # type: ignore[call-overload]
                for t, q in sql.items()}  # fmt: skip
    with closing(sqlite3.connect(server.data_dir / DB_FILENAME)) as db:
        return {t: int(db.execute(q, (tenant_id,)).fetchone()[0]) for t, q in sql.items()}


def _what_a_sees(w: World) -> dict[str, Any]:
    """A's own reads of everything it stored: the same before and after B's walk."""
    ids = w.ids
    reads = [
        f"/v1/persons/{ids['person_id']}",
        f"/v1/faces/{ids['face_id']}",
        f"/v1/faces/{ids['stranger_face']}",
        "/v1/collections",
        f"/v1/collections/{ids['collection_id']}/persons",
        "/v1/keys",
        "/v1/clusters?min_size=1",
        "/v1/items",
        f"/v1/items/{ids['item_id']}",
        "/v1/search/duplicates",
        f"/console/api/persons?collection_id={ids['collection_id']}",
        f"/console/api/persons/{ids['person_id']}/faces",
        "/console/api/clusters?min_size=1",
    ]
    return {path: _shape(w.a.get(path), []) for path in reads}


def _a_still_finds_everything(w: World) -> None:
    """What A stored is there for A: not a vacuous 404 for everyone."""
    a, ids = w.a, w.ids
    person = _ok(a.get(f"/v1/persons/{ids['person_id']}"))
    assert person["name"] == NAME and ids["face_id"] in [f["id"] for f in person["faces"]]
    assert _ok(a.get(f"/v1/faces/{ids['stranger_face']}"))["person_id"] is None
    assert ids["collection_id"] in [c["id"] for c in _ok(a.get("/v1/collections"))["collections"]]
    keys = {k["id"]: k for k in _ok(a.get("/v1/keys"))["keys"]}
    assert ids["key_id"] in keys and keys[ids["key_id"]]["revoked_at"] is None
    assert ids["cluster_id"] == _cluster_of(a, ids["stranger_face"])
    items = {i["id"] for i in _ok(a.get("/v1/items"))["items"]}
    assert items == {ids["item_id"], ids["album/1.jpg"], ids["album/1 copy.jpg"]}
    assert _ok(a.get("/v1/search", params={"q": w.company}))["hits"][0]["item"]["id"] == ids["item_id"]
    mine = _ok(a.get("/v1/search", params={"person": NAME}))["hits"]
    assert {h["item"]["id"] for h in mine} == {ids["album/1.jpg"], ids["album/1 copy.jpg"]}
    groups = _ok(a.get("/v1/search/duplicates"))["groups"]
    assert [{i["id"] for i in g} for g in groups] == [{ids["album/1.jpg"], ids["album/1 copy.jpg"]}]
    probe = {**_upload("indexed")(w), "data": {"keep": "false"}}
    who = _ok(a.post(f"/v1/collections/{ids['collection_id']}/identify", **probe))
    assert [f["decision"] for f in who["faces"]] == [ids["person_id"]]
    assert _ok(a.get("/v1/usage"))["totals"]["requests"] == w.billed["a"]
    assert a.get(f"/console/api/items/{ids['album/1.jpg']}/thumbnail").status_code == 200
    console = a.get("/console/api/persons", params={"collection_id": ids["collection_id"]})
    assert [p["id"] for p in _ok(console)["persons"]] == [ids["person_id"]]
    assert ids["face_id"] in a.get(f"/console/api/persons/{ids['person_id']}/faces").text
    crop = a.get(f"/console/api/crops/{ids['face_id']}")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"


def test_tenant_b_never_sees_changes_or_deletes_tenant_as_data(world: World) -> None:
    rows, seen = _rows_of(world.server, world.ids["tenant_id"]), _what_a_sees(world)
    assert all(rows.values()), rows  # A has rows in every table counted
    for (method, path), check in ROUTES.items():
        check(world, method, path)
    assert _rows_of(world.server, world.ids["tenant_id"]) == rows
    assert _rows_of(world.server, world.own["tenant_id"]) == dict.fromkeys(TABLES, 0)  # B erased itself
    assert _what_a_sees(world) == seen
    _a_still_finds_everything(world)
