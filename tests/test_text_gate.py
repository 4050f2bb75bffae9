"""The text-presence gate: its shipped threshold is calibrated by bench/text_gate.py and carries the record, the
calibration keeps its promise on scores whose answer is known, `frugalsense calibrate text-gate` calibrates it on a
user's own photos, and on real pictures it opens for receipts and closes for portraits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.calibration.ltt import calibrate
from frugalsense.calibration.text_gate import (
    GateRecords,
    calibrate_text_gate,
    gate_table,
    measure_gate,
    shipped_threshold,
)
from frugalsense.cli import main
from frugalsense.errors import InvalidRequestError
from frugalsense.ladder.text import GateRung, TextPage
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.media.types import Frame
from frugalsense.models.ocr import TextGate
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def _frame(analyzer: Analyzer, path: Path) -> Frame:
    return load(path, analyzer.settings).frames[0]


def _gate_threshold() -> float:
    profile = load_profile("text")
    assert profile.rungs[0] == "text-gate"
    return profile.thresholds[0]


def test_shipped_gate_threshold_is_calibrated_with_provenance() -> None:
    profile = load_profile("text")
    gate = profile.calibration["gate"]
    assert gate["command"].startswith("python bench/text_gate.py")
    assert gate["data"].startswith("../shared/eval") and gate["date"] == "2026-11-28"
    assert gate["risk"] == 0.1 and gate["n"] >= 50
    assert gate["method"].startswith("ltt-") and "ltt-ltt" not in gate["method"]
    assert gate["certified"] and gate["calibrated"] == gate["date"] and gate["p_value"] <= gate["risk"]
    # The score the threshold was chosen on is the score the gate computes now.
    assert gate["score"].startswith(TextGate.score_kind + ":")
    # The record describes the threshold that ships, measured on photos it was not chosen on.
    assert gate["threshold"] == profile.thresholds[0] < 1.0
    held_out = gate["held_out"]
    assert held_out["photos"] >= 100 and held_out["photos_with_text"] >= 50
    assert held_out["recall"] >= gate["target"] - 0.05  # a held-out half of ~80 photos: some slack
    # The cost target: a photo stopped at the gate costs <= 10% of its OCR pass; and the gate saves.
    assert held_out["gate_only_cpu_vs_ocr_pass"] <= 0.10
    assert held_out["no_text_stopped"] >= 0.3 and held_out["ladder_cpu_vs_ocr_every_photo"] < 0.8


def test_gate_calibration_on_synthetic_scores_keeps_the_promise() -> None:
    """Scores whose answer is known: text photos score U(0, 1), photos without text U(0, 0.5). At target 0.8,
    the certified cut may stop text photos scoring below ~0.2 at most, and it must stop some without text."""
    rng = np.random.default_rng(3)
    n = 4000
    has_text = rng.random(n) < 0.3
    score = np.where(has_text, rng.random(n), 0.5 * rng.random(n))
    scan = rng.random(n) < 0.02
    records = GateRecords(
        [f"p{i}.jpg" for i in range(n)], scan, np.full(n, 1e-3), score, np.full(n, 0.01), np.full(n, 0.2), []
    )
    table = gate_table(records, has_text)
    assert np.all(table.confidence[scan, 0] == 0.0)  # scans skip the gate: they always climb
    calib, check = np.arange(0, n, 2), np.arange(1, n, 2)
    rows = calib[has_text[calib] & ~scan[calib]]
    result = calibrate(table.subset(rows), target=0.8, risk=0.1)
    assert not result.fallback
    cut = 1.0 - shipped_threshold(result)  # the gate stops scores at or below this
    assert 0.1 < cut <= 0.2 + 0.02  # true recall 1 - cut >= 0.8; a little noise from 600 text photos
    photos = check[~scan[check]]
    measured = measure_gate(table.subset(photos), has_text[photos], shipped_threshold(result))
    assert measured.recall >= 0.8 - 0.04
    assert 0.2 < measured.stopped < 0.45  # U(0, 0.5) below the cut
    assert measured.gate_share == pytest.approx((1e-3 + 0.01) / 0.2)  # route check + gate, against OCR


def test_cli_calibrates_the_gate_on_unlabelled_photos(
    eval_dir: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`frugalsense calibrate text-gate` on a folder of photos with and without text, judged by full PP-OCR:
    it writes a text profile whose gate threshold carries its record, the other rungs untouched, and a second
    run reuses the recording."""
    photos = tmp_path / "photos"
    photos.mkdir()
    picks = [eval_dir / "ocr-icdar2015" / "det_images" / f"img_{i}.jpg" for i in range(1, 11)]
    picks += [eval_dir / "ocr-icdar2015" / "receipts_wildreceipt" / f"{i}.jpeg" for i in (1, 2)]
    things = ("carton", "menu", "hard_disc", "trolleybus", "sunscreen", "scale", "slot", "cab", "tape_player")
    picks += [
        p
        for p in sorted((eval_dir / "zeroshot-imagenet" / "images").iterdir())
        if p.stem.split("_", 1)[1] in things
    ]
    picks += _portraits(eval_dir, 8)
    for path in picks:
        (photos / path.name).symlink_to(path)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")  # skipped, counted
    out = tmp_path / "profiles"
    args = ["--data-dir", str(tmp_path / "data"), "--model-cache", str(model_dir), "calibrate", "text-gate"]
    args += ["--data", str(photos), "--target", "0.5", "--risk", "0.2", "--holdout", "0.25", "--out", str(out)]
    assert main(args) == 0
    assert "recording" in capsys.readouterr().err  # a progress bar while every photo goes through both
    written = load_profile("text", out)
    shipped = load_profile("text")
    gate = written.calibration["gate"]
    assert written.rungs == shipped.rungs and written.thresholds[1:] == shipped.thresholds[1:]
    assert written.params == shipped.params
    assert gate["threshold"] == written.thresholds[0] and gate["target"] == 0.5 and gate["risk"] == 0.2
    assert gate["command"].startswith("frugalsense") and "text-gate" in gate["command"]
    assert gate["photos_skipped"] == 1
    held_out = gate["held_out"]["photos"]
    # seed 0: C photos calibrate, H held out; S scans left out -- together the 29 readable pictures
    numbers = [int(word) for word in gate["split"].replace(";", " ").replace(":", " ").split() if word.isdigit()]
    assert numbers[0] == 0 and numbers[2] == held_out and sum(numbers[1:]) == len(picks)
    assert 5 <= held_out <= 8  # a quarter of the photos that are not scans
    # ICDAR scene photos, receipts and the products carry text; PP-OCR reads it, so the calibration judged them.
    assert gate["n"] >= 10
    if gate["certified"]:
        assert gate["recall_on_calibration"] >= 0.5 and written.thresholds[0] <= 1.0
    else:
        assert written.thresholds[0] > 1.0 and gate["calibrated"] is None  # never stops: nothing promised
    recordings = list((tmp_path / "data" / "calibration").glob("text-gate-*.npz"))
    assert len(recordings) == 1
    stamp = recordings[0].stat().st_mtime_ns
    assert main([*args[:-1], str(tmp_path / "again")]) == 0
    assert recordings[0].stat().st_mtime_ns == stamp  # reused, not recorded again
    assert load_profile("text", tmp_path / "again").thresholds == written.thresholds


def test_gate_calibration_refuses_folders_it_cannot_judge(eval_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here")
    few = tmp_path / "portraits"
    few.mkdir()
    for path in _portraits(eval_dir, 3):
        (few / path.name).symlink_to(path)
    with pytest.raises(InvalidRequestError, match="needs at least 10 photos with text"):
        calibrate_text_gate(Settings(data_dir=tmp_path / "data", model_cache=model_dir), few, target=0.5, risk=0.1)
    args = ["--data-dir", str(tmp_path / "data"), "--model-cache", str(model_dir), "calibrate", "text-gate"]
    with pytest.raises(InvalidRequestError, match="no photos"):
        calibrate_text_gate(
            Settings(data_dir=tmp_path / "data", model_cache=model_dir), empty, target=0.5, risk=0.1
        )
    assert main([*args, "--data", str(empty), "--out", str(tmp_path / "p")]) != 0
    assert not (tmp_path / "p").exists()  # nothing written


def _receipts(eval_dir: Path) -> list[Path]:
    scans = sorted((eval_dir / "ocr-sroie" / "img").glob("*.jpg"))[:3]
    photos = [eval_dir / "ocr-icdar2015" / "receipts_wildreceipt" / f"{i}.jpeg" for i in (1, 2)]
    return scans + photos


def _portraits(eval_dir: Path, count: int = 3) -> list[Path]:
    with open(eval_dir / "faces-lfw" / "pairs.csv") as f:
        files = list(dict.fromkeys(r["file_x"] for r in csv.DictReader(f)))
    return [eval_dir / "faces-lfw" / "images" / name for name in files[:count]]


def test_gate_opens_for_receipts(analyzer: Analyzer, eval_dir: Path) -> None:
    """Three SROIE receipt scans and two WildReceipt receipt photos: the score is far above where it stops."""
    threshold = _gate_threshold()
    gate = analyzer.zoo.get("text-gate")
    scores = [float(gate.predict([_frame(analyzer, path)])[0]) for path in _receipts(eval_dir)]
    assert all(1.0 - score < threshold for score in scores), scores
    # The rung itself climbs on the receipt photos (the scans skip it and climb with confidence 0).
    rung = GateRung(gate)
    for path in _receipts(eval_dir):
        outcome = rung.run(TextPage(_frame(analyzer, path), "image"), [], Meter(0.05))
        assert outcome.confidence < threshold, path.name


def test_gate_closes_for_portraits(analyzer: Analyzer, eval_dir: Path) -> None:
    threshold = _gate_threshold()
    rung = GateRung(analyzer.zoo.get("text-gate"))
    stopped = []
    for path in _portraits(eval_dir):
        meter = Meter(0.05)
        outcome = rung.run(TextPage(_frame(analyzer, path), "image"), [], meter)
        stopped.append(outcome.confidence >= threshold)
        assert "score" in outcome.extra  # a photo, not a scan: the gate ran
        assert [s.model for s in meter.receipt.stages if s.stage != "load"] == [None, "text-gate"]
    assert sum(stopped) >= 2, stopped  # mostly: a portrait may show a logo or a caption
