"""Erasing a person, a collection, a face or an item over HTTP, against a real server on 127.0.0.1 with real
faces (faces-deepface): afterwards no file under the data folder (database, write-ahead log, shared memory,
vector snapshots, crops, item thumbnails) holds the erased name, ids, embedding or thumbnail bytes, and stored
item results no longer name the person, their candidates or their similarity."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from _server import Server
from frugalsense.client import Client
from frugalsense.store import DB_FILENAME

# Each test has photos of its own: the same photo gives the same embedding bytes, which would then be found in
# another test's rows. Angelina is enrolled; Jennifer never is (her face stays, but must lose the candidates).
PHOTOS = {
    "person": ("img4.jpg", "img1.jpg", "img3.jpg"),
    "collection": ("img5.jpg", "img2.jpg", "img12.jpg"),
    "face": ("img6.jpg", "", "img53.jpg"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("erase-all"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


@pytest.fixture()
def faces(eval_dir: Path) -> Path:
    return eval_dir / "faces-deepface" / "images"


def _holding(data_dir: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """For each needle, the files under the data folder whose bytes hold it (every file, whatever its kind)."""
    files = {p: p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}
    return {
        what: [str(p.relative_to(data_dir)) for p, data in files.items() if needle in data]
        for what, needle in needles.items()
    }


def _rows(data_dir: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{data_dir / DB_FILENAME}?mode=ro", uri=True)) as db:
        return db.execute(sql, params).fetchall()


def _tenant_key(server: Server, tenant: str) -> str:
    return server.cli("keys", "create", f"{tenant} admin", "--tenant", tenant, "--admin")


def _face_secrets(data_dir: Path, person_id: str) -> dict[str, bytes]:
    """The ids and every stored embedding (SFace and dlib) of the faces attributed to a person."""
    rows = _rows(data_dir, "SELECT id, embedding FROM faces WHERE person_id = ?", (person_id,))
    second = _rows(
        data_dir,
        "SELECT e.vector FROM face_embeddings e JOIN faces f ON f.id = e.face_id WHERE f.person_id = ?",
        (person_id,),
    )
    found = {f"face id {face_id}": face_id.encode() for face_id, _ in rows}
    found |= {f"embedding of {face_id}": bytes(blob) for face_id, blob in rows}
    found |= {f"dlib embedding {n}": bytes(blob) for n, (blob,) in enumerate(second)}
    return found


def _mentions(value: Any, *needles: str) -> list[str]:
    text = json.dumps(value)
    return [n for n in needles if n in text]


def test_erasing_a_person_leaves_no_name_id_embedding_or_similarity_anywhere(server: Server, faces: Path) -> None:
    name, badge = "Zenobia Quarrington", "badge-ZQ-44179"
    enrolment, sighting, stranger_photo = PHOTOS["person"]
    with Client(server.url, api_key=_tenant_key(server, "person-erasure")) as fs:
        people = fs.create_collection("people")
        person = fs.create_person(people["id"], name, {"badge": badge})
        fs.enrol(person["id"], faces / enrolment)
        her = fs.index(faces / sighting, source_key="album/her.jpg", collection_id=people["id"])
        other = fs.index(faces / stranger_photo, source_key="album/other.jpg", collection_id=people["id"])
        assert fs.search("a person", mode="semantic")["hits"]  # writes the vector snapshot too

        shown = fs.get_item(her["item_id"])
        assert shown["result"]["pages"][0]["faces"][0]["decision"] == person["id"]
        stranger = fs.get_item(other["item_id"])["result"]["pages"][0]["faces"][0]
        assert stranger["decision"] == "unknown" and stranger["candidates"][0]["person_id"] == person["id"]
        secrets = {"name": name.encode(), "person id": person["id"].encode(), "metadata": badge.encode()}
        secrets |= _face_secrets(server.data_dir, person["id"])
        assert len(secrets) >= 3 + 2 * 2  # enrolled face and sighting, with their embeddings
        before = _holding(server.data_dir, secrets)
        assert all(before.values()), f"not on disk before the erasure, so the check cannot fail: {before}"

        erased = fs.delete_person(person["id"])
        assert erased["faces"] == 2 and erased["persons"] == 1

        left = {what: files for what, files in _holding(server.data_dir, secrets).items() if files}
        assert not left, f"still on disk after the erasure: {left}"
        assert not list((server.data_dir / "crops").rglob(f"*{person['id']}*"))
        for item_id in (her["item_id"], other["item_id"]):
            item = fs.get_item(item_id)
            assert _mentions(item, name, person["id"], badge) == []
        kept = fs.get_item(other["item_id"])["result"]["pages"][0]["faces"]
        assert len(kept) == 1 and kept[0]["candidates"] == [] and kept[0]["similarity"] == 0.0
        assert fs.get_item(her["item_id"])["result"]["pages"][0]["faces"] == []  # her sighting went with her


def test_erasing_a_collection_leaves_nothing_of_its_people(server: Server, faces: Path) -> None:
    collection_name, name = "Quillfeather staff", "Ottoline Brackenbury"
    enrolment, sighting, stranger_photo = PHOTOS["collection"]
    with Client(server.url, api_key=_tenant_key(server, "collection-erasure")) as fs:
        staff = fs.create_collection(collection_name)
        person = fs.create_person(staff["id"], name)
        fs.enrol(person["id"], faces / enrolment)
        seen = fs.identify(staff["id"], faces / sighting)["faces"][0]
        assert seen["decision"] == person["id"]
        item = fs.index(faces / stranger_photo, source_key="door/1.jpg", collection_id=staff["id"])
        stranger = fs.get_item(item["item_id"])["result"]["pages"][0]["faces"][0]
        secrets = {
            "collection name": collection_name.encode(),
            "name": name.encode(),
            "person id": person["id"].encode(),
            "stranger's face id": stranger["face_id"].encode(),
        }
        secrets |= _face_secrets(server.data_dir, person["id"])
        before = _holding(server.data_dir, secrets)
        assert all(before.values()), before

        erased = fs.delete_collection(staff["id"])
        assert erased["collections"] == 1 and erased["faces"] == 3  # enrolled, identified, the item's stranger

        left = {what: files for what, files in _holding(server.data_dir, secrets).items() if files}
        assert not left, f"still on disk after the erasure: {left}"
        assert fs.list_collections()["collections"] == []
        assert fs.get_item(item["item_id"])["result"]["pages"][0]["faces"] == []


def test_erasing_one_face_leaves_no_copy_of_it(server: Server, faces: Path) -> None:
    enrolment, _, stranger_photo = PHOTOS["face"]
    with Client(server.url, api_key=_tenant_key(server, "face-erasure")) as fs:
        people = fs.create_collection("people")
        person = fs.create_person(people["id"], "Philippa")
        enrolled = fs.enrol(person["id"], faces / enrolment)["face"]
        item = fs.index(faces / stranger_photo, source_key="one.jpg", collection_id=people["id"])
        stranger = fs.get_item(item["item_id"])["result"]["pages"][0]["faces"][0]
        secrets: dict[str, bytes] = {}
        for face_id in (enrolled["id"], stranger["face_id"]):
            blob = _rows(server.data_dir, "SELECT embedding FROM faces WHERE id = ?", (face_id,))[0][0]
            secrets |= {f"id {face_id}": face_id.encode(), f"embedding {face_id}": bytes(blob)}
        assert all(_holding(server.data_dir, secrets).values())

        fs.delete_face(enrolled["id"])
        fs.delete_face(stranger["face_id"])

        left = {what: files for what, files in _holding(server.data_dir, secrets).items() if files}
        assert not left, f"still on disk after the erasure: {left}"
        assert fs.get_person(person["id"])["face_count"] == 0
        assert fs.get_item(item["item_id"])["result"]["pages"][0]["faces"] == []


def _words(item: dict[str, Any]) -> set[str]:
    lines = [line["text"] for page in item["result"]["pages"] for line in page.get("text") or []]
    return {w.lower() for w in re.findall(r"[A-Za-z]{6,}", " ".join(lines))}


def test_deleting_an_item_takes_its_vector_out_of_the_snapshot_and_its_words_out_of_the_file(
    server: Server, eval_dir: Path
) -> None:
    receipts = eval_dir / "ocr-sroie" / "img"
    key = _tenant_key(server, "item-erasure")
    with Client(server.url, api_key=key) as fs:
        kept = fs.index(receipts / "000.jpg", source_key="receipts/000.jpg")
        doomed = fs.index(receipts / "012.jpg", source_key="receipts/012.jpg")
        assert fs.search("a receipt", mode="semantic")["hits"]  # loads the vector index: its snapshot is written
        words = _words(fs.get_item(doomed["item_id"])) - _words(fs.get_item(kept["item_id"]))

    # A word of the receipt that the full-text index holds in one piece (terms are stored prefix-compressed):
    # FTS5 deletes by adding tombstones, so this is the word a merely deleted row would leave in the file.
    index = b"".join(row[0] or b"" for row in _rows(server.data_dir, "SELECT block FROM item_text_data", ()))
    indexed = sorted((w for w in words if w.encode() in index), key=len)
    assert indexed, f"none of {sorted(words)} is stored in one piece in the full-text index"
    vector = _rows(server.data_dir, "SELECT vector FROM item_vectors WHERE item_id = ?", (doomed["item_id"],))
    thumbnail = httpx.get(
        f"{server.url}/console/api/items/{doomed['item_id']}/thumbnail", headers={"Authorization": f"Bearer {key}"}
    )
    assert thumbnail.status_code == 200
    secrets = {"vector": bytes(vector[0][0]), "source": b"receipts/012.jpg", "word": indexed[-1].encode()}
    secrets["thumbnail"] = thumbnail.content
    before = _holding(server.data_dir, secrets)
    assert any(p.startswith("search") for p in before["vector"]), before
    assert [p.split("/")[0] for p in before["thumbnail"]] == ["thumbnails"], before
    assert all(before.values()), before

    with Client(server.url, api_key=key) as fs:
        fs.delete_item(doomed["item_id"])
        left = {what: files for what, files in _holding(server.data_dir, secrets).items() if files}
        assert not left, f"still on disk right after the delete: {left}"
        assert [h["item"]["id"] for h in fs.search("a receipt", mode="semantic")["hits"]] == [kept["item_id"]]
