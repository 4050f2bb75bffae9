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
thresholds are swept afterwards without scoring again (`fpir_fnir`). `calibrate_gallery_thresholds` then
picks, per gallery size, the lowest threshold (not below a base, the per-pair one) whose FPIR is certified
at most ``target`` with probability ``1 - risk``: each distinct stranger photo contributes one loss in [0, 1]
(the share of the trials it was named in) and the Hoeffding-Bentkus test of `frugalsense.calibration.ltt`
rejects "mean loss > target". Photos of one person are not independent draws, so ``n`` overstates the
evidence somewhat; a synthetic distractor is only as realistic as the Gaussian model's tail.

    >>> rng = np.random.default_rng(0)
    >>> people = rng.standard_normal((120, 32))
    >>> names = np.repeat(np.arange(120), 3)
    >>> vectors = people[names] + 0.9 * rng.standard_normal((360, 32))
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> scores = cross_fitted_trials(vectors, names, sizes=[10, 3000], splits=3, seed=0)
    >>> small, large = (fpir_fnir(scores[n], threshold=0.5, margin=0.05)[0] for n in (10, 3000))
    >>> bool(small < large)
    True
    >>> table = calibrate_gallery_thresholds(scores, base=0.3, margin=0.05, target=0.05, risk=0.1)
    >>> [size for size, _ in table.table], table.table[0][1] <= table.table[1][1]
    ([10, 3000], True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.ltt import hoeffding_bentkus_pvalue
from frugalsense.errors import InvalidRequestError

__all__ = [
    "GALLERY_SIZES",
    "GalleryThresholds",
    "Geometry",
    "IdentificationRates",
    "OpenSetTrial",
    "ProbeScores",
    "SizeCalibration",
    "calibrate_gallery_thresholds",
    "cross_fitted_trials",
    "fit_geometry",
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


def _unit(v: npt.NDArray[np.floating[Any]]) -> Matrix:
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


# -- the embedding model --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """A Gaussian model of face embeddings: a mean, how people spread around it, how one person's photos spread
    around theirs (Cholesky factors of the two covariances). Drawn faces are scaled to unit length."""

    mean: Floats
    people: Floats
    photos: Floats

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def centres(self, rng: np.random.Generator, n: int) -> Floats:
        """``n`` new people: where their photos centre."""
        return np.asarray(self.mean + rng.standard_normal((n, self.dim)) @ self.people.T)

    def photo(self, rng: np.random.Generator, centres: Floats) -> Matrix:
        """One photo (a unit embedding) of each person in ``centres``."""
        return _unit(centres + rng.standard_normal(centres.shape) @ self.photos.T)

    def distractors(self, rng: np.random.Generator, n: int, photos: int = 1) -> Matrix:
        """``photos`` faces each of ``n`` new people (person by person): a gallery's synthetic distractors."""
        return self.photo(rng, np.repeat(self.centres(rng, n), photos, axis=0))


def fit_geometry(vectors: npt.ArrayLike, names: npt.ArrayLike) -> Geometry:
    """The Gaussian model of ``vectors`` (one embedding a photo) whose identities are ``names``.

    The photos' spread is pooled from each person's deviations from their own mean (people with one photo
    add nothing), scaled up for the error of that mean; the people's spread is the rest of the total.
    """
    data = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(names)
    if data.ndim != 2 or len(labels) != len(data):
        raise InvalidRequestError(f"fit_geometry: {len(labels)} names for vectors of shape {data.shape}")
    dim = data.shape[1]
    mean = data.mean(axis=0)
    spread = np.cov((data - mean).T)
    deviations = []
    for name in np.unique(labels):  # a photo's deviation from its person's mean, scaled for the mean's own error
        own = data[labels == name]
        if len(own) > 1:
            deviations.append((own - own.mean(axis=0)) * np.sqrt(len(own) / (len(own) - 1)))
    if not deviations:
        raise InvalidRequestError("fit_geometry needs at least one person with two photos or more")
    stacked = np.vstack(deviations)
    photos = stacked.T @ stacked / len(stacked)
    values, axes = np.linalg.eigh(spread - photos)  # people's spread: all of it but the photos' own
    people = (axes * np.clip(values, 1e-6, None)) @ axes.T
    return Geometry(mean, np.linalg.cholesky(people), np.linalg.cholesky(photos + 1e-9 * np.eye(dim)))


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


# -- calibration ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeCalibration:
    """One gallery size: the lowest certified threshold, the table's (never below a smaller size's), and
    what the table's threshold does on the calibration probes."""

    size: int
    certified: float  # the lowest threshold certified at this size alone
    threshold: float  # the table's: the largest certified threshold of this size and every smaller one
    fpir: float
    fpir_bound: float  # upper confidence bound at the table's threshold (risk as calibrated)
    fnir: float
    p_value: float  # of "FPIR > target" at the table's threshold
    rates: IdentificationRates


@dataclass(frozen=True)
class GalleryThresholds:
    """A threshold per gallery size (``table``: [[persons, threshold], ...], ascending and non-decreasing)
    keeping FPIR at most ``target`` with probability at least ``1 - risk`` at each size."""

    table: list[list[Any]]
    target: float
    risk: float
    margin: float
    base: float
    sizes: list[SizeCalibration] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The numbers worth keeping beside the table in a profile."""
        return {
            "target": self.target,
            "risk": self.risk,
            "margin": self.margin,
            "base": self.base,
            "sizes": [
                {
                    "persons": s.size,
                    "threshold": s.threshold,
                    "fpir": round(s.fpir, 6),
                    "fpir_bound": round(s.fpir_bound, 6),
                    "fnir": round(s.fnir, 6),
                    "distinct_strangers": s.rates.distinct_strangers,
                    "stranger_probes": s.rates.strangers,
                    "mated_probes": s.rates.mated,
                }
                for s in self.sizes
            ],
        }


def calibrate_gallery_thresholds(
    scores: Mapping[int, ProbeScores],
    *,
    base: float,
    margin: float,
    target: float = 0.01,
    risk: float = 0.1,
    step: float = 0.001,
) -> GalleryThresholds:
    """Per gallery size in ``scores`` (from `open_set_trials`), the lowest threshold ``base + k * step`` whose
    FPIR is certified at most ``target`` with probability ``1 - risk`` (see the module); the table's
    threshold at a size is the largest of the certified ones at that size and every smaller one, so the table
    never falls as the gallery grows.

    The certificate holds per size: a deployment has one gallery size at a time. FPIR falls as the threshold
    rises, so the certified thresholds form an interval up to 1 and a bisection finds its lower end (the
    same as testing in a fixed sequence from 1 down and stopping at the first failure).
    """
    if not 0.0 < target < 1.0:
        raise InvalidRequestError(f"target is an FPIR in (0, 1), got {target}")
    if not 0.0 < risk < 1.0:
        raise InvalidRequestError(f"risk is a probability in (0, 1), got {risk}")
    if not -1.0 <= base <= 1.0 or step <= 0.0:
        raise InvalidRequestError(f"base must be a cosine in [-1, 1] and step positive, got {base}, {step}")
    if not scores:
        raise InvalidRequestError("no probe scores to calibrate on: run open_set_trials first")
    steps = math.floor((1.0 - base) / step + 1e-9)

    def threshold(k: int) -> float:
        return round(base + k * step, 6)

    def passes(k: int, probes: ProbeScores) -> tuple[bool, float]:
        p = hoeffding_bentkus_pvalue(stranger_losses(probes, threshold(k), margin), target)
        return p <= risk, p

    rows: list[SizeCalibration] = []
    floor = -math.inf
    for size in sorted(scores):
        probes = scores[size]
        if not passes(steps, probes)[0]:
            strangers = fpir_fnir(probes, 1.0, margin)[2].distinct_strangers
            raise InvalidRequestError(
                f"gallery size {size}: {strangers} distinct stranger photos cannot certify FPIR <= {target} at "
                f"risk {risk} even at threshold {threshold(steps)}; give more strangers or a larger target"
            )
        low, high = -1, steps  # passes(high) holds; passes(low) is taken as failing
        while high - low > 1:
            middle = (low + high) // 2
            if passes(middle, probes)[0]:
                high = middle
            else:
                low = middle
        certified = threshold(high)
        floor = max(floor, certified)
        fpir, fnir, rates = fpir_fnir(probes, floor, margin)
        losses = stranger_losses(probes, floor, margin)
        rows.append(
            SizeCalibration(
                size=size,
                certified=certified,
                threshold=floor,
                fpir=fpir,
                fpir_bound=fpir_upper_bound(losses, risk),
                fnir=fnir,
                p_value=hoeffding_bentkus_pvalue(losses, target),
                rates=rates,
            )
        )
    return GalleryThresholds(
        table=[[r.size, r.threshold] for r in rows],
        target=target,
        risk=risk,
        margin=margin,
        base=base,
        sizes=rows,
    )
