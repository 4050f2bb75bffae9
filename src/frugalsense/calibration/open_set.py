"""Open-set identification at scale: how often a gallery of N persons names a stranger, and a threshold per
gallery size that keeps that rate under a target.

A per-pair false-accept rate (FAR) bounds one comparison. Identifying a face against a gallery of N persons
makes N of them, so the chance that a stranger's best score clears the threshold grows with N. NIST FRVT 1:N
counts it per probe: FPIR, the false positive identification rate (a probe of someone not in the gallery gets
a name), and FNIR, the false negative identification rate (a probe of someone in the gallery does not get
their own name: "unknown", or another person's name).

The measuring protocol, on real embeddings of labelled photos (`open_set_trial`, repeated by
`open_set_trials`):

- people with more photos than ``reserved_photos`` (default: ``enrolled_photos``) may be enrolled; a random
  subset of them is, with their first ``enrolled_photos`` photos; their photos after the reserved ones are
  the mated probes;
- a gallery of N persons holds N of the enrolled people (all of them when N is larger), then synthetic
  distractor persons up to N, enrolled like the real ones, drawn from a Gaussian model of the embeddings
  (`Geometry`, fitted by `fit_geometry`) - a few hundred labelled people cannot fill a gallery of 100,000.
  The model must be fitted on other people than the probes': fitted on a few hundred people it draws faces
  like them, and would name them as strangers far too often (`cross_fitted_trials` fits it per fold);
- every photo of a person not in the gallery is a non-mated probe (a stranger);
- a person's score is the best cosine over their enrolled faces (as `VectorIndex.person_scores`), and the
  gallery's rule decides (`named`, the vectorised `frugalsense.faces.matching.decide`): a name needs the
  best score at or above the threshold and ``margin`` clear of the runner-up.

Per probe a trial keeps the best score, the runner-up and whether the best person is the probe's own, so
thresholds are swept afterwards without scoring again (`fpir_fnir`); `frugalsense.calibration.gallery_thresholds`
picks a threshold per gallery size from them.

    >>> rng = np.random.default_rng(0)
    >>> people = rng.standard_normal((120, 32))
    >>> names = np.repeat(np.arange(120), 3)
    >>> vectors = people[names] + 0.9 * rng.standard_normal((360, 32))
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> scores = cross_fitted_trials(vectors, names, sizes=[10, 3000], splits=3, seed=0)
    >>> small, large = (fpir_fnir(scores[n], threshold=0.5, margin=0.05)[0] for n in (10, 3000))
    >>> bool(small < large)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.geometry import Geometry, fit_geometry
from frugalsense.calibration.ltt import hoeffding_bentkus_pvalue
from frugalsense.errors import InvalidRequestError

__all__ = [
    "GALLERY_SIZES",
    "IdentificationRates",
    "OpenSetTrial",
    "ProbeScores",
    "cross_fitted_trials",
    "fpir_fnir",
    "fpir_upper_bound",
    "named",
    "open_set_trial",
    "open_set_trials",
    "pool",
    "stranger_losses",
]

#: the gallery sizes a table is calibrated at (persons)
GALLERY_SIZES = (10, 100, 1000, 10_000, 100_000)

Floats = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.intp]
#: the runner-up when the gallery holds one person, as `decide` takes it
_NO_RUNNER_UP = -1.0
#: distractor persons drawn at once
_DRAW_BLOCK = 8192


# -- trials ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeScores:
    """Per probe at one gallery size: the best person score, the runner-up's, whether the best person is the
    probe's own (never, for a stranger), whether the probe's person is in the gallery, and which photo it is
    (an input row: the same photo probed in several trials is one piece of evidence)."""

    size: int
    best: Floats
    runner_up: Floats
    correct: Bools
    mated: Bools
    photo: Ints

    def __post_init__(self) -> None:
        n = len(self.best)
        if any(len(a) != n for a in (self.runner_up, self.correct, self.mated, self.photo)):
            raise InvalidRequestError("probe scores: every per-probe array needs one value per probe")

    def __len__(self) -> int:
        return len(self.best)


@dataclass(frozen=True)
class OpenSetTrial:
    """One random split: the gallery's real persons (their enrolled input rows, in the order galleries take
    them), how many distractors each size added, and the probes' scores per gallery size."""

    enrolled: list[Ints]
    distractors: dict[int, int]
    scores: dict[int, ProbeScores]


def open_set_trial(
    vectors: npt.ArrayLike,
    names: npt.ArrayLike,
    geometry: Geometry | None,
    *,
    sizes: Sequence[int] = GALLERY_SIZES,
    rng: np.random.Generator,
    enrolled_people: int | None = None,
    enrolled_photos: int = 1,
    reserved_photos: int | None = None,
    distractor_photos: int | None = None,
    distractors: npt.ArrayLike | None = None,
    chunk: int = 8192,
) -> OpenSetTrial:
    """Score every probe of one random split against galleries of each size in ``sizes`` (see the module).

    ``vectors`` are unit embeddings, one a photo, ``names`` their identities; a person's photos count in input
    order ("first photo"). ``enrolled_people`` of the eligible people are enrolled (default: half, rounded
    down). Galleries are nested: a larger one holds the smaller one's persons. A distractor person is
    enrolled like a real one, with ``distractor_photos`` faces (default: ``enrolled_photos``), taken person by
    person from ``distractors`` (unit faces) or, when that is None, drawn from ``geometry``. Probes are scored
    against ``chunk`` distractor persons at a time (one matrix product each).
    """
    data = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    labels = np.asarray(names)
    if data.ndim != 2 or len(labels) != len(data):
        raise InvalidRequestError(f"open_set_trial: {len(labels)} names for vectors of shape {data.shape}")
    reserved = enrolled_photos if reserved_photos is None else reserved_photos
    per_distractor = enrolled_photos if distractor_photos is None else distractor_photos
    if per_distractor < 1:
        raise InvalidRequestError(f"a distractor person needs at least one face, got {per_distractor}")
    if not 1 <= enrolled_photos <= reserved:
        raise InvalidRequestError(
            f"enrolled_photos ({enrolled_photos}) must be at least 1 and at most reserved_photos ({reserved})"
        )
    order = sorted({int(n) for n in sizes})
    if not order or order[0] < 1:
        raise InvalidRequestError(f"gallery sizes must be at least 1, got {list(sizes)}")
    rows_of = _rows_by_person(labels)
    eligible = [rows for rows in rows_of if len(rows) > reserved]
    wanted = len(eligible) // 2 if enrolled_people is None else enrolled_people
    if not 1 <= wanted <= len(eligible):
        raise InvalidRequestError(
            f"{wanted} people to enrol, but {len(eligible)} have more than {reserved} photos: enrol fewer"
        )
    picked = [eligible[i] for i in rng.permutation(len(eligible))[:wanted]]
    enrolled = [rows[:enrolled_photos] for rows in picked]
    owner = np.full(len(data), -1, np.intp)  # the gallery column of each photo's person, -1 for nobody enrolled
    for column, rows in enumerate(picked):
        owner[rows] = column

    real = _person_scores(data, enrolled)  # (photos, enrolled people)
    extra = {n: max(0, n - wanted) for n in order}
    need = max(extra.values())
    if distractors is not None:
        pool_faces = np.asarray(distractors, dtype=np.float32)
        if pool_faces.ndim != 2 or len(pool_faces) < need * per_distractor or pool_faces.shape[1] != data.shape[1]:
            raise InvalidRequestError(
                f"{need} distractor persons need {need * per_distractor} faces of {data.shape[1]} values"
            )
        pool_faces = pool_faces[: need * per_distractor]
    elif need == 0:
        pool_faces = np.zeros((0, data.shape[1]), np.float32)
    elif geometry is None:
        raise InvalidRequestError("distractor persons need a geometry (fit_geometry) or distractor faces")
    else:  # drawn in blocks: float64 temporaries for 100,000 persons would take hundreds of MB
        blocks = range(0, need, _DRAW_BLOCK)
        pool_faces = np.concatenate(
            [geometry.distractors(rng, min(_DRAW_BLOCK, need - b), per_distractor) for b in blocks]
        )
    synthetic = _prefix_top2(data, pool_faces, per_distractor, sorted(set(extra.values())), chunk)

    scores = {}
    for n in order:
        held = min(n, wanted)
        fake_best, fake_second = synthetic[extra[n]]
        scores[n] = _at_size(n, real[:, :held], owner, reserved, picked[:held], fake_best, fake_second)
    return OpenSetTrial(enrolled=[np.asarray(r, np.intp) for r in enrolled], distractors=extra, scores=scores)


def open_set_trials(
    vectors: npt.ArrayLike,
    names: npt.ArrayLike,
    geometry: Geometry | None,
    *,
    sizes: Sequence[int] = GALLERY_SIZES,
    splits: int = 20,
    seed: int = 0,
    enrolled_people: int | None = None,
    enrolled_photos: int = 1,
    reserved_photos: int | None = None,
    distractor_photos: int | None = None,
    distractors: npt.ArrayLike | None = None,
    chunk: int = 8192,
) -> dict[int, ProbeScores]:
    """`open_set_trial` over ``splits`` random splits, pooled per size. Split i draws from its own generator
    (spawned from ``seed``), so runs that differ only in options such as ``enrolled_photos`` enrol the same
    people in each split."""
    if splits < 1:
        raise InvalidRequestError(f"splits must be at least 1, got {splits}")
    trials = [
        open_set_trial(
            vectors,
            names,
            geometry,
            sizes=sizes,
            rng=np.random.default_rng(child),
            enrolled_people=enrolled_people,
            enrolled_photos=enrolled_photos,
            reserved_photos=reserved_photos,
            distractor_photos=distractor_photos,
            distractors=distractors,
            chunk=chunk,
        )
        for child in np.random.SeedSequence(seed).spawn(splits)
    ]
    return pool(t.scores for t in trials)


def cross_fitted_trials(
    vectors: npt.ArrayLike,
    names: npt.ArrayLike,
    *,
    folds: int = 2,
    sizes: Sequence[int] = GALLERY_SIZES,
    splits: int = 20,
    seed: int = 0,
    enrolled_photos: int = 1,
    reserved_photos: int | None = None,
    distractor_photos: int | None = None,
    chunk: int = 8192,
) -> dict[int, ProbeScores]:
    """`open_set_trials` on each of ``folds`` random groups of the people, its distractors drawn from a model
    fitted on the other groups' photos; pooled, with ``photo`` indexing the input rows.

    A Gaussian fitted on a few hundred people draws faces like *them*: on LFW the best of 100,000 drawn faces
    scores about 0.50 against a photo of someone in the fit and 0.44 against anyone else. A stranger in the
    model would be named by its own echo, so the people who probe never fit the model that draws their
    distractors. Each group enrols half of its eligible people.
    """
    data = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(names)
    if folds < 2:
        raise InvalidRequestError(f"cross-fitting needs at least 2 folds, got {folds}")
    people = np.unique(labels)
    if len(people) < 2 * folds:
        raise InvalidRequestError(f"{len(people)} people cannot make {folds} folds of two people or more")
    fold_of = dict(zip(people.tolist(), np.random.default_rng(seed).permutation(len(people)) % folds, strict=True))
    fold = np.array([fold_of[name] for name in labels.tolist()])
    parts = []
    for f in range(folds):
        inside = np.flatnonzero(fold == f)
        outside = fold != f
        scores = open_set_trials(
            data[inside],
            labels[inside],
            fit_geometry(data[outside], labels[outside]),
            sizes=sizes,
            splits=splits,
            seed=seed + 1 + f,
            enrolled_photos=enrolled_photos,
            reserved_photos=reserved_photos,
            distractor_photos=distractor_photos,
            chunk=chunk,
        )
        parts.append({n: replace(sc, photo=inside[sc.photo]) for n, sc in scores.items()})
    return pool(parts)


def pool(parts: Iterable[Mapping[int, ProbeScores]]) -> dict[int, ProbeScores]:
    """Probe scores of several trials, concatenated per gallery size (sizes every part has)."""
    listed = list(parts)
    if not listed:
        return {}
    sizes = sorted(set.intersection(*(set(p) for p in listed)))
    return {
        n: ProbeScores(
            size=n,
            best=np.concatenate([p[n].best for p in listed]),
            runner_up=np.concatenate([p[n].runner_up for p in listed]),
            correct=np.concatenate([p[n].correct for p in listed]),
            mated=np.concatenate([p[n].mated for p in listed]),
            photo=np.concatenate([p[n].photo for p in listed]),
        )
        for n in sizes
    }


def _rows_by_person(labels: npt.NDArray[Any]) -> list[list[int]]:
    """Each person's input rows, in input order; persons in order of first appearance."""
    rows: dict[Any, list[int]] = {}
    for i, name in enumerate(labels.tolist()):
        rows.setdefault(name, []).append(i)
    return list(rows.values())


def _person_scores(data: Matrix, enrolled: list[list[int]]) -> Matrix:
    """(photos, persons): each person's score, the best cosine over their enrolled faces."""
    faces = np.concatenate([np.asarray(r, np.intp) for r in enrolled])
    sims = data @ data[faces].T
    starts = np.cumsum([0] + [len(r) for r in enrolled[:-1]])
    return np.asarray(np.maximum.reduceat(sims, starts, axis=1), np.float32)


def _prefix_top2(
    data: Matrix, faces: Matrix, photos: int, prefixes: list[int], chunk: int
) -> dict[int, tuple[Matrix, Matrix]]:
    """For each prefix of p persons (``photos`` consecutive faces each): every photo's best and second-best
    person score (-1 where fewer persons). One running top-2 over chunks of persons, one matrix product each,
    snapshotted at each prefix."""
    best = np.full(len(data), -np.inf, np.float32)
    second = np.full(len(data), -np.inf, np.float32)
    out: dict[int, tuple[Matrix, Matrix]] = {}
    start = 0
    for stop in prefixes:
        while start < stop:
            end = min(stop, start + max(1, chunk))
            sims = (
                (data @ faces[start * photos : end * photos].T).reshape(len(data), end - start, photos).max(axis=2)
            )
            if sims.shape[1] >= 2:
                top = np.partition(sims, sims.shape[1] - 2, axis=1)[:, -2:]
                candidates = np.column_stack([best, second, top])
            else:
                candidates = np.column_stack([best, second, sims])
            two = np.partition(candidates, candidates.shape[1] - 2, axis=1)[:, -2:]
            best, second = two[:, 1].copy(), two[:, 0].copy()
            start = end
        out[stop] = (np.maximum(best, _NO_RUNNER_UP), np.maximum(second, _NO_RUNNER_UP))
    return out


def _at_size(
    n: int,
    real: Matrix,
    owner: Ints,
    reserved: int,
    gallery: list[list[int]],
    fake_best: Matrix,
    fake_second: Matrix,
) -> ProbeScores:
    """The probes of a gallery holding the first ``real.shape[1]`` enrolled people and some distractors."""
    held = real.shape[1]
    in_gallery = (owner >= 0) & (owner < held)
    probe = ~in_gallery  # strangers: every photo of a person not held
    for rows in gallery:
        probe[rows[reserved:]] = True  # mated: the photos after the reserved ones
    photos = np.flatnonzero(probe)
    own = real[photos]
    if held >= 2:
        two = np.partition(own, held - 2, axis=1)[:, -2:]
        real_best, real_second = two[:, 1], two[:, 0]
    else:
        real_best, real_second = own[:, 0], np.full(len(photos), _NO_RUNNER_UP, np.float32)
    top_column = np.argmax(own, axis=1)
    fb, fs = fake_best[photos], fake_second[photos]
    best = np.maximum(real_best, fb)
    runner_up = np.where(real_best >= fb, np.maximum(real_second, fb), np.maximum(real_best, fs))
    mated = in_gallery[photos]
    correct = mated & (top_column == owner[photos]) & (real_best >= fb)
    return ProbeScores(
        size=n,
        best=best.astype(np.float64),
        runner_up=runner_up.astype(np.float64),
        correct=correct,
        mated=mated,
        photo=photos.astype(np.intp),
    )


# -- rates ----------------------------------------------------------------------------------------------------


def named(best: npt.ArrayLike, runner_up: npt.ArrayLike, *, threshold: float, margin: float) -> Bools:
    """Whether the gallery names the best person: `frugalsense.faces.matching.decide`, over arrays.

    >>> named([0.62, 0.62, 0.30], [0.30, 0.60, -1.0], threshold=0.4, margin=0.05).tolist()
    [True, False, False]
    """
    b = np.asarray(best, np.float64)
    r = np.asarray(runner_up, np.float64)
    return np.asarray((b >= threshold) & (b - r >= margin), np.bool_)


@dataclass(frozen=True)
class IdentificationRates:
    """FPIR and FNIR at one threshold and margin, with the counts behind them."""

    threshold: float
    margin: float
    fpir: float  # share of stranger probes that got a name
    fnir: float  # share of mated probes not named as their own person (unknown + wrong)
    strangers: int  # stranger probes (over every trial pooled)
    strangers_named: int
    mated: int  # mated probes
    wrong: int  # mated probes named as someone else
    unknown: int  # mated probes answered "unknown"
    distinct_strangers: int  # distinct stranger photos: the evidence a bound on FPIR may count


def fpir_fnir(scores: ProbeScores, threshold: float, margin: float) -> tuple[float, float, IdentificationRates]:
    """FPIR, FNIR and their counts for ``scores`` at ``threshold`` and ``margin`` (0.0 where no probe)."""
    says = named(scores.best, scores.runner_up, threshold=threshold, margin=margin)
    stranger = ~scores.mated
    strangers, mated = int(stranger.sum()), int(scores.mated.sum())
    false_names = int((says & stranger).sum())
    right = int((says & scores.correct).sum())
    wrong = int((says & scores.mated & ~scores.correct).sum())
    fpir = false_names / strangers if strangers else 0.0
    fnir = (mated - right) / mated if mated else 0.0
    rates = IdentificationRates(
        threshold=threshold,
        margin=margin,
        fpir=fpir,
        fnir=fnir,
        strangers=strangers,
        strangers_named=false_names,
        mated=mated,
        wrong=wrong,
        unknown=mated - right - wrong,
        distinct_strangers=len(np.unique(scores.photo[stranger])),
    )
    return fpir, fnir, rates


def stranger_losses(scores: ProbeScores, threshold: float, margin: float) -> Floats:
    """One loss per distinct stranger photo: the share of its probes (trials) in which it was named."""
    stranger = ~scores.mated
    says = named(scores.best[stranger], scores.runner_up[stranger], threshold=threshold, margin=margin)
    photos, index = np.unique(scores.photo[stranger], return_inverse=True)
    counts = np.bincount(index, minlength=len(photos))
    hits = np.bincount(index, weights=says.astype(np.float64), minlength=len(photos))
    return np.asarray(hits / np.maximum(counts, 1), np.float64)


def fpir_upper_bound(losses: npt.ArrayLike, risk: float) -> float:
    """The Hoeffding-Bentkus upper confidence bound on the mean of ``losses`` (in [0, 1]) at ``risk``: the
    least rate whose "mean > rate" test is rejected (bisection, to 1e-6).

    >>> round(fpir_upper_bound(np.zeros(460), 0.1), 4)
    0.005
    """
    x = np.asarray(losses, np.float64)
    if len(x) == 0:
        return 1.0
    low, high = float(x.mean()), 1.0
    if hoeffding_bentkus_pvalue(x, high - 1e-12) > risk:
        return 1.0
    while high - low > 1e-6:
        middle = (low + high) / 2
        if hoeffding_bentkus_pvalue(x, middle) <= risk:
            high = middle
        else:
            low = middle
    return high
