"""The result cache keeps tenants apart: an answer (and its cost) computed for one tenant is never served to
another, neither for the same bytes nor for a resized copy, in the library and over HTTP against a real server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from _server import Server
from frugalsense.analyze import Analyzer
from frugalsense.client import Client
from frugalsense.results import AnalysisResult
from frugalsense.settings import Settings


def _photo(eval_dir: Path) -> bytes:
    return (eval_dir / "faces-lfw" / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg").read_bytes()


def _resized(data: bytes, scale: float = 0.7) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _cache_notes(result: AnalysisResult) -> list[str]:
    return [s.note for s in result.receipt.stages if s.stage == "cache" and s.note.startswith("served")]


def _computed(result: AnalysisResult) -> bool:
    """The faces were found by the models for this request, and the receipt says nothing of anyone else's work."""
    stages = [s.stage for s in result.receipt.stages if s.model]
    notes = " ".join(s.note for s in result.receipt.stages)
    return "face-embedding" in stages and "served from cache" not in notes and "first computed" not in notes


def test_a_tenant_is_never_served_what_another_tenant_uploaded(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings)
    photo = _photo(eval_dir)
    copy = _resized(photo)
    first = analyzer.analyze(photo, ["faces"], tenant="a")
    assert _computed(first) and len(first.pages[0].faces or []) == 1

    same_bytes = analyzer.analyze(photo, ["faces"], tenant="b")
    resized = analyzer.analyze(copy, ["faces"], tenant="c")
    library = analyzer.analyze(photo, ["faces"])  # no tenant: the library's own namespace
    for other in (same_bytes, resized, library):
        assert _computed(other) and _cache_notes(other) == []
        assert len(other.pages[0].faces or []) == 1
    assert same_bytes.pages[0].faces[0].box == first.pages[0].faces[0].box  # type: ignore[index]

    # Each tenant still gets its own answers back from the cache, exact and near-duplicate.
    again = analyzer.analyze(photo, ["faces"], tenant="a")
    assert "exact copy" in " ".join(_cache_notes(again))
    near = analyzer.analyze(copy, ["faces"], tenant="a")
    assert "near-duplicate" in " ".join(_cache_notes(near))
    assert "exact copy" in " ".join(_cache_notes(analyzer.analyze(photo, ["faces"], tenant="b")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("cache-tenants"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}
    ).start()
    yield srv
    srv.kill()


def _notes(body: dict[str, Any]) -> str:
    return json.dumps(body["receipt"]["stages"])


def test_over_http_another_tenants_upload_is_computed_afresh(server: Server, eval_dir: Path) -> None:
    """Needs the /v1/analyze route to pass the caller's tenant to `Analyzer.analyze(..., tenant=...)`."""
    photo = _photo(eval_dir)
    with Client(server.url, api_key=server.admin_key) as owner:
        first = owner.analyze(photo, ["faces"], name="mine.jpg")
        again = owner.analyze(photo, ["faces"], name="mine.jpg")
    assert "served from cache" not in _notes(first)
    assert "served from cache" in _notes(again)  # the cache is on: what follows is not a vacuous pass

    answers = []
    # Two other tenants, so neither is served its own earlier upload: one sends the bytes, one a resized copy.
    for tenant, data in (("b", photo), ("c", _resized(photo))):
        key = server.cli("keys", "create", tenant, "--tenant", tenant, "--admin")
        with Client(server.url, api_key=key) as other:
            answers.append(other.analyze(data, ["faces"], name="theirs.jpg"))
    for body in answers:
        assert "served from cache" not in _notes(body) and "first computed" not in _notes(body)
        assert len(body["pages"][0]["faces"]) == 1
