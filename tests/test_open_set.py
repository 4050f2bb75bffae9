"""Open-set identification at scale on real SFace embeddings (faces-deepface: 61 photos of 13 people): FPIR grows
with the gallery, distractors must come from a model of other people, the per-size table certifies its target,
the fast scoring agrees with the gallery's own index and decision rule, and the Gaussian model reproduces the
embeddings it was fitted to."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.calibration.gallery_thresholds import calibrate_gallery_thresholds
from frugalsense.calibration.geometry import Geometry, fit_geometry
from frugalsense.calibration.open_set import (
    OpenSetTrial,
    cross_fitted_trials,
    fpir_fnir,
    fpir_upper_bound,
    named,
    open_set_trial,
    open_set_trials,
    stranger_losses,
)
from frugalsense.errors import InvalidRequestError
from frugalsense.faces.index import VectorIndex
from frugalsense.faces.matching import decide
from frugalsense.faces.profile import load_face_profile
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.settings import Settings


class Photos:
    def __init__(self, vectors: npt.NDArray[np.float32], names: list[str]) -> None:
        self.vectors, self.names = vectors, names


@pytest.fixture(scope="module")
def deepface(eval_dir: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Photos:
    """SFace embedding of the largest face of every faces-deepface photo, with its identity."""
    analyzer = Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))
    base = eval_dir / "faces-deepface"
    with open(base / "identities.csv") as f:
        rows = list(csv.DictReader(f))
    vectors, names = [], []
    for row in rows:
        frame = load(base / "images" / row["file"], analyzer.settings).frames[0]
        faces = analyzer.faces(frame, Meter(0.0))
        if faces:
            face = max(faces, key=lambda f: f.box.w * f.box.h)
            assert face.embedding is not None
            vectors.append(face.embedding)
            names.append(row["identity"])
    assert len(vectors) >= 55, "faces-deepface: a face should be found on nearly every photo"
    return Photos(np.stack(vectors).astype(np.float32), names)


@pytest.fixture(scope="module")
def geometry(deepface: Photos) -> Geometry:
    return fit_geometry(deepface.vectors, deepface.names)


def test_fpir_rises_with_gallery_size(deepface: Photos) -> None:
    """Strangers are named more often in a larger gallery at one threshold: with no margin never less (the
    galleries are nested and the strangers the same) and far more at 30,000 persons; the margin holds that
    down, since a stranger's two best scores among many distractors are close."""
    threshold = load_face_profile().identify_threshold
    scores = cross_fitted_trials(deepface.vectors, deepface.names, sizes=[3, 1000, 30_000], splits=8, seed=1)
    plain = [fpir_fnir(scores[n], threshold, 0.0)[0] for n in (3, 1000, 30_000)]
    assert plain[0] <= plain[1] <= plain[2]
    assert plain[2] > plain[0] + 0.3
    assert fpir_fnir(scores[30_000], threshold, 0.05)[0] < plain[2] / 4
    # the known people are still found in a small gallery
    assert fpir_fnir(scores[3], threshold, 0.05)[1] < 0.1


def test_distractors_come_from_a_model_of_other_people(deepface: Photos) -> None:
    """A model fitted on some people draws faces like them, so cross-fitting draws each fold's distractors from
    the other fold's model: far fewer strangers named than with a model fitted on everyone."""
    people = np.unique(deepface.names)
    fitted = np.isin(deepface.names, people[::2])
    model = fit_geometry(deepface.vectors[fitted], np.array(deepface.names)[fitted])
    best = (deepface.vectors @ model.distractors(np.random.default_rng(0), 20_000).T).max(axis=1)
    assert float(np.median(best[fitted])) > float(np.median(best[~fitted])) + 0.2

    everyone = fit_geometry(deepface.vectors, deepface.names)
    own = open_set_trials(deepface.vectors, deepface.names, everyone, sizes=[1000], splits=8, seed=3)[1000]
    cross = cross_fitted_trials(deepface.vectors, deepface.names, sizes=[1000], splits=8, seed=3)[1000]
    assert fpir_fnir(cross, 0.364, 0.0)[0] < fpir_fnir(own, 0.364, 0.0)[0] - 0.3
    # every photo was a stranger in some split, indexed as an input row
    assert sorted(np.unique(cross.photo[~cross.mated]).tolist()) == list(range(len(deepface.names)))
    names = np.array(deepface.names)
    assert len(set(names[cross.photo[cross.mated]])) >= 6


def test_calibrated_table_certifies_its_target(deepface: Photos) -> None:
    """Each size's threshold is the lowest on the grid that passes the test; the table never falls; the FPIR
    it gives on the calibration probes is under the target. Too few strangers for a 1% target is an error."""
    base, margin, target, risk = 0.364, 0.05, 0.05, 0.2
    scores = cross_fitted_trials(deepface.vectors, deepface.names, sizes=[3, 100, 3000], splits=8, seed=2)
    calibrated = calibrate_gallery_thresholds(scores, base=base, margin=margin, target=target, risk=risk)
    thresholds = [t for _, t in calibrated.table]
    assert [n for n, _ in calibrated.table] == [3, 100, 3000]
    assert thresholds == sorted(thresholds) and thresholds[0] >= base and thresholds[-1] > base
    for row in calibrated.sizes:
        assert row.fpir <= row.fpir_bound <= target + 1e-6
        assert row.p_value <= risk
        if row.certified > base:  # one step lower fails the test
            lower = round(row.certified - 0.001, 6)
            assert fpir_upper_bound(stranger_losses(scores[row.size], lower, margin), risk) > target
    with pytest.raises(InvalidRequestError, match="distinct stranger photos"):
        calibrate_gallery_thresholds(scores, base=base, margin=margin, target=0.01, risk=0.1)


def test_vectorised_rule_agrees_with_decide() -> None:
    """`named` is `decide` over arrays, boundaries included (score exactly at the threshold, gap exactly the
    margin, a gallery of one person)."""
    rng = np.random.default_rng(3)
    best = np.round(rng.uniform(0.2, 0.6, 400), 2)
    runner_up = np.round(best - rng.choice([0.0, 0.01, 0.05, 0.1, 0.3], 400), 2)
    runner_up[::7] = -1.0  # one person in the gallery
    best[::5] = 0.364
    for threshold, margin in ((0.364, 0.05), (0.4, 0.0), (0.3, 0.1)):
        fast = named(best, runner_up, threshold=threshold, margin=margin)
        for b, r, f in zip(best.tolist(), runner_up.tolist(), fast.tolist(), strict=True):
            scores = [("a", b)] if r == -1.0 else [("a", b), ("b", r)]
            assert (decide(scores, threshold=threshold, margin=margin)[0] is not None) == f


@pytest.mark.parametrize("photos", [1, 2])
def test_trial_scores_agree_with_the_gallery_index(deepface: Photos, geometry: Geometry, photos: int) -> None:
    """A trial's best and runner-up person scores, and whether the best is the probe's own person, are what the
    gallery's `VectorIndex.person_scores` and `decide` give for the same enrolled faces and distractors; scoring
    the distractors in chunks of 5 persons changes nothing (beyond float32 rounding)."""
    distractors = geometry.distractors(np.random.default_rng(4), 60, photos)

    def run(chunk: int) -> OpenSetTrial:
        return open_set_trial(
            deepface.vectors,
            deepface.names,
            None,
            sizes=[4, 66],
            rng=np.random.default_rng(5),
            enrolled_people=6,
            enrolled_photos=photos,
            distractors=distractors,
            chunk=chunk,
        )

    trial, chunked = run(8192), run(5)
    scores = trial.scores[66]
    for a, b in ((scores.best, chunked.scores[66].best), (scores.runner_up, chunked.scores[66].runner_up)):
        np.testing.assert_allclose(a, b, atol=1e-6)  # BLAS rounds a product by its shape
    assert trial.distractors == {4: 0, 66: 60}

    index = VectorIndex(dim=128)
    for rows in trial.enrolled:
        for row in rows.tolist():
            index.add(
                f"f{row}", deepface.vectors[row], collection_id="c", person_id=deepface.names[row], enrolled=True
            )
    for i, face in enumerate(distractors):
        index.add(f"d{i}", face, collection_id="c", person_id=f"distractor {i // photos}", enrolled=True)
    assert len(scores) > 20 and scores.mated.any() and not scores.mated.all()
    for j, photo in enumerate(scores.photo.tolist()):
        exact = index.person_scores(deepface.vectors[photo], collection_id="c", limit=2)
        assert scores.best[j] == pytest.approx(exact[0][1], abs=1e-5)
        assert scores.runner_up[j] == pytest.approx(exact[1][1], abs=1e-5)
        assert bool(scores.correct[j]) == (exact[0][0] == deepface.names[photo])
        assert bool(scores.mated[j]) == any(deepface.names[r[0]] == deepface.names[photo] for r in trial.enrolled)
        for threshold in (0.3, 0.364, 0.5):
            who, _ = decide(exact, threshold=threshold, margin=0.05)
            fast = named(scores.best[j : j + 1], scores.runner_up[j : j + 1], threshold=threshold, margin=0.05)
            assert bool(fast[0]) == (who is not None)


def _cosines(vectors: npt.NDArray[np.float32], names: npt.ArrayLike) -> tuple[float, float]:
    """Mean cosine between two photos of one person, and between photos of two people."""
    labels = np.asarray(names)
    upper = np.triu_indices(len(labels), k=1)
    sims = (vectors @ vectors.T)[upper]
    same = labels[upper[0]] == labels[upper[1]]
    return float(sims[same].mean()), float(sims[~same].mean())


def _draw(geometry: Geometry, people: int, photos: int, seed: int) -> tuple[npt.NDArray[np.float32], Any]:
    rng = np.random.default_rng(seed)
    faces = geometry.photo(rng, np.repeat(geometry.centres(rng, people), photos, axis=0))
    return faces, np.repeat(np.arange(people), photos)


def test_fit_geometry_reproduces_its_input(deepface: Photos, geometry: Geometry) -> None:
    """Photos drawn from the model sit like the real ones: the same mean direction, about the same cosine
    between two photos of one person and between two people. Fitted on 13 people, the mean's length is
    overstated (by about the people's spread / 13), so drawn strangers look about 0.05 more alike than the
    real ones; refitted on 400 drawn people, the model gives back what it was drawn from."""
    real_same, real_other = _cosines(deepface.vectors, deepface.names)
    drawn, labels = _draw(geometry, 400, 4, seed=6)
    drawn_same, drawn_other = _cosines(drawn, labels)
    assert drawn_same == pytest.approx(real_same, abs=0.05)
    assert real_other < drawn_other < real_other + 0.08
    mean, real_mean = drawn.mean(axis=0), deepface.vectors.mean(axis=0)
    assert float(mean @ real_mean) / float(np.linalg.norm(mean) * np.linalg.norm(real_mean)) > 0.95

    again, _ = _draw(fit_geometry(drawn, labels), 400, 4, seed=7)
    again_same, again_other = _cosines(again, labels)
    assert again_same == pytest.approx(drawn_same, abs=0.02)
    assert again_other == pytest.approx(drawn_other, abs=0.02)
