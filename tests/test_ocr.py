"""Text read from real scans: SROIE receipts, Tesseract's test page, and the sample receipt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer, looks_like_scan
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.quality import matched_line_cer, word_recall
from frugalsense.settings import Settings


def receipt_ids(sroie: Path) -> list[str]:
    """Every 10th of the 94 receipts: a fixed, spread-out slice so the test stays under a minute."""
    return [p.stem for p in sorted((sroie / "img").glob("*.jpg"))][::10]


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def _truth_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) == 9:
            lines.append(parts[8])
    return lines


def test_receipts_read_with_bounded_character_error(analyzer: Analyzer, eval_dir: Path) -> None:
    sroie = eval_dir / "ocr-sroie"
    ids = receipt_ids(sroie)
    assert len(ids) == 10
    errors = chars = found = words = 0
    totals_read = 0
    for receipt in ids:
        frame = load(sroie / "img" / f"{receipt}.jpg", analyzer.settings).frames[0]
        lines = analyzer.text(frame, "image", Meter(0.05))
        truth = _truth_lines(sroie / "box" / f"{receipt}.csv")
        e, c = matched_line_cer([line.text for line in lines], truth)
        errors, chars = errors + e, chars + c
        hit, total = word_recall(" ".join(line.text for line in lines), truth)
        found, words = found + hit, words + total
        key = json.loads((sroie / "key" / f"{receipt}.json").read_text())
        totals_read += key["total"].replace(" ", "") in "".join(line.text for line in lines).replace(" ", "")
    # Measured on these 10 receipts: line-matched CER 0.137, word recall 0.873 (Tesseract alone: 0.358 /
    # 0.886, its column splits cost CER; PP-OCR alone: 0.040 / 0.815, it drops spaces between words).
    assert errors / chars < 0.18, f"character error rate {errors / chars:.3f}"
    assert found / words > 0.8, f"word recall {found / words:.3f}"
    assert totals_read >= 8, f"total amount read on {totals_read} receipts"


def test_tesseract_reads_its_own_test_page(analyzer: Analyzer, eval_dir: Path) -> None:
    pages = eval_dir / "ocr-pages"
    frame = load(pages / "phototest.tif", analyzer.settings).frames[0]
    assert looks_like_scan(frame)
    meter = Meter(0.05)
    lines = analyzer.text(frame, "image", meter)
    truth = (pages / "phototest.txt").read_text().splitlines()
    errors, chars = matched_line_cer([line.text for line in lines], truth)
    assert errors / chars < 0.02
    # Scans go to the first document rung of the shipped text profile: the lite PP-OCR, which reads SROIE and
    # FUNSD better than full PP-OCR at about half its CPU (bench/cost_quality.py), and reads this page under
    # 0.02 too; the receipt shows it answered without the full pipeline.
    from frugalsense.profiles import load_profile

    rungs = load_profile("text").rungs
    if rungs[1] == "ppocr-lite":
        assert [s.note for s in meter.receipt.stages if s.stage == "ocr"] == ["lite: detector", "lite: recogniser"]
    else:
        assert lines[0].engine == rungs[1]


def test_photo_without_text_stops_at_the_gate(analyzer: Analyzer, eval_dir: Path) -> None:
    meter = Meter(0.05)
    frame = load(eval_dir / "faces-lfw" / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg", analyzer.settings)
    assert analyzer.text(frame.frames[0], "image", meter) == []
    assert [s.model for s in meter.receipt.stages if s.stage != "load"] == [None, "text-gate"]


def test_sample_receipt_is_read(analyzer: Analyzer, tmp_path: Path) -> None:
    from frugalsense.samples import write_samples

    receipt = write_samples(tmp_path)[1]
    result = analyzer.analyze(receipt, ["text"])
    text = result.pages[0].full_text
    for word in ("HARBOUR", "HARDWARE", "Portsmouth", "TOTAL", "39"):
        assert word in text


def test_two_threads_read_at_once_on_engines_of_their_own(analyzer: Analyzer, eval_dir: Path) -> None:
    """PP-OCR's pipeline keeps state between calls, so each thread borrows its own engine (up to the number of
    workers) instead of waiting behind one lock: two threads reading receipts at once get two engines, and the
    same lines as one thread reading alone."""
    import threading

    from frugalsense.models.ocr import PPOCRv4

    ocr = analyzer.zoo.get("ppocr-v4")
    assert isinstance(ocr, PPOCRv4)
    frames = [
        load(p, analyzer.settings).frames[0] for p in sorted((eval_dir / "ocr-sroie" / "img").glob("*.jpg"))[:4]
    ]
    alone = [[line.text for line in ocr.predict([frame])[0]] for frame in frames]
    together: dict[int, list[str]] = {}
    start = threading.Barrier(2)

    def read(number: int) -> None:
        start.wait()
        for i in range(number, len(frames), 2):
            together[i] = [line.text for line in ocr.predict([frames[i]])[0]]

    threads = [threading.Thread(target=read, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [together[i] for i in range(len(frames))] == alone
    assert ocr._engines.made == 2
