"""Erasing a tenant over HTTP and from the CLI, against a real server on 127.0.0.1, on SQLite and on PostgreSQL:
its items, faces, keys and files go, down to the bytes of the database files, and the other tenants keep theirs."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from _backends import postgres_files, postgres_rows
from _server import Server
from frugalsense.client import Client
from frugalsense.errors import AuthenticationError
from frugalsense.store import DB_FILENAME

FACES = ("img1.jpg", "img3.jpg")  # faces-deepface: Angelina, Jennifer
ENROLMENT = "img4.jpg"  # another photo of Angelina
PERSON = "Adaline Quennell-Vorst"  # a name no other row holds, looked for in the files


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, server_database: str | None
) -> Iterator[Server]:
    env = {"FRUGALSENSE_RATE_PER_KEY": "0"}
    srv = Server(tmp_path_factory.mktemp("erasure"), model_dir, env=env, database_url=server_database).start()
    yield srv
    srv.kill()


def _database_bytes(server: Server) -> bytes:
    """The database as it is on disk: SQLite's file and its write-ahead log, or every table and index file of the
    PostgreSQL database (after a CHECKPOINT wrote its pages out)."""
    if server.database_url:
        return postgres_files(server.database_url)
    db = server.data_dir / DB_FILENAME
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _rows(server: Server, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if server.database_url:
        return postgres_rows(server.database_url, sql.replace("?", "%s"), params)
    with closing(sqlite3.connect(server.data_dir / DB_FILENAME)) as db:
        return [tuple(row) for row in db.execute(sql, params)]


def _stored_word(server: Server, words: set[str]) -> str:
    """A word of the erased receipt that the database holds in one piece. SQLite: in the full-text index (FTS5
    deletes by adding tombstones, so this is the word a merely deleted row would leave in the file; terms are
    stored prefix-compressed). PostgreSQL: anywhere in its files (long text may be stored compressed)."""
    if server.database_url:
        stored = _database_bytes(server).lower()
    else:
        stored = b"".join(row[0] or b"" for row in _rows(server, "SELECT block FROM item_text_data", ()))
    indexed = sorted(w for w in words if w.encode() in stored)
    assert indexed, f"none of {sorted(words)} is stored in one piece in the database"
    return max(indexed, key=len)


def _words(item: dict[str, Any]) -> set[str]:
    lines = [line["text"] for page in item["result"]["pages"] for line in page.get("text") or []]
    return {w.lower() for w in re.findall(r"[A-Za-z]{6,}", " ".join(lines))}


def _files_named(folder: Path, tenant_id: str) -> list[Path]:
    return [p for p in folder.rglob("*") if tenant_id in p.name] if folder.is_dir() else []


def test_erasing_a_tenant_over_http_leaves_nothing_of_it_and_the_others_intact(
    server: Server, eval_dir: Path
) -> None:
    faces = eval_dir / "faces-deepface" / "images"
    receipts = eval_dir / "ocr-sroie" / "img"
    stayer_company = json.loads((eval_dir / "ocr-sroie" / "key" / "000.json").read_text())["company"]
    with Client(server.url, api_key=server.admin_key) as stayer:
        kept = stayer.index(receipts / "000.jpg", source_key="receipts/000.jpg")
        kept_words = _words(stayer.get_item(kept["item_id"]))

    leaver_key = server.cli("keys", "create", "leaver admin", "--tenant", "leaving", "--admin")
    with Client(server.url, api_key=leaver_key) as leaver:
        tenant_id = leaver.list_keys()["keys"][0]["tenant_id"]
        user_key = leaver.create_key("leaver user")["key"]
        people = leaver.create_collection("people")
        ada = leaver.create_person(people["id"], PERSON)
        leaver.enrol(ada["id"], faces / ENROLMENT)
        photos = [leaver.index(faces / name, source_key=f"album/{name}") for name in FACES]
        receipt = leaver.index(receipts / "006.jpg", source_key="receipts/006.jpg")
        assert [h["item"]["id"] for h in leaver.search("", person=PERSON)["hits"]] == [photos[0]["item_id"]]
        assert leaver.search("a woman", mode="semantic")["hits"]  # loads the vector index: its file is written
        words = _words(leaver.get_item(receipt["item_id"])) - kept_words

    word = _stored_word(server, words)
    vector = _rows(server, "SELECT vector FROM item_vectors WHERE tenant_id = ?", (tenant_id,))[0][0]
    embedding = _rows(server, "SELECT embedding FROM faces WHERE tenant_id = ?", (tenant_id,))[0][0]
    vector, embedding = bytes(vector), bytes(embedding)
    before = _database_bytes(server)
    present = [word.encode() in before.lower(), vector in before, embedding in before, PERSON.encode() in before]
    assert present == [True, True, True, True]
    assert _files_named(server.data_dir / "search", tenant_id)
    assert (server.data_dir / "crops" / tenant_id).is_dir()
    assert len(list((server.data_dir / "thumbnails" / tenant_id).glob("*.jpg"))) == 3  # two photos, a receipt

    with Client(server.url, api_key=user_key) as user, pytest.raises(AuthenticationError):
        user.erase_tenant()  # an admin key only
    with Client(server.url, api_key=leaver_key) as leaver:
        erased = leaver.erase_tenant()
    assert erased["erased"]["id"] == tenant_id and erased["erased"]["name"] == "leaving"
    assert erased["items"] == 3 and erased["faces"] == 3 and erased["vectors"] >= 3
    assert (erased["persons"], erased["collections"], erased["keys"]) == (1, 1, 2)
    assert erased["vector_files"] >= 1

    for key in (leaver_key, user_key):
        with Client(server.url, api_key=key) as gone, pytest.raises(AuthenticationError):
            gone.list_items()
    with Client(server.url, api_key=server.admin_key) as stayer:
        assert [i["id"] for i in stayer.list_items()["items"]] == [kept["item_id"]]
        assert stayer.search(stayer_company, top_k=1)["hits"][0]["item"]["id"] == kept["item_id"]
        assert stayer.get_item(kept["item_id"])["source"] == "receipts/000.jpg"

    assert _files_named(server.data_dir / "search", tenant_id) == []
    assert _files_named(server.data_dir / "crops", tenant_id) == []
    assert not (server.data_dir / "crops" / tenant_id).exists()
    assert not (server.data_dir / "thumbnails" / tenant_id).exists()
    kept_thumbnail = f"{server.url}/console/api/items/{kept['item_id']}/thumbnail"
    assert httpx.get(kept_thumbnail, headers={"Authorization": f"Bearer {server.admin_key}"}).status_code == 200
    after = _database_bytes(server)
    left = {
        "word": word.encode() in after.lower(),
        "vector": vector in after,
        "face embedding": embedding in after,
        "person's name": PERSON.encode() in after,
    }
    assert not any(left.values()), f"still in the database files: {left} (word {word!r})"
    for table in (
        "items",
        "item_vectors",
        "item_labels",
        "item_faces",
        "faces",
        "persons",
        "api_keys",
        "item_text",
    ):
        assert _rows(server, f"SELECT COUNT(*) FROM {table} WHERE tenant_id = ?", (tenant_id,)) == [(0,)]


def test_the_cli_lists_tenants_and_erases_one_only_when_told_yes(server: Server, eval_dir: Path) -> None:
    key = server.cli("keys", "create", "brief", "--tenant", "short-lived", "--admin")
    with Client(server.url, api_key=key) as brief:
        brief.index(eval_dir / "ocr-sroie" / "img" / "012.jpg", source_key="receipts/012.jpg")
    listed = {t["name"]: t for t in json.loads(server.cli("tenants", "list", "--json"))}
    assert listed["short-lived"]["keys"] == 1 and "default" in listed

    refused = subprocess.run(
        server.command("tenants", "erase", "short-lived"), env=server.environment(), capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--yes" in refused.stderr
    with Client(server.url, api_key=key) as brief:
        assert len(brief.list_items()["items"]) == 1

    erased = json.loads(server.cli("tenants", "erase", "short-lived", "--yes", "--json"))
    assert erased["erased"]["id"] == listed["short-lived"]["id"] and erased["items"] == 1
    assert "short-lived" not in {t["name"] for t in json.loads(server.cli("tenants", "list", "--json"))}
    with Client(server.url, api_key=key) as gone, pytest.raises(AuthenticationError):
        gone.list_items()
