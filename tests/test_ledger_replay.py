"""The receipts add up: a small mixed replay through one `Analyzer`, against the process's own CPU count.

bench/ledger.py runs the 1,000-request version; over it the receipts came to 0.994 of getrusage's user+sys.
Here ~60 requests (photos with different feature sets, repeats and re-encoded copies served by the cache, a
receipt read by OCR, the bundled voice note) must land within 10 % of `time.process_time`.
"""

from __future__ import annotations

import csv
import gc
import io
import time
from pathlib import Path

import pytest
from PIL import Image

from frugalsense.analyze import Analyzer
from frugalsense.samples import write_samples
from frugalsense.settings import Settings

FEATURE_SETS: list[list[str]] = [["labels"], ["faces"], ["moderation"], ["faces", "labels", "moderation"]]


def _requests(eval_dir: Path, tmp_path: Path) -> list[tuple[bytes, list[str]]]:
    base = eval_dir / "zeroshot-imagenet"
    with open(base / "images.csv") as f:
        photos = [(base / "images" / r["file"]).read_bytes() for r in list(csv.DictReader(f))[:30]]
    faces = [p.read_bytes() for p in sorted((eval_dir / "faces-lfw" / "images").rglob("*.jpg"))[:12]]
    out = [(data, FEATURE_SETS[i % len(FEATURE_SETS)]) for i, data in enumerate(photos + faces)]
    for data, features in out[:8]:  # the same bytes again: exact hits
        out.append((data, features))
    for data, features in out[8:16]:  # re-encoded copies: near-duplicate hits
        buf = io.BytesIO()
        Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="JPEG", quality=70)
        out.append((buf.getvalue(), features))
    receipt = sorted((eval_dir / "ocr-sroie" / "img").glob("*.jpg"))[0].read_bytes()
    voice = next(p for p in write_samples(tmp_path / "samples") if p.suffix == ".ogg").read_bytes()
    return [*out, (receipt, ["text"]), (voice, ["speech"])]


def test_receipts_add_up_to_the_process_cpu_time(settings: Settings, eval_dir: Path, tmp_path: Path) -> None:
    requests = _requests(eval_dir, tmp_path)
    analyzer = Analyzer(settings)
    analyzer.warm_up(["faces", "labels", "moderation", "text", "speech"])
    for data, features in requests[:: len(requests) // 4]:  # first calls set libraries up lazily
        analyzer.analyze(data, features)
    assert analyzer.cache is not None
    analyzer.cache.clear()

    gc.collect()
    start = time.process_time()
    billed = sum(analyzer.analyze(data, features).receipt.cpu_seconds for data, features in requests)
    spent = time.process_time() - start

    assert analyzer.cache.stats.exact_hits >= 8 and analyzer.cache.stats.near_hits >= 6
    assert billed == pytest.approx(spent, rel=0.10), f"receipts {billed:.3f} CPU-s vs process {spent:.3f} CPU-s"


def test_a_receipt_bills_the_time_between_stages(settings: Settings, eval_dir: Path) -> None:
    analyzer = Analyzer(settings.model_copy(update={"cache_entries": 0}))
    photo = sorted((eval_dir / "zeroshot-imagenet" / "images").glob("*"))[0].read_bytes()
    result = analyzer.analyze(photo, ["labels"])
    stages = [s.stage for s in result.receipt.stages]
    assert stages[0] == "decode" and stages[-1] == "overhead" and "labels" in stages
    # The thread's whole CPU time is on the receipt: metering the call from outside agrees.
    start = time.thread_time()
    again = analyzer.analyze(photo, ["labels"])
    outside = time.thread_time() - start
    assert again.receipt.cpu_seconds == pytest.approx(outside, rel=0.05, abs=2e-4)
