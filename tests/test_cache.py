"""The result cache, through a real `Analyzer` on real photos: what it serves, what it refuses, what it bills."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from frugalsense.analyze import Analyzer, Pipeline
from frugalsense.results import AnalysisResult
from frugalsense.settings import Settings


def _imagenet(eval_dir: Path, count: int) -> list[bytes]:
    base = eval_dir / "zeroshot-imagenet"
    with open(base / "images.csv") as f:
        rows = list(csv.DictReader(f))[:count]
    return [(base / "images" / r["file"]).read_bytes() for r in rows]


def _lfw_face(eval_dir: Path) -> bytes:
    return next(iter(sorted((eval_dir / "faces-lfw" / "images").rglob("*.jpg")))).read_bytes()


def _copy(data: bytes, *, scale: float = 1.0, trim: float = 0.0, quality: int = 70) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    img = img.crop((round(trim * w), round(trim * h), w, h))
    img = img.resize((round(img.width * scale), round(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _served(result: AnalysisResult) -> str:
    """The cache's note when the answer came from the cache, else ''."""
    notes = [s.note for s in result.receipt.stages if s.stage == "cache" and s.note.startswith("served")]
    return notes[0] if notes else ""


def _model_stages(result: AnalysisResult) -> list[str]:
    return [s.stage for s in result.receipt.stages if s.model]


def test_same_bytes_are_served_exactly_with_a_cheap_receipt(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings)
    analyzer.warm_up(["labels"])
    data = _imagenet(eval_dir, 1)[0]
    first = analyzer.analyze(data, ["labels"], name="a.jpg")
    second = analyzer.analyze(data, ["labels"], name="b.jpg")
    assert "exact copy" in _served(second) and _served(first) == ""
    assert _model_stages(second) == [] and "labels" in _model_stages(first)
    assert second.pages[0].labels == first.pages[0].labels
    assert second.name == "b.jpg"
    assert second.receipt.cpu_seconds < first.receipt.cpu_seconds
    # The note tells the original cost: everything billed before the answer was stored.
    original = float(re.search(r"first computed for ([0-9.]+) CPU-s", _served(second))[1])  # type: ignore[index]
    before_store = sum(s.cpu_s for s in first.receipt.stages[:-2])
    assert [s.stage for s in first.receipt.stages[-2:]] == ["cache", "overhead"]
    assert original == pytest.approx(before_store, abs=1e-4)


def test_a_resized_reencoded_copy_gets_the_faces_scaled_to_its_size(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings)
    original = _lfw_face(eval_dir)
    first = analyzer.analyze(original, ["faces"])
    copy = _copy(original, scale=0.6, trim=0.04, quality=60)
    served = analyzer.analyze(copy, ["faces"])
    assert "near-duplicate" in _served(served)
    page, fresh_page = (
        served.pages[0],
        Analyzer(settings.model_copy(update={"cache_entries": 0})).analyze(copy, ["faces"]).pages[0],
    )
    assert (page.width, page.height) == (fresh_page.width, fresh_page.height)
    assert len(page.faces or []) == len(first.pages[0].faces or []) >= 1
    # Scaled boxes land on the face (the 4 % trim is not undone, hence a loose bound).
    assert page.faces and fresh_page.faces
    assert page.faces[0].box.iou(fresh_page.faces[0].box) > 0.5
    assert page.faces[0].embedding is not None


@pytest.mark.parametrize(
    ("features", "scale", "served"),
    [
        (["labels"], 0.7, "near-duplicate"),  # a copy: served
        (["labels", "text"], 0.7, ""),  # text never comes from a look-alike
        (None, 0.7, ""),  # the image defaults include text
        (["labels"], 1.0, "near-duplicate"),  # re-encoded only
    ],
)
def test_which_requests_a_near_duplicate_may_answer(
    settings: Settings, eval_dir: Path, features: list[str] | None, scale: float, served: str
) -> None:
    analyzer = Analyzer(settings)
    original = _imagenet(eval_dir, 3)[2]
    analyzer.analyze(original, features)
    again = analyzer.analyze(_copy(original, scale=scale), features)
    assert (served in _served(again)) if served else _served(again) == ""


def test_distinct_photos_are_not_served_each_others_answers(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings)
    photos = _imagenet(eval_dir, 12)
    for data in photos:
        analyzer.analyze(data, ["labels"])
    assert analyzer.cache is not None
    assert analyzer.cache.stats.misses == len(photos)
    assert analyzer.cache.stats.near_hits == analyzer.cache.stats.exact_hits == 0


def test_the_lru_holds_at_most_cache_entries(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings.model_copy(update={"cache_entries": 2}))
    a, b, c = _imagenet(eval_dir, 3)
    for data in (a, b, c):
        analyzer.analyze(data, ["labels"])
    assert analyzer.cache is not None and len(analyzer.cache) == 2 and analyzer.cache.stats.evictions == 1
    assert _served(analyzer.analyze(c, ["labels"]))  # kept
    assert _served(analyzer.analyze(a, ["labels"])) == ""  # evicted, computed again


def test_callers_cannot_change_what_the_cache_serves(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings)
    data = _imagenet(eval_dir, 1)[0]
    first = analyzer.analyze(data, ["labels"])
    expected = list(first.pages[0].labels or [])
    first.pages[0].labels = []
    assert analyzer.analyze(data, ["labels"]).pages[0].labels == expected


def test_a_different_pipeline_or_no_cache_means_computing_again(settings: Settings, eval_dir: Path) -> None:
    data = _imagenet(eval_dir, 1)[0]
    analyzer = Analyzer(settings)
    analyzer.analyze(data, ["labels"])
    analyzer.pipeline = Pipeline(top_k=3)
    changed = analyzer.analyze(data, ["labels"])
    assert _served(changed) == "" and len(changed.pages[0].labels or []) == 3
    off = Analyzer(settings.model_copy(update={"cache_entries": 0}))
    assert off.cache is None
    assert all(_served(off.analyze(data, ["labels"])) == "" for _ in range(2))
