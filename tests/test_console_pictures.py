"""Pictures for the console, against a real `frugalsense serve` on 127.0.0.1: each indexed picture's thumbnail
(written by POST /v1/index and by the CLI, served only to its tenant, erased with its item), on SQLite and on
PostgreSQL; and POST /v1/analyze with ``previews``: a JPEG of each PDF page and video frame, its boxes landing on
what they mark, at most `MAX_PREVIEWS` of them, billed as decoding."""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from _server import Server
from frugalsense.api.routes.analyze import MAX_PREVIEWS, PREVIEW_SIDE
from frugalsense.api.schemas import Analysis
from frugalsense.search.thumbnails import THUMBNAIL_SIDE


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, server_database: str | None
) -> Iterator[Server]:
    """A server on each store backend, for the thumbnails (files in the data folder whatever the database)."""
    env = {"FRUGALSENSE_RATE_PER_KEY": "0"}
    srv = Server(tmp_path_factory.mktemp("pictures"), model_dir, env=env, database_url=server_database).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def analyst(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[httpx.Client]:
    """A server on SQLite for the analysis previews (no store involved), and a client with its admin key."""
    srv = Server(tmp_path_factory.mktemp("previews"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    with httpx.Client(base_url=srv.url, headers=_auth(srv.admin_key), timeout=300) as client:
        yield client
    srv.kill()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _pdf(pictures: list[Path], resolution: float = 150, side: int | None = None) -> bytes:
    """A PDF with one real picture per page (optionally shrunk to ``side`` pixels), as a scanner would make."""
    images = [Image.open(p).convert("RGB") for p in pictures]
    if side is not None:
        for image in images:
            image.thumbnail((side, side))
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=resolution)
    return buf.getvalue()


def _silence(seconds: float = 1.0) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\0\0" * int(16_000 * seconds))
    return buf.getvalue()


def _picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two pictures per channel (0-255), ``b`` resized to ``a``'s size."""
    left = np.asarray(a, np.float32)
    right = np.asarray(b.convert("RGB").resize(a.size, Image.Resampling.BILINEAR), np.float32)
    return float(np.abs(left - right).mean())


def _index(client: httpx.Client, path: Path, source: str, data: bytes | None = None) -> dict[str, Any]:
    content = data if data is not None else path.read_bytes()
    response = client.post("/v1/index", files={"file": (path.name, content)}, data={"source": source})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _thumbnail(client: httpx.Client, item_id: str) -> httpx.Response:
    return client.get(f"/console/api/items/{item_id}/thumbnail")


def test_indexed_pictures_get_a_private_thumbnail_that_goes_with_the_item(server: Server, eval_dir: Path) -> None:
    hen = eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG"
    receipts = eval_dir / "ocr-sroie" / "img"
    scan = _pdf([receipts / "000.jpg", receipts / "006.jpg"])
    owner_key, rival_key = server.tenant_key("farm"), server.tenant_key("rival farm")
    with httpx.Client(base_url=server.url, headers=_auth(owner_key), timeout=300) as owner:
        tenant_id = owner.get("/v1/keys").json()["keys"][0]["tenant_id"]
        photo = _index(owner, hen, "yard/hen.jpg")
        document = _index(owner, receipts / "scan.pdf", "office/scan.pdf", scan)
        recording = _index(owner, Path("quiet.wav"), "office/quiet.wav", _silence())
        assert (photo["modality"], document["modality"], recording["modality"]) == ("image", "document", "audio")

        # The photo's thumbnail is the photo, small; the PDF's is its first page; a recording has none.
        got = _thumbnail(owner, photo["item_id"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        small = _picture(got.content)
        original = Image.open(hen)
        assert max(small.size) == THUMBNAIL_SIDE
        assert small.width / small.height == pytest.approx(original.width / original.height, rel=0.02)
        assert _difference(small, original) < 10
        assert _difference(small, Image.open(receipts / "000.jpg")) > 30
        page = _picture(_thumbnail(owner, document["item_id"]).content)
        first = Image.open(receipts / "000.jpg")
        assert page.width / page.height == pytest.approx(first.width / first.height, rel=0.02)
        assert _difference(page, first) < 15
        assert _difference(page, original) > 30
        assert _thumbnail(owner, recording["item_id"]).status_code == 404

        # Private files, like the face crops.
        stored = server.data_dir / "thumbnails" / tenant_id / f"{photo['item_id']}.jpg"
        assert stored.read_bytes() == got.content
        assert [oct(p.stat().st_mode & 0o777) for p in (stored, stored.parent, stored.parent.parent)] == [
            "0o600",
            "0o700",
            "0o700",
        ]

        # Only the item's tenant sees it: another tenant gets 404 as for any id it does not own; nobody, 401.
        with httpx.Client(base_url=server.url, headers=_auth(rival_key)) as rival:
            assert _thumbnail(rival, photo["item_id"]).status_code == 404
        assert httpx.get(f"{server.url}/console/api/items/{photo['item_id']}/thumbnail").status_code == 401

        # A file changed under the same key replaces its item: the old thumbnail goes, the new one shows it.
        changed = _index(owner, hen, "yard/hen.jpg", (receipts / "012.jpg").read_bytes())
        assert changed["status"] == "updated" and changed["item_id"] != photo["item_id"]
        assert not stored.exists() and _thumbnail(owner, photo["item_id"]).status_code == 404
        now = _picture(_thumbnail(owner, changed["item_id"]).content)
        assert _difference(now, Image.open(receipts / "012.jpg")) < 15

        # An item indexed before thumbnails were kept gets one when its unchanged file is indexed again.
        renewed = server.data_dir / "thumbnails" / tenant_id / f"{document['item_id']}.jpg"
        renewed.unlink()
        assert _thumbnail(owner, document["item_id"]).status_code == 404
        again = _index(owner, receipts / "scan.pdf", "office/scan.pdf", scan)
        assert (again["status"], again["item_id"]) == ("unchanged", document["item_id"])
        assert _difference(_picture(_thumbnail(owner, document["item_id"]).content), first) < 15

        # Deleting the item deletes its thumbnail.
        assert owner.delete(f"/v1/items/{document['item_id']}").status_code == 200
        assert not renewed.exists() and _thumbnail(owner, document["item_id"]).status_code == 404


def test_a_signed_in_console_session_gets_thumbnails_of_what_the_cli_indexed(
    server: Server, eval_dir: Path
) -> None:
    key = server.tenant_key("cli shop")
    photo = eval_dir / "zeroshot-imagenet" / "images" / "n01440764_tench.JPEG"
    summary = json.loads(server.cli("index", str(photo), "--tenant", "cli shop", "--json", "-q"))
    assert summary["counts"]["added"] == 1
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        signed = browser.post("/console/session", json={"key": key}, headers={"Origin": server.url})
        assert signed.status_code == 200 and "fs_session" in browser.cookies
        (item,) = browser.get("/v1/items").json()["items"]
        got = _thumbnail(browser, item["id"])
        assert got.status_code == 200
        assert _difference(_picture(got.content), Image.open(photo)) < 10
        csrf = {"X-CSRF-Token": signed.json()["csrf"]}
        assert browser.delete("/console/session", headers=csrf).status_code == 204
        assert _thumbnail(browser, item["id"]).status_code == 401


def _analyze(client: httpx.Client, name: str, data: bytes, **fields: str) -> dict[str, Any]:
    response = client.post("/v1/analyze", files={"file": (name, data)}, data=fields)
    assert response.status_code == 200, response.text
    Analysis.model_validate(response.json())  # what /openapi.json says, previews and all
    return dict(response.json())


def _preview(page: dict[str, Any]) -> Image.Image:
    preview = page["preview"]
    image = _picture(base64.b64decode(preview["jpeg_base64"]))
    assert image.size == (preview["width"], preview["height"])
    assert max(image.size) <= PREVIEW_SIDE
    assert preview["width"] == pytest.approx(page["width"] * preview["scale"], abs=1)
    assert preview["height"] == pytest.approx(page["height"] * preview["scale"], abs=1)
    return image


def test_pdf_pages_come_back_as_pictures_with_their_text_lines_on_the_words(
    analyst: httpx.Client, eval_dir: Path
) -> None:
    receipts = eval_dir / "ocr-sroie" / "img"
    pages = [receipts / "000.jpg", receipts / "006.jpg"]
    scan = _pdf(pages, resolution=72)  # rendered at 150 dpi: pages of about 960 x 2300, previews at 0.55 to 0.6
    plain = _analyze(analyst, "scan.pdf", scan, features="text")
    assert all("preview" not in p for p in plain["pages"]) and "previews_omitted" not in plain  # unchanged default

    shown = _analyze(analyst, "scan.pdf", scan, features="text", previews="true")
    assert [p["page"] for p in shown["pages"]] == [1, 2] and shown["previews_omitted"] == 0
    for page, original in zip(shown["pages"], pages, strict=True):
        picture = _preview(page)
        assert max(picture.size) == PREVIEW_SIDE and page["preview"]["scale"] < 0.65
        assert _difference(picture, Image.open(original)) < 15  # the page itself, not another
        # The text lines, taken onto the preview by its scale, sit on ink: darker than the page around them.
        grey = np.asarray(picture.convert("L"), np.float32)
        scale = page["preview"]["scale"]
        inked = np.zeros(grey.shape, bool)
        for line in page["text"]:
            xs = [round(x * scale) for x, _ in line["quad"]]
            ys = [round(y * scale) for _, y in line["quad"]]
            inked[max(0, min(ys)) : max(ys) + 1, max(0, min(xs)) : max(xs) + 1] = True
        assert len(page["text"]) >= 5
        assert grey[inked].mean() < grey[~inked].mean() - 20
    notes = [s for s in shown["receipt"]["stages"] if s["note"] == "preview"]
    assert [s["stage"] for s in notes] == ["decode", "decode"]  # billed as decoding: "shared" in the ledger


def test_at_most_the_first_pages_get_a_picture(analyst: httpx.Client, eval_dir: Path) -> None:
    hen = eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG"
    many = MAX_PREVIEWS + 2
    shown = _analyze(analyst, "hens.pdf", _pdf([hen] * many, side=160), features="moderation", previews="true")
    assert len(shown["pages"]) == many and shown["previews_omitted"] == 2
    assert ["preview" in p for p in shown["pages"]] == [True] * MAX_PREVIEWS + [False, False]
    assert sum(s["note"] == "preview" for s in shown["receipt"]["stages"]) == MAX_PREVIEWS
    refused = analyst.post("/v1/analyze", files={"file": ("hen.jpg", hen.read_bytes())}, data={"previews": "hm"})
    assert refused.status_code == 422 and "previews" in refused.json()["detail"]


def _fit(path: Path, width: int, height: int) -> np.ndarray[Any, Any]:
    picture = cv2.imread(str(path))
    ratio = min(width / picture.shape[1], height / picture.shape[0])
    small = cv2.resize(picture, (int(picture.shape[1] * ratio), int(picture.shape[0] * ratio)))
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def test_video_frames_come_back_as_pictures_with_their_face_boxes(
    analyst: httpx.Client, eval_dir: Path, tmp_path: Path
) -> None:
    """4 s of two people, then 2 s of one, at 2 frames a second; sampled every 2 s: three frames."""
    gallery = eval_dir / "faces-gallery" / "examples"
    video = tmp_path / "door.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 2, (1600, 900))
    assert writer.isOpened(), "OpenCV cannot write MPEG-4 here"
    for path, seconds in ((gallery / "two_people.jpg", 4), (gallery / "obama-720p.jpg", 2)):
        for _ in range(seconds * 2):
            writer.write(_fit(path, 1600, 900))
    writer.release()

    shown = _analyze(analyst, "door.mp4", video.read_bytes(), features="faces", previews="true")
    assert shown["kind"] == "video" and shown["previews_omitted"] == 0
    assert [len(p["faces"]) for p in shown["pages"]] == [2, 2, 1]
    for page in shown["pages"]:
        picture = _preview(page)
        assert picture.size == (PREVIEW_SIDE, 720)  # 1600 x 900 shrunk to 1280 a side
        scale = page["preview"]["scale"]
        for face in page["faces"]:
            box = face["box"]
            left, top = box["x"] * scale, box["y"] * scale
            right, bottom = (box["x"] + box["w"]) * scale, (box["y"] + box["h"]) * scale
            assert 0 <= left < right <= picture.width and 0 <= top < bottom <= picture.height


def test_the_python_client_asks_for_previews(analyst: httpx.Client, eval_dir: Path) -> None:
    from frugalsense.client import Client

    hen = eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG"
    auth = analyst.headers["Authorization"].removeprefix("Bearer ")
    client = Client(str(analyst.base_url), api_key=auth)
    plain = client.analyze(hen, ["moderation"])
    shown = client.analyze(hen, ["moderation"], previews=True)
    assert "preview" not in plain["pages"][0]
    preview = shown["pages"][0]["preview"]
    assert _preview(shown["pages"][0]).size == (preview["width"], preview["height"])
