"""The labels and face-verification ladders on real models and real data from ../shared/eval."""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer, Pipeline
from frugalsense.calibration.ltt import NEVER
from frugalsense.calibration.record import record_faces
from frugalsense.cli import main
from frugalsense.faces import FaceGallery
from frugalsense.faces.fusion import FACES_TASK, FaceFusion, load_fusion
from frugalsense.ladder.labels import ENSEMBLE, labels_ladder
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore


def _slice(source: Path, target: Path, index: str, rows: int, step: int = 1) -> Path:
    """A small data folder: every `step`-th row of `source`'s index, the pictures reached through a link."""
    target.mkdir(parents=True, exist_ok=True)
    with open(source / index, newline="") as f:
        reader = csv.DictReader(f)
        picked = list(reader)[::step][:rows]
        fields = reader.fieldnames or []
    with open(target / index, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(picked)
    os.symlink((source / "images").resolve(), target / "images")
    return target


def test_labels_ladder_keeps_top1_and_climbs_less(settings: Settings, eval_dir: Path) -> None:
    """Every 10th picture of zeroshot-imagenet (50): the shipped ladder against always running the ensemble."""
    profile = load_profile("labels")
    assert profile.rungs[-1] == ENSEMBLE and profile.calibration["int8_gate"]
    analyzer = Analyzer(settings)
    ladder = labels_ladder(analyzer.zoo, profile)
    strongest = labels_ladder(analyzer.zoo, replace(profile, thresholds=[NEVER] * 3))
    with open(eval_dir / "zeroshot-imagenet" / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))[::10]
    right_ladder = right_strong = climbed = 0
    for row in rows:
        frame = load(eval_dir / "zeroshot-imagenet" / "images" / row["file"], settings).frames[0]
        truth = int(row["class_index"])
        answer = ladder.run(frame, Meter(0.0))
        right_ladder += int(np.argmax(answer.output)) == truth
        right_strong += int(np.argmax(strongest.run(frame, Meter(0.0)).output)) == truth
        climbed += len(answer.climbed)
    assert right_ladder >= right_strong - 2  # within 2 of 50 pictures of the strongest rung's top-1
    assert right_ladder >= 0.8 * len(rows)
    assert climbed / len(rows) < 2.5  # always-strongest runs 4 rungs per picture


def test_analyze_labels_run_the_ladder_and_say_so(settings: Settings, eval_dir: Path) -> None:
    picture = eval_dir / "zeroshot-imagenet" / "images" / "n01440764_tench.JPEG"
    result = Analyzer(settings).analyze(picture, ["labels"])
    assert result.pages[0].labels[0].name == "tench"
    notes = [s.note for s in result.receipt.stages if s.stage == "labels" and s.note.startswith("ladder:")]
    assert len(notes) == 1 and "efficientnet-lite0" in notes[0]
    models = [s.model for s in result.receipt.stages if s.stage == "labels" and s.model]
    assert models[0] == load_profile("labels").rungs[0]
    single = Analyzer(settings, pipeline=Pipeline(labels_ladder=False)).analyze(picture, ["labels"])
    assert [s.model for s in single.receipt.stages if s.stage == "labels"] == ["efficientnet-lite0-fp32"]
    assert single.pages[0].labels[0].name == "tench"


@pytest.fixture(scope="module")
def lfw_slice(eval_dir: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """Every 15th LFW pair (40 pairs, both kinds) with both models recorded once."""
    folder = _slice(eval_dir / "faces-lfw", tmp_path_factory.mktemp("lfw") / "faces-lfw", "pairs.csv", 40, step=15)
    return folder, Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir)


def test_face_band_sends_only_uncertain_pairs_to_dlib(lfw_slice: tuple[Path, Settings]) -> None:
    folder, settings = lfw_slice
    records = record_faces(settings, folder)
    s1, s2, same = records.similarities("sface"), records.similarities("dlib"), records.same
    assert 10 <= same.sum() <= 30
    shipped = load_fusion()
    wide = FaceFusion(shipped.sface, shipped.fused, band=0.9)
    climbs = np.array([wide.climbs(s) for s in s1])
    lo, hi = wide.band_edges
    assert np.all((s1[climbs] > lo) & (s1[climbs] < hi))  # only pairs near SFace's threshold climb
    assert 0 < climbs.sum() < len(s1) / 2
    ladder = [wide.decide(a, b if c else None) for a, b, c in zip(s1, s2, climbs, strict=True)]
    sface_alone = [wide.decide(a) for a in s1]
    assert np.mean(np.array(ladder) == same) >= np.mean(np.array(sface_alone) == same) - 1 / len(same)
    assert np.mean(np.array(ladder) == same) >= 0.9


def test_gallery_compare_climbs_only_for_uncertain_pairs(lfw_slice: tuple[Path, Settings], tmp_path: Path) -> None:
    folder, settings = lfw_slice
    records = record_faces(settings, folder)
    s1 = records.similarities("sface")
    shipped = load_profile(FACES_TASK)
    profiles = tmp_path / "profiles"
    replace(shipped, thresholds=[0.99]).save(profiles / f"{FACES_TASK}.json")
    local = Settings(data_dir=tmp_path / "data", model_cache=settings.model_dir, profile_dir=profiles)
    gallery = FaceGallery(SQLiteStore.open(local), Analyzer(local))
    assert gallery.fusion is not None and gallery.fusion.band == 0.99
    uncertain = int(np.argmin(np.abs(s1 - gallery.fusion.sface_threshold)))
    sure = int(np.argmax(s1))
    images = folder / "images"
    for pair, climbs in ((uncertain, True), (sure, False)):
        a = images / records.files[records.pair_a[pair]]
        b = images / records.files[records.pair_b[pair]]
        result = gallery.compare(a, b)
        assert ("dlib-resnet" in result.receipt.models) is climbs
        assert result.similarity == pytest.approx(float(s1[pair]), abs=1e-4)
    assert gallery.compare(a, b).same  # the surest pair is one person


def test_cli_calibrate_writes_a_loadable_profile(eval_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    data = _slice(eval_dir / "zeroshot-imagenet", tmp_path / "zeroshot-imagenet", "images.csv", 60, step=8)
    out = tmp_path / "profiles"
    code = main(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "--model-cache",
            str(model_dir),
            "calibrate",
            "labels",
            "--data",
            str(data),
            "--target",
            "0.99",
            "--risk",
            "0.1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    profile = load_profile("labels", out)
    assert profile.rungs[-1] == ENSEMBLE and len(profile.thresholds) == 3
    assert profile.target == 0.99 and profile.risk == 0.1
    assert profile.calibration["n"] == 60 and profile.calibration["command"].startswith("frugalsense")
    assert set(profile.calibration["int8_gate"]) == {"lite0", "lite1", "lite2"}
    # 60 items cannot certify 99% of the strongest rung: the honest answer is to always climb.
    assert profile.calibration["fallback"] is True
    settings = Settings(data_dir=tmp_path / "data", model_cache=model_dir, profile_dir=out)
    picture = data / "images" / "n01440764_tench.JPEG"
    result = Analyzer(settings).analyze(picture, ["labels"])
    assert any(s.model == ENSEMBLE for s in result.receipt.stages)
