"""Search over HTTP, through the Python client and the CLI, against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from _server import Server
from frugalsense.client import Client
from frugalsense.errors import InvalidRequestError, NotFoundError, UnsupportedFormatError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("search-api"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


def test_index_search_show_and_delete_through_the_client(server: Server, eval_dir: Path) -> None:
    receipt = eval_dir / "ocr-sroie" / "img" / "006.jpg"
    company = json.loads((eval_dir / "ocr-sroie" / "key" / "006.json").read_text())["company"]
    photo = eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG"
    with Client(server.url, api_key=server.admin_key) as fs:
        indexed = fs.index(receipt, source_key="receipts/006.jpg", captured_at="2019-01-11")
        assert indexed["status"] == "added" and indexed["receipt"]["cpu_seconds"] > 0
        assert fs.index(receipt, source_key="receipts/006.jpg")["status"] == "unchanged"
        hen = fs.index(photo, name="farm.jpg")  # no source key: keyed by its content

        found = fs.search(company, top_k=2)
        assert found["hits"][0]["item"]["id"] == indexed["item_id"]
        assert found["hits"][0]["url"] == f"/v1/items/{indexed['item_id']}"
        assert any(r["kind"] == "words" for r in found["hits"][0]["reasons"])
        assert fs.search(company, modality="audio")["hits"] == []
        assert [h["item"]["id"] for h in fs.search("", until="2019-12-31")["hits"]] == [indexed["item_id"]]

        alike = fs.search_image(photo, top_k=1)
        assert alike["hits"][0]["item"]["id"] == hen["item_id"]
        assert alike["hits"][0]["reasons"][0]["kind"] == "look"

        item = fs.get_item(hen["item_id"])
        assert item["modality"] == "image" and item["result"]["pages"][0]["labels"][0]["name"] == "hen"
        assert fs.delete_item(hen["item_id"])["deleted"] == hen["item_id"]
        with pytest.raises(NotFoundError):
            fs.get_item(hen["item_id"])
        with pytest.raises(InvalidRequestError):
            fs.search("")  # neither a query nor a filter
        with pytest.raises(UnsupportedFormatError):
            fs.index(b"just some words", name="notes.jpg")


def test_another_tenant_sees_none_of_it(server: Server, eval_dir: Path) -> None:
    with Client(server.url, api_key=server.admin_key) as fs:
        mine = fs.index(eval_dir / "ocr-sroie" / "img" / "000.jpg", source_key="receipts/000.jpg")
    other_key = server.cli("keys", "create", "outsider", "--tenant", "other")
    with Client(server.url, api_key=other_key) as other:
        assert other.search("receipt total")["hits"] == []
        with pytest.raises(NotFoundError):
            other.get_item(mine["item_id"])
        with pytest.raises(NotFoundError):
            other.delete_item(mine["item_id"])
    response = httpx.get(f"{server.url}/v1/search", params={"q": "total"})
    assert response.status_code == 401


def test_the_cli_indexes_a_folder_and_the_server_finds_it(server: Server, eval_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("n01440764_tench.JPEG", "n01530575_brambling.JPEG"):
        shutil.copy(eval_dir / "zeroshot-imagenet" / "images" / name, folder / name.split("_", 1)[1].lower())
    summary = json.loads(server.cli("index", str(folder), "--json", "--workers", "1"))
    assert summary["counts"]["added"] == 2
    again = json.loads(server.cli("index", str(folder), "--json"))
    assert again["counts"]["unchanged"] == 2

    (folder / "brambling.jpeg").unlink()
    pruned = json.loads(server.cli("index", str(folder), "--json", "--prune"))
    assert pruned["counts"]["removed"] == 1

    with Client(server.url, api_key=server.admin_key) as fs:
        hits = fs.search("tench", mode="semantic", top_k=1)["hits"]
    assert Path(hits[0]["item"]["source"]).name == "tench.jpeg"
    printed = server.cli("search", "tench", "--top-k", "1")
    assert "tench.jpeg" in printed and "meaning" in printed
    deleted = server.cli("items", "delete", str(folder / "tench.jpeg"))
    assert deleted.startswith("deleted item_")
