"""The text-presence gate: its shipped threshold carries the record of bench/text_gate.py, and on real pictures
it opens for receipts and closes for portraits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.ladder.ledger import Meter
from frugalsense.ladder.profiles import load_profile
from frugalsense.ladder.text import GateRung, TextPage
from frugalsense.media import load
from frugalsense.media.types import Frame
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


def test_shipped_gate_threshold_has_provenance() -> None:
    profile = load_profile("text")
    gate = profile.calibration["gate"]
    assert gate["command"].startswith("python bench/text_gate.py")
    assert gate["data"].startswith("../shared/eval") and gate["date"] == "2026-11-28"
    assert gate["target"] == 0.95 and gate["risk"] == 0.1 and gate["n"] >= 10
    assert gate["method"].startswith("ltt-")
    # The record describes the threshold that ships, measured on photos it was not chosen on.
    assert gate["threshold"] == profile.thresholds[0]
    held_out = gate["held_out"]
    assert held_out["photos"] >= 100 and held_out["photos_with_text"] >= 10
    # The cost target holds at the shipped threshold: a photo stopped at the gate costs <= 10% of OCR.
    assert held_out["gate_only_cpu_vs_ocr_pass"] <= 0.10
    if gate["certified"]:
        assert gate["calibrated"] == gate["date"]
        assert held_out["recall"] >= gate["target"] - 0.05  # a held-out half of ~80 photos: some slack
    else:
        # Nothing was certified: the record must say so, and why, and not claim a calibration.
        assert gate["calibrated"] is None and gate["why"]
        assert held_out["recall"] < gate["target"]
        assert gate["fallback_held_out"]["recall"] == 1.0


@pytest.mark.xfail(
    strict=True,
    reason="LTT certifies no threshold for the 320 px gate at 95% recall of photos with text (PP-OCR finds small "
    "incidental text the gate cannot see): bench/text_gate.py. Remove this mark once a gate is certified.",
)
def test_shipped_gate_is_calibrated() -> None:
    gate = load_profile("text").calibration["gate"]
    assert gate["certified"] and gate["calibrated"]


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
