"""Open-set identification against gallery size: how often a gallery names a stranger (FPIR) or fails a person
it holds (FNIR) at 10 to 100,000 persons, and an identify threshold per gallery size keeping FPIR at most 1%.

    python bench/open_set.py                   # print the tables (a few minutes; embeddings cached in bench/out)
    python bench/open_set.py --markdown        # the same tables in Markdown
    python bench/open_set.py --write-profile   # also store the table in faces-identify.json

Data: SFace embeddings (YuNet, int8) of every photo in ../shared/eval/faces-lfw (the face nearest the centre,
LFW's labelled one) and faces-deepface (the largest face), cached in bench/out/open_set_embeddings.npz.

Method (`frugalsense.calibration.open_set`; NIST FRVT 1:N terms):
- a trial is one random split: people with more photos than are reserved for enrolment may be enrolled, half of
  them are, with their first photo (or first k); their later photos are mated probes. A gallery of N persons
  holds N of the enrolled people (all when N is larger) and synthetic distractor persons up to N, drawn from a
  Gaussian model of SFace embeddings (mean, people's spread, one person's photos' spread) fitted to real LFW
  photos, enrolled like the real ones. Every photo of a person not in the gallery is a stranger's probe (LFW's
  272 people with one photo always are). The gallery's own rule decides: a name needs the best person score
  (best cosine over their enrolled faces) at or above the threshold and the profile's margin over the
  runner-up. FPIR is the share of stranger probes given a name, FNIR the share of mated probes not given their
  own (unknown or wrong);
- a Gaussian fitted on a few hundred people draws faces like them (the best of 100,000 drawn faces is closer
  to a photo of someone in the fit than to anyone else's): the people who probe never fit the model that
  draws their distractors. Calibration is cross-fitted: the people fall in two folds, each probed against
  distractors from the other fold's model;
- held out: LFW's people are split in two halves by a seeded permutation. Half A calibrates (cross-fitted
  within A) and fits the model that draws half B's distractors. Calibration: per gallery size, the lowest
  threshold (step 0.001, never below the per-pair one) whose FPIR is at most the target with probability
  1 - risk, by the Hoeffding-Bentkus test over distinct stranger photos (each photo's loss is the share of
  splits it was named in, so n counts photos, not photos x splits); the table never falls as N grows. Half B
  checks FPIR and FNIR at the per-pair threshold and at A's table; 95% intervals are Wilson's with
  n = distinct stranger photos;
- the model is checked against real faces twice: its cosine quantiles against real half-B pairs, and FPIR on
  half B with half A's people (first photo each) as distractors against as many drawn ones;
- faces-deepface (13 people, large web photos) is a second held-out check: enrol 7 people with one photo each,
  probe the rest, 7 real persons plus distractors up to N;
- several enrolled photos per person: LFW people with at least 4 photos are eligible, half of them (per fold,
  cross-fitted) enrolled with 1 or with 3 photos (distractors get as many), the same later photos probed
  (split i enrols the same people for both);
- the shipped table is calibrated the same way on all LFW people (twice the strangers of half A, so a tighter
  bound; each half's distractors drawn from the other half's model), after half B showed the procedure
  holds; faces-deepface stays held out for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import deepface_identities, eval_dir
from frugalsense.calibration.gallery_thresholds import GalleryThresholds, calibrate_gallery_thresholds
from frugalsense.calibration.geometry import Geometry, fit_geometry
from frugalsense.calibration.open_set import (
    GALLERY_SIZES,
    ProbeScores,
    cross_fitted_trials,
    fpir_fnir,
    open_set_trials,
)
from frugalsense.calibration.paired import wilson_interval
from frugalsense.faces.profile import IDENTIFY_TASK, FaceProfile, load_face_profile

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "src" / "frugalsense" / "data" / "profiles" / f"{IDENTIFY_TASK}.json"
CACHE = ROOT / "bench" / "out" / "open_set_embeddings.npz"
DEEPFACE_ENROLLED = 7
Matrix = npt.NDArray[np.float32]


# -- data -----------------------------------------------------------------------------------------------------


class Embeddings:
    """One face embedding per photo with a face, its identity, and how many photos were read."""

    def __init__(self, files: list[str], names: list[str], vectors: Matrix, read: int) -> None:
        self.files, self.names, self.vectors, self.read = files, names, vectors, read

    def people(self) -> list[str]:
        return sorted(set(self.names))

    def of(self, people: set[str]) -> Embeddings:
        rows = [i for i, name in enumerate(self.names) if name in people]
        return Embeddings(
            [self.files[i] for i in rows], [self.names[i] for i in rows], self.vectors[rows], len(rows)
        )

    def photos_per_person(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.names:
            counts[name] = counts.get(name, 0) + 1
        return counts


def _embed(paths: list[Path], identity: dict[Path, str], centre: bool) -> Embeddings:
    from calibrate_faces import embed_all
    from frugalsense.analyze import Analyzer, Pipeline
    from frugalsense.settings import Settings

    found, _ = embed_all(Analyzer(Settings(), pipeline=Pipeline(face_embedder="sface")), paths, centre=centre)
    kept = [p for p in paths if p in found]
    return Embeddings(
        [f"{p.parent.name}/{p.name}" for p in kept],
        [identity[p] for p in kept],
        np.stack([found[p] for p in kept]).astype(np.float32),
        len(paths),
    )


def load_embeddings(refresh: bool) -> tuple[Embeddings, Embeddings]:
    """LFW and faces-deepface, from the cache when it holds the same photo lists."""
    lfw_paths = sorted((eval_dir() / "faces-lfw" / "images").glob("*/*.jpg"))
    deepface = deepface_identities()
    deepface_paths = sorted(deepface)
    listing = [f"{p.parent.name}/{p.name}" for p in lfw_paths] + [f"deepface/{p.name}" for p in deepface_paths]
    if CACHE.is_file() and not refresh:
        with np.load(CACHE) as data:
            if data["listing"].tolist() == listing:
                return (
                    Embeddings(
                        data["lfw_files"].tolist(),
                        data["lfw_names"].tolist(),
                        data["lfw_vectors"],
                        int(data["lfw_read"]),
                    ),
                    Embeddings(
                        data["deepface_files"].tolist(),
                        data["deepface_names"].tolist(),
                        data["deepface_vectors"],
                        int(data["deepface_read"]),
                    ),
                )
    print(
        f"embedding {len(lfw_paths)} LFW and {len(deepface_paths)} faces-deepface photos (cached after)",
        flush=True,
    )
    lfw = _embed(lfw_paths, {p: p.parent.name for p in lfw_paths}, centre=True)
    df = _embed(deepface_paths, deepface, centre=False)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        CACHE,
        listing=np.array(listing),
        lfw_files=np.array(lfw.files),
        lfw_names=np.array(lfw.names),
        lfw_vectors=lfw.vectors,
        lfw_read=lfw.read,
        deepface_files=np.array(df.files),
        deepface_names=np.array(df.names),
        deepface_vectors=df.vectors,
        deepface_read=df.read,
    )
    return lfw, df


# -- tables ---------------------------------------------------------------------------------------------------


def show(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool) -> None:
    cells = [[str(c) for c in row] for row in rows]
    if markdown:
        print(f"\n### {title}\n")
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---" for _ in headers) + "|")
        for row in cells:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), flush=True)


def fpir_cell(scores: ProbeScores, threshold: float, margin: float) -> str:
    """FPIR in percent with its 95% Wilson interval, n = distinct stranger photos."""
    fpir, _, rates = fpir_fnir(scores, threshold, margin)
    n = rates.distinct_strangers
    low, high = wilson_interval(round(fpir * n), n)
    return f"{100 * fpir:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def fnir_cell(scores: ProbeScores, threshold: float, margin: float) -> str:
    """FNIR in percent, and its parts: unknown / wrong name (percent of mated probes)."""
    _, fnir, rates = fpir_fnir(scores, threshold, margin)
    mated = max(1, rates.mated)
    return f"{100 * fnir:.2f} ({100 * rates.unknown / mated:.2f} / {100 * rates.wrong / mated:.2f})"


def size_label(n: int) -> str:
    return f"{n:,}"


def check_rows(
    scores: dict[int, ProbeScores], profile: FaceProfile, tables: Sequence[FaceProfile]
) -> list[list[object]]:
    """Per gallery size: FPIR and FNIR at the per-pair threshold and at each table's threshold for that size."""
    rows: list[list[object]] = []
    for n, probes in sorted(scores.items()):
        row: list[object] = [size_label(n), len(np.unique(probes.photo[~probes.mated])), int(probes.mated.sum())]
        for chosen in (replace(profile, by_gallery_size=()), *tables):  # first the per-pair threshold alone
            t = chosen.identify_threshold_for(n)
            row += [f"{t:.3f}", fpir_cell(probes, t, profile.margin), fnir_cell(probes, t, profile.margin)]
        rows.append(row)
    return rows


def calibration_rows(calibrated: GalleryThresholds) -> list[list[object]]:
    return [
        [
            size_label(s.size),
            f"{s.certified:.3f}",
            f"{s.threshold:.3f}",
            f"{100 * s.fpir:.3f}",
            f"{100 * s.fpir_bound:.3f}",
            f"{s.p_value:.3f}",
            f"{100 * s.fnir:.2f}",
            s.rates.distinct_strangers,
            s.rates.strangers,
            s.rates.mated,
        ]
        for s in calibrated.sizes
    ]


CALIBRATION_HEADERS = (
    "persons",
    "certified t",
    "table t",
    "FPIR %",
    "FPIR bound %",
    "p",
    "FNIR %",
    "stranger photos",
    "stranger probes",
    "mated probes",
)


def geometry_rows(
    geometry: Geometry, fitted: Embeddings, held_out: Embeddings, rng: np.random.Generator
) -> list[list[object]]:
    """Cosines of real held-out photos against each other and against the model's draws: is the model's tail
    (what a stranger's best score over many distractors depends on) like the real one? And the echo of the
    people it was fitted on: the best of 100,000 drawn faces against their photos and against others'."""
    names = np.array(held_out.names)
    real = held_out.vectors @ held_out.vectors.T
    upper = np.triu_indices(len(names), k=1)
    same = names[upper[0]] == names[upper[1]]
    real_genuine, real_impostor = real[upper][same], real[upper][~same]
    centres = geometry.centres(rng, 2000)
    pair = geometry.photo(rng, np.repeat(centres, 2, axis=0)).reshape(2000, 2, -1)
    synthetic_genuine = np.einsum("ij,ij->i", pair[:, 0], pair[:, 1])
    synthetic_impostor = (held_out.vectors @ geometry.distractors(rng, 20_000).T).ravel()
    rows: list[list[object]] = [
        ["same person: mean (sd)", _mean_sd(real_genuine), _mean_sd(synthetic_genuine)],
        ["different people: mean (sd)", _mean_sd(real_impostor), _mean_sd(synthetic_impostor)],
    ]
    for q in (0.99, 0.999, 0.9999):
        rows.append(
            [
                f"different people: {100 * q:g}% quantile",
                f"{np.quantile(real_impostor, q):.3f}",
                f"{np.quantile(synthetic_impostor, q):.3f}",
            ]
        )
    best_fitted = (fitted.vectors @ geometry.distractors(rng, 100_000).T).max(axis=1)
    best_held_out = (held_out.vectors @ geometry.distractors(rng, 100_000).T).max(axis=1)
    rows.append(
        [
            "best of 100,000 drawn faces against a photo: median",
            f"{np.median(best_held_out):.3f} (half B)",
            f"{np.median(best_fitted):.3f} (half A: in the fit)",
        ]
    )
    rows.append(
        [
            "different people: pairs",
            f"{len(real_impostor):,} (real pairs)",
            f"{len(synthetic_impostor):,} (real x drawn)",
        ]
    )
    return rows


def distractor_rows(
    source: Embeddings,
    held_out: Embeddings,
    geometry: Geometry,
    profile: FaceProfile,
    table: FaceProfile,
    splits: int,
    seed: int,
) -> list[list[object]]:
    """The only scale at which real faces can stand in for distractors: is FPIR the same with drawn ones?"""
    real = np.stack([source.vectors[source.names.index(p)] for p in source.people()])
    eligible = sum(c >= 2 for c in held_out.photos_per_person().values())
    size = eligible // 2 + len(real)
    runs = [
        open_set_trials(
            held_out.vectors, held_out.names, geometry, sizes=[size], splits=splits, seed=seed, distractors=faces
        )[size]
        for faces in (real, None)
    ]
    rows: list[list[object]] = []
    for t, m in (
        (profile.identify_threshold, 0.0),
        (profile.identify_threshold, profile.margin),
        (table.identify_threshold_for(size), profile.margin),
    ):
        rates = [fpir_fnir(r, t, m) for r in runs]
        rows.append(
            [
                size_label(size),
                f"{t:.3f}",
                m,
                *(fpir_cell(r, t, m) for r in runs),
                *(f"{100 * fnir:.2f}" for _, fnir, _ in rates),
            ]
        )
    return rows


def _mean_sd(values: npt.NDArray[np.float32]) -> str:
    return f"{float(np.mean(values)):.3f} ({float(np.std(values)):.3f})"


# -- the profile ----------------------------------------------------------------------------------------------


def write_profile(calibrated: GalleryThresholds, splits: int, data: str) -> None:
    """Add (or replace) params.identify_by_gallery_size and params.open_set; every other key stays as it is."""
    profile = json.loads(PROFILE.read_text())
    profile["params"]["identify_by_gallery_size"] = calibrated.table
    profile["params"]["open_set"] = {
        "target_fpir": calibrated.target,
        "risk": calibrated.risk,
        "margin": calibrated.margin,
        "splits": splits,
        "data": data,
        "measured": [
            [s.size, round(s.fpir, 5), round(s.fpir_bound, 5), round(s.fnir, 5)] for s in calibrated.sizes
        ],
        "measured_columns": ["persons", "fpir", "fpir_bound", "fnir"],
        "command": " ".join(["python", "bench/open_set.py", *sys.argv[1:]]),
        "created": datetime.now(UTC).date().isoformat(),
    }
    PROFILE.write_text(json.dumps(profile, indent=2) + "\n")
    print(f"\nwrote params.identify_by_gallery_size and params.open_set to {PROFILE.relative_to(ROOT)}")


# -- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=20, help="random splits per measurement")
    parser.add_argument("--target", type=float, default=0.01, help="FPIR to certify at every gallery size")
    parser.add_argument("--risk", type=float, default=0.1, help="chance the certificate is wrong, per size")
    parser.add_argument("--sizes", default=",".join(str(n) for n in GALLERY_SIZES), help="gallery sizes")
    parser.add_argument("--seed", type=int, default=0, help="seeds the halves and the splits")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--refresh", action="store_true", help="embed again even when cached")
    parser.add_argument("--write-profile", action="store_true", help="store the table in faces-identify.json")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    md = args.markdown

    profile = load_face_profile()
    base, margin = profile.identify_threshold, profile.margin
    lfw, deepface = load_embeddings(args.refresh)
    people = lfw.people()
    order = np.random.default_rng(args.seed).permutation(len(people))
    half_a = lfw.of({people[i] for i in order[: len(people) // 2]})
    half_b = lfw.of({people[i] for i in order[len(people) // 2 :]})
    counts = lfw.photos_per_person()
    show(
        "data read",
        ("set", "photos read", "with a face", "people", "people with 2+ photos"),
        [
            ["faces-lfw", lfw.read, len(lfw.names), len(people), sum(c >= 2 for c in counts.values())],
            *[
                [name, "", len(h.names), len(h.people()), sum(c >= 2 for c in h.photos_per_person().values())]
                for name, h in (("  half A (calibrates)", half_a), ("  half B (checks)", half_b))
            ],
            [
                "faces-deepface",
                deepface.read,
                len(deepface.names),
                len(deepface.people()),
                sum(c >= 2 for c in deepface.photos_per_person().values()),
            ],
        ],
        md,
    )
    print(f"profile {IDENTIFY_TASK}: identify {base} (per-pair FAR 1e-3), margin {margin}; splits {args.splits}")

    geometry_a = fit_geometry(half_a.vectors, half_a.names)
    show(
        "the Gaussian model (fitted on half A) against real half-B photos: cosine similarity",
        ("measure", "real (half B)", "model"),
        geometry_rows(geometry_a, half_a, half_b, np.random.default_rng(args.seed + 1)),
        md,
    )

    def trials(data: Embeddings, seed: int, photos: int = 1, reserved: int = 1) -> dict[int, ProbeScores]:
        """Cross-fitted: each fold's distractors come from a model of the other fold's people."""
        return cross_fitted_trials(
            data.vectors,
            data.names,
            sizes=sizes,
            splits=args.splits,
            seed=seed,
            enrolled_photos=photos,
            reserved_photos=reserved,
        )

    calibrated_a = calibrate_gallery_thresholds(
        trials(half_a, args.seed + 10), base=base, margin=margin, target=args.target, risk=args.risk
    )
    show(
        f"calibrated on half A: FPIR <= {100 * args.target:g}% with probability {1 - args.risk:g} per size",
        CALIBRATION_HEADERS,
        calibration_rows(calibrated_a),
        md,
    )
    table_a = replace(profile, by_gallery_size=tuple((int(n), float(t)) for n, t in calibrated_a.table))

    scores_b = open_set_trials(
        half_b.vectors, half_b.names, geometry_a, sizes=sizes, splits=args.splits, seed=args.seed + 20
    )
    check_headers = ("persons", "stranger photos", "mated probes")
    two = ("t", "FPIR % [95%]", "FNIR % (unknown / wrong)")
    show(
        "held out, half B: per-pair threshold | half A's table",
        (*check_headers, *two, *two),
        check_rows(scores_b, profile, [table_a]),
        md,
    )
    show(
        "half B: what the margin does at the per-pair threshold (FPIR %)",
        ("persons", "margin 0", f"margin {margin}"),
        [
            [size_label(n), fpir_cell(s, base, 0.0), fpir_cell(s, base, margin)]
            for n, s in sorted(scores_b.items())
        ],
        md,
    )

    show(
        "half B, real against drawn distractors: half A's people (first photo each) or as many drawn from the "
        "model, after half B's enrolled people",
        ("persons", "t", "margin", "FPIR % real", "FPIR % drawn", "FNIR % real", "FNIR % drawn"),
        distractor_rows(half_a, half_b, geometry_a, profile, table_a, args.splits, args.seed + 25),
        md,
    )

    calibrated_all = calibrate_gallery_thresholds(
        trials(lfw, args.seed + 30), base=base, margin=margin, target=args.target, risk=args.risk
    )
    show(
        "the table to ship: calibrated on all LFW people",
        CALIBRATION_HEADERS,
        calibration_rows(calibrated_all),
        md,
    )
    table_all = replace(profile, by_gallery_size=tuple((int(n), float(t)) for n, t in calibrated_all.table))

    deepface_sizes = sorted({DEEPFACE_ENROLLED, *(n for n in sizes if n > 10)})
    scores_df = open_set_trials(
        deepface.vectors,
        deepface.names,
        geometry_a,
        sizes=deepface_sizes,
        splits=args.splits,
        seed=args.seed + 40,
        enrolled_people=DEEPFACE_ENROLLED,
    )
    show(
        f"held out, faces-deepface ({DEEPFACE_ENROLLED} of {len(deepface.people())} people enrolled, one photo "
        "each; distractors from half A's model): per-pair | half A's table | shipped table",
        (*check_headers, *two, *two, *two),
        check_rows(scores_df, profile, [table_a, table_all]),
        md,
    )

    rows: list[list[object]] = []
    for k in (1, 3):
        scores_k = trials(lfw, args.seed + 50, photos=k, reserved=3)  # the same people enrolled for k = 1, 3
        for row in check_rows(scores_k, profile, [table_all]):
            rows.append([k, *row])
    show(
        "several enrolled photos: all LFW people with 4+ photos, half enrolled with k photos (distractors too), "
        "photos 4+ probed: per-pair | shipped table",
        ("k", *check_headers, *two, *two),
        rows,
        md,
    )

    print(f"\nidentify_by_gallery_size (all LFW): {json.dumps(calibrated_all.table)}")
    print(f"identify_by_gallery_size (half A):  {json.dumps(calibrated_a.table)}")
    if args.write_profile:
        data = (
            f"faces-lfw, all {len(lfw.names)} photos with a face ({len(people)} people), {args.splits} random "
            "splits; distractors from a Gaussian model fitted to the same photos"
        )
        write_profile(calibrated_all, args.splits, data)


if __name__ == "__main__":
    main()
