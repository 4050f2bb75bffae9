"""The vector index file is current after a graceful stop of the server and after ``frugalsense index``, so the
next start reads it instead of rebuilding it from the database (a real server on 127.0.0.1, real models)."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

from _server import Server
from frugalsense.client import Client
from frugalsense.search import SemanticIndex
from frugalsense.search.index import vector_file
from frugalsense.store import DB_FILENAME, SQLiteSearchStore

PHOTOS = ["n01440764_tench", "n01484850_great_white_shark", "n01514859_hen", "n01530575_brambling"]


def _stamp_and_version(data_dir: Path, tenant_id: str, encoder: str) -> tuple[int, int, int, int]:
    """(version stamped on the vector file, its rows, the database's version, the database's vector rows)."""
    snapshot = SemanticIndex.load(vector_file(data_dir, tenant_id, encoder))
    assert snapshot is not None
    store = SQLiteSearchStore(data_dir / DB_FILENAME)
    try:
        stored = store.vectors(tenant_id, encoder)
    finally:
        store.close()
    return snapshot.version, len(snapshot), stored.version, len(stored.parts)


def test_the_vector_file_is_saved_at_shutdown_and_read_at_the_next_start(
    tmp_path: Path, model_dir: Path, eval_dir: Path
) -> None:
    images = eval_dir / "zeroshot-imagenet" / "images"
    data_dir = tmp_path / "data"
    env = {"FRUGALSENSE_RATE_PER_KEY": "0"}
    server = Server(data_dir, model_dir, env=env).start()
    try:
        with Client(server.url, api_key=server.admin_key) as fs:
            tenant_id = fs.list_keys()["keys"][0]["tenant_id"]
            first = fs.index(images / f"{PHOTOS[0]}.JPEG")
            encoder = fs.get_item(first["item_id"])["encoder"]
            assert fs.search("a fish", mode="semantic")["hits"]  # loads the index: its file is written now
            hen = ""
            for name in PHOTOS[1:3]:
                indexed = fs.index(images / f"{name}.JPEG")
                assert indexed["status"] == "added"
                hen = indexed["item_id"]
        path = vector_file(data_dir, tenant_id, encoder)
        written = SemanticIndex.load(path)
        with closing(sqlite3.connect(data_dir / DB_FILENAME)) as db:
            version = db.execute(
                "SELECT version FROM search_state WHERE tenant_id = ? AND encoder = ?", (tenant_id, encoder)
            ).fetchone()[0]
        # Saved at most once a minute while indexing: the file still lacks the last two photos.
        assert written is not None and written.version < version and len(written) == 1
    finally:
        server.kill(signal.SIGTERM)
    assert server.output and not any("Traceback" in line for line in server.output), "".join(server.output)

    stamp, rows, version, stored_rows = _stamp_and_version(data_dir, tenant_id, encoder)
    assert (stamp, rows) == (version, stored_rows) and rows == 3
    saved = path.stat()

    restarted = Server(data_dir, model_dir, env=env).start()
    try:
        with Client(restarted.url, api_key=server.admin_key) as fs:
            hits = fs.search("a hen", mode="semantic", top_k=1)["hits"]
            assert [h["item"]["id"] for h in hits] == [hen]
    finally:
        restarted.kill(signal.SIGINT)
    read = path.stat()
    # Read, not rebuilt: a rebuild writes a new file (a new inode by the atomic replace).
    assert (read.st_ino, read.st_mtime_ns) == (saved.st_ino, saved.st_mtime_ns)


def test_frugalsense_index_leaves_a_current_vector_file(tmp_path: Path, model_dir: Path, eval_dir: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS[:2]:
        shutil.copy(eval_dir / "zeroshot-imagenet" / "images" / f"{name}.JPEG", folder / f"{name}.jpg")
    cli = Server(tmp_path / "data", model_dir)
    summary = json.loads(cli.cli("index", str(folder), "--json", "--workers", "1"))
    assert summary["counts"]["added"] == 2
    with closing(sqlite3.connect(cli.data_dir / DB_FILENAME)) as db:
        tenant_id, encoder = db.execute("SELECT tenant_id, encoder FROM items").fetchone()
    stamp, rows, version, stored_rows = _stamp_and_version(cli.data_dir, tenant_id, encoder)
    assert (stamp, rows) == (version, stored_rows) and rows == 2
