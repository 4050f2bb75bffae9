"""The identification ladder: SFace decides alone unless the best score is in the calibrated band, then dlib
re-scores the top persons (real models, real SQLite file, LFW pictures whose SFace scores are known)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.calibration.faces import calibrate_identify
from frugalsense.errors import ConfigurationError
from frugalsense.faces import FaceGallery
from frugalsense.faces.fusion import FACES_TASK, FaceFusion, IdentifyLadder, load_fusion
from frugalsense.faces.gallery import SECOND_MODEL
from frugalsense.faces.profile import IDENTIFY_TASK, load_face_profile
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, SQLiteStore


def _lfw(eval_dir: Path, name: str) -> Path:
    return eval_dir / "faces-lfw" / "images" / name.rsplit("_", 1)[0] / name


def test_calibration_puts_every_disagreement_inside_the_band() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    same = rng.uniform(size=n) < 0.05
    sface = np.where(same, rng.normal(0.6, 0.12, n), rng.normal(0.05, 0.1, n))
    dlib = np.where(same, rng.normal(0.95, 0.02, n), rng.normal(0.7, 0.05, n))
    fusion = FaceFusion(sface=(20.0, -7.0), fused=(20.0, 25.0, -30.0), band=0.9)
    ladder = calibrate_identify(sface, dlib, same, threshold=0.35, fusion=fusion, far=1e-3)
    logits = 20.0 * sface + 25.0 * dlib - 30.0
    fused = logits >= ladder.fused_threshold
    assert np.mean(fused[~same]) <= 1e-3  # the fused threshold keeps the false-accept rate asked for
    climbs = np.array([ladder.climbs(s) for s in sface])
    ladder_says = np.where(climbs, fused, sface >= 0.35)
    assert np.array_equal(ladder_says, fused)  # on the calibration pairs: exactly the fused decisions
    assert 0.0 < climbs.mean() < 0.2  # ... for a small share of dlib runs
    lo, hi = ladder.band
    assert lo < 0.35 < hi
    narrower = calibrate_identify(sface, dlib, same, threshold=0.35, fusion=fusion, far=1e-3, coverage=0.5)
    assert narrower.band[0] >= lo and narrower.band[1] <= hi


def test_rescore_sits_on_the_sface_scale() -> None:
    ladder = IdentifyLadder(threshold=0.36, fused=(25.0, 20.0, -26.0), fused_threshold=1.1, band=(0.32, 0.41))
    s1 = 0.34
    s2 = (1.1 + 26.0 - 25.0 * s1) / 20.0  # exactly on the fused threshold
    assert ladder.rescore(s1, s2) == pytest.approx(0.36)
    assert ladder.rescore(s1, s2 + 0.01) > 0.36 > ladder.rescore(s1, s2 - 0.01)
    with pytest.raises(ConfigurationError):
        IdentifyLadder.from_params({"fused_threshold": 1.1}, 0.3)


def test_the_shipped_profile_holds_a_calibrated_identification_band() -> None:
    fusion = load_fusion()
    ladder = fusion.identify
    assert ladder is not None
    assert ladder.band[0] < ladder.threshold < ladder.band[1]
    params = load_profile(FACES_TASK).params["identify"]
    assert params["far"] == 1e-3 and "faces-lfw" in params["data"]
    # The identify threshold is stored once, in faces-identify; the band refers to it.
    assert "threshold" not in params and params["threshold_from"] == IDENTIFY_TASK
    assert ladder.threshold == load_profile(IDENTIFY_TASK).params["identify"] == 0.364


@pytest.fixture()
def gallery(model_dir: Path, settings: Settings) -> FaceGallery:
    return FaceGallery(SQLiteStore.open(settings), Analyzer(settings))


def test_a_probe_in_the_band_climbs_to_dlib_and_a_clear_one_does_not(gallery: FaceGallery, eval_dir: Path) -> None:
    tenant = gallery.store.create_tenant("acme").id
    collection = gallery.create_collection(tenant, "staff").id
    yukiko = gallery.create_person(tenant, collection, "Yukiko Okudo").id
    romano = gallery.create_person(tenant, collection, "Romano Prodi").id
    abel = gallery.create_person(tenant, collection, "Abel Pacheco").id
    enrolled = gallery.enrol(tenant, yukiko, _lfw(eval_dir, "Yukiko_Okudo_0001.jpg"))
    assert SECOND_MODEL in enrolled.receipt.models  # enrolment stores dlib's embedding too
    gallery.enrol(tenant, romano, _lfw(eval_dir, "Romano_Prodi_0007.jpg"))
    gallery.enrol(tenant, abel, _lfw(eval_dir, "Abel_Pacheco_0001.jpg"))
    assert set(gallery.store.person_embeddings(tenant, [yukiko, romano, abel], SECOND_MODEL)) == {
        yukiko,
        romano,
        abel,
    }

    def ask(name: str, threshold: float | None = None) -> tuple[str, bool, list[str]]:
        result = gallery.identify(tenant, collection, _lfw(eval_dir, name), keep=False, threshold=threshold)
        return result.faces[0].decision, result.faces[0].climbed, result.receipt.models

    # SFace alone scores her second picture 0.34, under the identify threshold ("unknown"); dlib is sure (0.94).
    assert ask("Yukiko_Okudo_0002.jpg", threshold=0.364)[:2] == ("unknown", False)  # a caller's threshold: SFace
    decision, climbed, models = ask("Yukiko_Okudo_0002.jpg")
    assert climbed and SECOND_MODEL in models and decision == yukiko
    # A stranger SFace scores 0.38 against Romano Prodi (it would name him); dlib (0.79) disagrees: unknown.
    assert ask("Amber_Tamblyn_0002.jpg", threshold=0.364)[0] == romano
    assert ask("Amber_Tamblyn_0002.jpg")[:2] == ("unknown", True)
    # A clear match (SFace 0.73) never pays for dlib.
    decision, climbed, models = ask("Abel_Pacheco_0002.jpg")
    assert (decision, climbed) == (abel, False) and SECOND_MODEL not in models


def test_erasing_a_person_erases_their_second_embeddings(gallery: FaceGallery, eval_dir: Path) -> None:
    tenant = gallery.store.create_tenant("acme").id
    collection = gallery.create_collection(tenant, "staff").id
    juan = gallery.create_person(tenant, collection, "Juan").id
    gallery.enrol(tenant, juan, _lfw(eval_dir, "Yukiko_Okudo_0001.jpg"))
    vector = gallery.store.person_embeddings(tenant, [juan], SECOND_MODEL)[juan][0]
    db = gallery.settings.data_dir / DB_FILENAME
    gallery.delete_person(tenant, juan)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM face_embeddings").fetchone()[0] == 0
    wal = db.with_name(DB_FILENAME + "-wal")
    data = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert vector.astype("<f4").tobytes() not in data


def _lfw_slice(eval_dir: Path, folder: Path, *, identities: bool) -> Path:
    """40 same and 40 different LFW fold-1 pairs, with or without the identity columns."""
    import csv

    source = eval_dir / "faces-lfw"
    with open(source / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = [r for r in rows if r["same"] == "1"][:40] + [r for r in rows if r["same"] == "0"][:40]
    folder.mkdir(parents=True)
    (folder / "images").symlink_to(source / "images")
    columns = ["file_x", "file_y", "same"] + (["identity_x", "identity_y"] if identities else [])
    with open(folder / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return folder


def test_cli_calibrate_faces_verify_calibrates_the_identification_ladder_too(
    eval_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    """`frugalsense calibrate faces-verify` rewrites the whole profile: with pictures whose people the data names,
    the 1:N band and fused threshold are calibrated with it; without, the profile says the 1:N ladder is off."""
    from frugalsense.cli import main

    base = ["--data-dir", str(tmp_path / "data"), "--model-cache", str(model_dir), "calibrate", "faces-verify"]
    named = _lfw_slice(eval_dir, tmp_path / "named" / "faces-lfw", identities=True)
    assert main([*base, "--data", str(named), "--target", "0.98", "--out", str(tmp_path / "p1")]) == 0
    profile = load_profile(FACES_TASK, tmp_path / "p1")
    ladder = load_fusion(tmp_path / "p1").identify
    assert ladder is not None and ladder.band[0] <= ladder.threshold <= ladder.band[1]
    # The band is calibrated around the gallery's identify threshold, which only faces-identify holds.
    assert (
        ladder.threshold == load_face_profile().identify_threshold
        and "threshold" not in profile.params["identify"]
    )
    params = profile.params["identify"]
    assert params["far"] == 1e-3 and params["command"].startswith("frugalsense ")
    assert "calibrate faces-verify" in params["command"]
    assert "impostor pairs" in params["data"]
    # Same fused weights as compare: the 1:N ladder is re-fitted with the 1:1 one, never left stale.
    assert list(ladder.fused) == profile.params["fused_logistic"]

    unnamed = _lfw_slice(eval_dir, tmp_path / "unnamed" / "faces-lfw", identities=False)
    assert main([*base, "--data", str(unnamed), "--target", "0.98", "--out", str(tmp_path / "p2")]) == 0
    profile = load_profile(FACES_TASK, tmp_path / "p2")
    assert (
        "identify" not in profile.params
        and FaceFusion.from_profile(profile, identify_threshold=0.3).identify is None
    )
    assert profile.calibration["identify"]["calibrated"] is False
    assert "names nobody" in profile.calibration["identify"]["why"]
