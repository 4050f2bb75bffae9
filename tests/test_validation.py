"""What callers may store is checked before anything is written, against a real server on 127.0.0.1 and in the
library: metadata of finite numbers only, nested and sized within the settings, names and item sources within
their lengths. A refused request stores nothing; rows an older version stored are read back without a 500."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from _server import Server
from frugalsense.errors import InvalidRequestError
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, SQLiteStore
from frugalsense.store.validation import Limits

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("validation"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


@pytest.fixture()
def http(server: Server) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        yield client


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _new_collection(http: httpx.Client, name: str) -> str:
    response = http.post("/v1/collections", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("case", "body", "says"),
    [
        ("NaN", b'{"name": "Ada", "metadata": {"height": NaN}}', "finite"),
        ("Infinity", b'{"name": "Ada", "metadata": {"score": [1, -Infinity]}}', "finite"),
        ("900 deep", json.dumps({"name": "Ada", "metadata": _nested(900)}).encode(), "FRUGALSENSE_MAX_JSON_DEPTH"),
        ("20 KB", json.dumps({"name": "Ada", "metadata": {"notes": "x" * 20_000}}).encode(), "MAX_METADATA_BYTES"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    http: httpx.Client, case: str, body: bytes, says: str
) -> None:
    collection = _new_collection(http, f"metadata {case}")
    response = http.post(
        f"/v1/collections/{collection}/persons", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    listed = http.get(f"/v1/collections/{collection}/persons")
    assert listed.status_code == 200 and listed.json()["persons"] == []
    assert http.get("/v1/collections").status_code == 200


def test_metadata_within_the_limits_is_stored_as_sent(http: httpx.Client) -> None:
    collection = _new_collection(http, "metadata fine")
    metadata = {"badge": 17, "tags": ["a", "b"], "deep": _nested(30), "height": 1.5e300}
    response = http.post(f"/v1/collections/{collection}/persons", json={"name": "Ada", "metadata": metadata})
    assert response.status_code == 201, response.text
    assert http.get(f"/v1/persons/{response.json()['id']}").json()["metadata"] == metadata


def test_rows_an_older_version_stored_are_read_without_a_500(http: httpx.Client, server: Server) -> None:
    collection = _new_collection(http, "legacy")
    tenant = http.get("/v1/keys").json()["keys"][0]["tenant_id"]
    deep = '{"a": ' * 900 + "1" + "}" * 900
    with closing(sqlite3.connect(server.data_dir / DB_FILENAME)) as db:
        db.executemany(
            "INSERT INTO persons VALUES (?, ?, ?, ?, ?, 'then')",
            [
                ("per_legacynan00", tenant, collection, "Nan", '{"height": NaN, "ok": 2}'),
                ("per_legacydeep0", tenant, collection, "Deep", deep),
            ],
        )
        db.commit()
    listed = http.get(f"/v1/collections/{collection}/persons")
    assert listed.status_code == 200, listed.text
    persons = {p["name"]: p for p in listed.json()["persons"]}
    assert persons["Nan"]["metadata"] == {"height": None, "ok": 2}
    shown = http.get("/v1/persons/per_legacydeep0")
    assert shown.status_code == 200, shown.text
    assert json.dumps(shown.json()["metadata"]).count("{") <= Settings().max_json_depth


def _index_upload(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post("/v1/index", json=body)


def test_a_ten_megabyte_source_or_name_is_refused_and_nothing_is_stored(
    http: httpx.Client, eval_dir: Path
) -> None:
    photo = base64.b64encode((eval_dir / "faces-deepface" / "images" / "img3.jpg").read_bytes()).decode()
    before = http.get("/v1/items").json()["items"]
    for body in ({"file": photo, "source": "s" * TEN_MB}, {"file": photo, "name": "n" * TEN_MB}):
        response = _index_upload(http, body)
        assert response.status_code in (413, 422), response.text[:300]
        assert len(response.content) < 10_000  # the refusal does not echo the 10 MB back
    listed = http.get("/v1/items")
    assert listed.status_code == 200 and len(listed.content) < 100_000
    assert listed.json()["items"] == before
    fine = _index_upload(http, {"file": photo, "source": "s" * 1000, "name": "n" * 200})
    assert fine.status_code == 201, fine.text[:300]


def test_the_library_checks_before_it_writes(tmp_path: Path) -> None:
    limits = Limits(name_chars=10, source_chars=20, metadata_bytes=64, json_depth=3)
    store = SQLiteStore(tmp_path / DB_FILENAME, limits=limits)
    tenant = store.create_tenant("acme").id
    collection = store.create_collection(tenant, "staff").id
    refused: list[tuple[Any, str]] = [
        (lambda: store.create_person(tenant, collection, "Ada", {"x": float("nan")}), "finite"),
        (lambda: store.create_person(tenant, collection, "Ada", _nested(4)), "MAX_JSON_DEPTH"),
        (lambda: store.create_person(tenant, collection, "Ada", {"x": "y" * 100}), "MAX_METADATA_BYTES"),
        (lambda: store.create_person(tenant, collection, "A" * 11, None), "MAX_NAME_CHARS"),
        (lambda: store.create_persons(tenant, collection, ["Ada", "B" * 11]), "MAX_NAME_CHARS"),
        (lambda: store.create_collection(tenant, "C" * 11), "MAX_NAME_CHARS"),
        (lambda: store.promote_cluster(tenant, "clu_x", collection, "D" * 11), "MAX_NAME_CHARS"),
        (lambda: store.create_person(tenant, collection, "Ada", {1: 2}), "keys"),  # type: ignore[dict-item]
    ]
    for call, says in refused:
        with pytest.raises(InvalidRequestError, match=says):
            call()
    assert store.list_persons(tenant) == []
    assert store.create_person(tenant, collection, "Ada", _nested(3)).metadata == _nested(3)
    store.close()
