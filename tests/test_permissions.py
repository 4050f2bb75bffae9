"""Everything the service writes under its data folder is private to its user (files 0600, folders 0700),
whatever the umask it was started with: checked on a real server on 127.0.0.1 after it stored faces, crops,
items and vector snapshots, and on a data folder an older version left world-readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import Server
from frugalsense.client import Client
from frugalsense.store import DB_FILENAME, SQLiteStore


def _loose(data_dir: Path) -> dict[str, str]:
    """Paths under the data folder (and the folder itself) readable, writable or enterable by anyone else."""
    out: dict[str, str] = {}
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            out[str(path.relative_to(data_dir))] = oct(mode)
    return out


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """Start what the test starts under umask 000: nothing may rely on the umask to hide files."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_a_server_keeps_its_files_private_whatever_the_umask(
    tmp_path: Path, model_dir: Path, eval_dir: Path, open_umask: None
) -> None:
    data_dir = tmp_path / "fresh" / "data"  # created by the server
    server = Server(data_dir, model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    try:
        faces = eval_dir / "faces-deepface" / "images"
        with Client(server.url, api_key=server.admin_key) as fs:
            people = fs.create_collection("people")
            person = fs.create_person(people["id"], "Ada")
            fs.enrol(person["id"], faces / "img4.jpg")
            fs.index(faces / "img1.jpg", source_key="album/1.jpg", collection_id=people["id"])
            assert fs.search("a person", mode="semantic")["hits"]  # writes the vector snapshot
            names = {p.name for p in data_dir.rglob("*")}
            assert {DB_FILENAME, f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm", "crops", "search"} <= names
            assert list(data_dir.glob("crops/*/*.jpg")) and list(data_dir.glob("search/*.npz"))
            assert _loose(data_dir) == {}
    finally:
        server.kill()
    assert _loose(data_dir) == {}


def test_opening_a_database_an_older_version_left_open_makes_it_private(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    SQLiteStore(data_dir / DB_FILENAME).close()
    os.chmod(data_dir, 0o755)
    os.chmod(data_dir / DB_FILENAME, 0o644)
    assert _loose(data_dir) == {".": "0o755", DB_FILENAME: "0o644"}

    store = SQLiteStore(data_dir / DB_FILENAME)
    store.create_tenant("acme")  # the write-ahead log and shared memory appear beside the database
    assert (data_dir / f"{DB_FILENAME}-wal").exists()
    assert _loose(data_dir) == {}
    store.close()
