"""The text ladder on real pages: textless photos stop at the gate, scans start with Tesseract, scenes PP-OCR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.ladder.text import LiteOCRRung, TesseractRung, TextPage, text_ladder
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.models.ocr import PPOCRv4
from frugalsense.profiles import load_profile
from frugalsense.quality import located_cer
from frugalsense.runtimes.rapidocr import RapidOCRPipeline
from frugalsense.settings import Settings

#: measured 0.020 on these 5 receipts with the shipped profile (the lite PP-OCR reads them; full PP-OCR: 0.027,
#: Tesseract: 0.085 on SROIE); the bound fails a profile that reads receipts worse than full PP-OCR by half
CER_BOUND = 0.04


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def _run(analyzer: Analyzer, path: Path, kind: str = "image") -> tuple[list[str], Meter, list]:  # type: ignore[type-arg]
    frame = load(path, analyzer.settings).frames[0]
    meter = Meter(0.05)
    result = text_ladder(analyzer.zoo).run(TextPage(frame, kind), meter)
    return result.climbed, meter, result.output


def test_shipped_profile_gates_photos_and_ends_with_ppocr() -> None:
    profile = load_profile("text")
    assert profile.rungs[0] == "text-gate" and profile.rungs[-1] == "ppocr-v4"
    assert all(t > 0 for t in profile.thresholds)  # a rung that did not run reports 0 and must not answer
    assert profile.thresholds[0] < 1  # the gate does close
    assert profile.calibration["split"]


@pytest.mark.parametrize("name", ["Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abdul_Rahman/Abdul_Rahman_0001.jpg"])
def test_portraits_stop_at_the_gate(analyzer: Analyzer, eval_dir: Path, name: str) -> None:
    climbed, meter, lines = _run(analyzer, eval_dir / "faces-lfw" / "images" / name)
    assert climbed == ["text-gate"]
    assert lines == []
    assert {s.model for s in meter.receipt.stages if s.stage != "load"} == {None, "text-gate"}


def test_scene_photo_skips_tesseract_and_is_read_by_ppocr(analyzer: Analyzer, eval_dir: Path) -> None:
    folder = eval_dir / "ocr-icdar2015" / "receipts_wildreceipt"
    climbed, meter, lines = _run(analyzer, folder / "1.jpeg")
    assert climbed[-1] == "ppocr-v4"
    assert "tesseract-eng" not in [s.model for s in meter.receipt.stages]
    assert "SAFEWAY" in "".join(line.text for line in lines).upper()


def test_receipt_scan_stops_at_the_lite_rung(analyzer: Analyzer, eval_dir: Path) -> None:
    """A SROIE receipt is a scan: it skips the gate, and the shipped lite PP-OCR reads it without climbing."""
    sroie = eval_dir / "ocr-sroie"
    climbed, meter, lines = _run(analyzer, sroie / "img" / "000.jpg")
    assert climbed == ["text-gate", "ppocr-lite"]
    assert "text-gate" not in [s.model for s in meter.receipt.stages]
    total = json.loads((sroie / "key" / "000.json").read_text())["total"]
    assert total in "".join(line.text for line in lines).replace(" ", "")


def test_clean_scan_is_read_by_a_confident_tesseract(analyzer: Analyzer, eval_dir: Path) -> None:
    """Tesseract's own test page: the Tesseract rung is sure of it; where the profile has that rung, it stops."""
    frame = load(eval_dir / "ocr-pages" / "phototest.tif", analyzer.settings).frames[0]
    rung = TesseractRung(analyzer.zoo.get("tesseract-eng"), float(load_profile("text").params["line_confidence"]))
    outcome = rung.run(TextPage(frame, "image"), [], Meter(0.05))
    assert outcome.confidence >= 0.9
    assert "quick brown dog" in " ".join(line.text for line in outcome.output)
    climbed, meter, _ = _run(analyzer, eval_dir / "ocr-pages" / "phototest.tif")
    if "tesseract-eng" in load_profile("text").rungs:
        assert climbed == ["text-gate", "tesseract-eng"]
        assert "ppocr-v4" not in [s.model for s in meter.receipt.stages]


def test_receipts_read_with_bounded_located_cer(analyzer: Analyzer, eval_dir: Path) -> None:
    """Every 20th SROIE receipt (5), through Analyzer.text: the ladder the service runs."""
    import sys

    sroie = eval_dir / "ocr-sroie"
    errors = chars = 0
    for image in sorted((sroie / "img").glob("*.jpg"))[::20]:
        truth = []
        for raw in (sroie / "box" / f"{image.stem}.csv").read_text(errors="replace").splitlines():
            parts = raw.split(",", 8)
            if len(parts) == 9:
                c = [float(v) for v in parts[:8]]
                truth.append((parts[8], [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])]))
        frame = load(image, analyzer.settings).frames[0]
        lines = analyzer.text(frame, "image", Meter(0.05))
        e, c = located_cer([(ln.text, ln.quad) for ln in lines], truth)
        errors, chars = errors + e, chars + c
    print(f"located CER {errors / chars:.4f}", file=sys.stderr)
    assert errors / chars < CER_BOUND, f"located CER {errors / chars:.3f}"


def _sroie_truth(sroie: Path, stem: str) -> list[tuple[str, list[tuple[float, float]]]]:
    truth = []
    for raw in (sroie / "box" / f"{stem}.csv").read_text(errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) == 9:
            c = [float(v) for v in parts[:8]]
            truth.append((parts[8], [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])]))
    return truth


def _ppocr(analyzer: Analyzer) -> PPOCRv4:
    model = analyzer.zoo.get("ppocr-v4")
    assert isinstance(model, PPOCRv4)
    return model


def _lite(analyzer: Analyzer) -> LiteOCRRung:
    """The lite rung with the shipped profile's parameters (RapidOCR's own defaults where it names none)."""
    params = load_profile("text").params
    side = params.get("lite_max_side")
    return LiteOCRRung(
        _ppocr(analyzer),
        float(params.get("line_confidence", 0.5)),
        None if side is None else int(side),
        int(params.get("lite_min_width", 320)),
    )


def test_recogniser_at_rapidocr_padding_reads_exactly_as_rapidocr(analyzer: Analyzer, eval_dir: Path) -> None:
    """`PPOCRv4.recognise` at 320 px is RapidOCR's own recogniser call, line by line: the lite rung changes only
    the padding it asks for."""
    model = _ppocr(analyzer)
    frame = load(eval_dir / "ocr-sroie" / "img" / "000.jpg", analyzer.settings).frames[0]
    found = model.detect_lines(frame.bgr(), 1280)
    assert len(found.quads) == len(found.crops) > 20
    assert all(len(quad) == 4 for quad in found.quads)
    crops = found.crops[:12]
    ours = model.recognise(crops, 320)
    engine = RapidOCRPipeline(threads=1)
    theirs = [engine.recognise_together([crop])[0] for crop in crops]
    assert [t for t, _ in ours] == [t for t, _ in theirs]
    assert ours[0][1] == pytest.approx(theirs[0][1], abs=1e-5)


def test_reread_reads_tesseract_boxes_and_skips_empty_ones(analyzer: Analyzer, eval_dir: Path) -> None:
    """`PPOCRv4.reread` on boxes another engine found: the page's first words come back, and a box that crops
    to nothing (off the picture) is answered with an empty reading instead of an error."""
    frame = load(eval_dir / "ocr-pages" / "phototest.tif", analyzer.settings).frames[0]
    lines = analyzer.zoo.get("tesseract-eng").predict([frame])[0]
    outside = ((1e5, 1e5), (1e5 + 9, 1e5), (1e5 + 9, 1e5 + 9), (1e5, 1e5 + 9))
    quads = [ln.quad for ln in lines[:3]] + [outside]
    readings = _ppocr(analyzer).reread(frame.bgr(), quads)
    assert len(readings) == 4
    assert readings[-1] == ("", 0.0)
    assert "12pointtext" in "".join(text for text, _ in readings[:3]).replace(" ", "").lower()


def test_lite_rung_reads_receipts_as_well_as_full_ppocr(analyzer: Analyzer, eval_dir: Path) -> None:
    """Every 30th SROIE receipt (4): the lite rung's located CER within 0.01 of the full pipeline's, and its
    receipt bills the detector and recogniser apart (no angle classifier, no full pipeline)."""
    sroie = eval_dir / "ocr-sroie"
    rung = _lite(analyzer)
    full = analyzer.zoo.get("ppocr-v4")
    lite_e = full_e = chars = 0
    for image in sorted((sroie / "img").glob("*.jpg"))[::30]:
        truth = _sroie_truth(sroie, image.stem)
        frame = load(image, analyzer.settings).frames[0]
        meter = Meter(0.05)
        outcome = rung.run(TextPage(frame, "document"), [], meter)
        assert 0.0 < outcome.confidence <= 1.0
        assert [s.note for s in meter.receipt.stages if s.stage == "ocr"] == ["lite: detector", "lite: recogniser"]
        e, c = located_cer([(ln.text, ln.quad) for ln in outcome.output], truth)
        f, _ = located_cer([(ln.text, ln.quad) for ln in full.predict([frame])[0]], truth)
        lite_e, full_e, chars = lite_e + e, full_e + f, chars + c
    assert lite_e / chars <= full_e / chars + 0.01, f"lite CER {lite_e / chars:.4f}, full {full_e / chars:.4f}"


def test_lite_rung_leaves_photos_to_the_full_pipeline(analyzer: Analyzer, eval_dir: Path) -> None:
    frame = load(eval_dir / "ocr-icdar2015" / "receipts_wildreceipt" / "1.jpeg", analyzer.settings).frames[0]
    meter = Meter(0.05)
    outcome = _lite(analyzer).run(TextPage(frame, "image"), [], meter)
    assert outcome.confidence == 0.0 and outcome.output == []
    assert not [s for s in meter.receipt.stages if s.stage == "ocr"]
