"""The identification (1:N) ladder: SFace alone, dlib climbed to only for probes SFace is unsure of.

    python bench/identify_ladder.py                  # print the tables
    python bench/identify_ladder.py --write-profile  # also store the shipped ladder in faces-verify.json

Data: the recordings of YuNet + SFace + dlib on faces-lfw fold 1 and faces-deepface (bench/out, made by
bench/_ladders.py; recorded here when missing). Method:
- every same-identity pair of LFW pictures is genuine, every cross-identity pair an impostor;
- the fused score is the faces-verify profile's logistic model over both cosines; its threshold is chosen at the
  same false-accept rate as the gallery's SFace identify threshold (1e-3);
- the band is the interval of SFace similarities around the identify threshold holding a share (coverage) of the
  pairs on which SFace alone and the fused score disagree;
- held out: LFW's people are split in two halves; thresholds, band and coverage come from half A, and half B is
  used as a gallery (each person's first picture enrolled, their others probed, people with one picture are
  strangers), decided by the gallery's own rule (threshold and a 0.05 margin over the runner-up). faces-deepface
  is a second held-out gallery.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import deepface_identities, eval_dir
from frugalsense.calibration.faces import calibrate_identify, operating_point
from frugalsense.calibration.record import FaceRecords, record_faces
from frugalsense.faces.fusion import FACES_TASK, IdentifyLadder, load_fusion
from frugalsense.faces.gallery import decide
from frugalsense.faces.profile import IDENTIFY_TASK, load_face_profile
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings

ROOT = Path(__file__).resolve().parent
PROFILE = ROOT.parent / "src" / "frugalsense" / "data" / "profiles" / f"{FACES_TASK}.json"
FAR = 1e-3
COVERAGES = (1.0, 0.99, 0.95, 0.9, 0.8)
Floats = npt.NDArray[np.float64]


@dataclass
class Pictures:
    """The pictures with a face: identity, both embeddings, and the CPU-seconds of each step."""

    people: list[str]
    sface: npt.NDArray[np.float32]
    dlib: npt.NDArray[np.float32]
    cpu_first: Floats  # detect + SFace
    cpu_dlib: Floats

    def subset(self, rows: npt.NDArray[np.intp]) -> Pictures:
        return Pictures(
            [self.people[i] for i in rows],
            self.sface[rows],
            self.dlib[rows],
            self.cpu_first[rows],
            self.cpu_dlib[rows],
        )


def pictures(records: FaceRecords, people_of: dict[str, str]) -> Pictures:
    rows = np.flatnonzero(records.found)
    return Pictures(
        [people_of[records.files[i]] for i in rows],
        records.sface[rows],
        records.dlib[rows],
        (records.cpu_detect + records.cpu_sface)[rows],
        records.cpu_dlib[rows],
    )


def all_pairs(pics: Pictures) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    upper = np.triu_indices(len(pics.people), k=1)
    labels = np.array(pics.people)
    s1 = (pics.sface @ pics.sface.T)[upper].astype(np.float64)
    s2 = (pics.dlib @ pics.dlib.T)[upper].astype(np.float64)
    return s1, s2, labels[upper[0]] == labels[upper[1]]


@dataclass
class Outcome:
    probes: int = 0
    right: int = 0
    wrong: int = 0
    unknown: int = 0
    strangers: int = 0
    strangers_named: int = 0
    climbed: int = 0
    cpu: float = 0.0

    def row(self, name: str) -> str:
        n, total = max(1, self.probes), max(1, self.probes + self.strangers)
        return (
            f"{name:<34} {self.right / n:>7.4f} {self.wrong / n:>7.4f} {self.unknown / n:>8.4f} "
            f"{self.strangers_named:>4}/{self.strangers:<5} {self.climbed / total:>8.3f} "
            f"{1000 * self.cpu / total:>8.1f}"
        )


def gallery_run(
    pics: Pictures, ladder: IdentifyLadder, mode: str, margin: float, strangers: frozenset[str] = frozenset()
) -> Outcome:
    """Enrol each person's first picture, probe the rest; people with one picture, and `strangers`, are not
    enrolled: every picture of theirs is a stranger's probe.

    mode: "sface" (SFace alone), "fused" (dlib on every probe), "ladder" (dlib only inside the band).
    """
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, person in enumerate(pics.people):
        by_person[person].append(i)
    known = {p for p, rows in by_person.items() if len(rows) >= 2 and p not in strangers}
    enrolled = [by_person[p][0] for p in sorted(known)]
    names = [pics.people[i] for i in enrolled]
    gallery_s, gallery_d = pics.sface[enrolled], pics.dlib[enrolled]
    out = Outcome()
    for person, rows in by_person.items():
        probes = rows[1:] if person in known else rows
        for i in probes:
            s1 = (gallery_s @ pics.sface[i]).astype(np.float64)
            order = np.argsort(-s1)
            scores = [(names[j], float(s1[j])) for j in order[:2]]
            cost = float(pics.cpu_first[i])
            climb = mode == "fused" or (mode == "ladder" and ladder.climbs(scores[0][1]))
            if climb:
                cost += float(pics.cpu_dlib[i])
                s2 = (gallery_d @ pics.dlib[i]).astype(np.float64)
                fused = np.array([ladder.rescore(a, b) for a, b in zip(s1, s2, strict=True)])
                order = np.argsort(-fused)
                scores = [(names[j], float(fused[j])) for j in order[:2]]
            decision, _ = decide(scores, threshold=ladder.threshold, margin=margin)
            out.climbed += int(climb)
            out.cpu += cost
            if person in known:
                out.probes += 1
                if decision is None:
                    out.unknown += 1
                elif decision == person:
                    out.right += 1
                else:
                    out.wrong += 1
            else:
                out.strangers += 1
                out.strangers_named += int(decision is not None)
    return out


def pair_check(s1: Floats, s2: Floats, same: npt.NDArray[np.bool_], ladder: IdentifyLadder) -> dict[str, float]:
    """TAR and FAR of SFace alone, fused on every pair, and the ladder, on pairs not used to calibrate."""
    fused = np.array([ladder.logit(a, b) for a, b in zip(s1, s2, strict=True)]) >= ladder.fused_threshold
    alone = s1 >= ladder.threshold
    climbs = (s1 >= ladder.band[0]) & (s1 < ladder.band[1])
    ladder_says = np.where(climbs, fused, alone)
    out = {}
    for name, says in (("sface", alone), ("fused", fused), ("ladder", ladder_says)):
        out[f"{name}_tar"] = float(says[same].mean())
        out[f"{name}_far"] = float(says[~same].mean())
    out["climb_pairs"] = float(climbs.mean())
    out["agree_with_fused"] = float((ladder_says == fused).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-profile", action="store_true", help="store the ladder in faces-verify.json")
    parser.add_argument("--margin", type=float, default=None, help="runner-up margin (default: profile's)")
    args = parser.parse_args(argv)
    settings = Settings()
    face_profile = load_face_profile()
    margin = face_profile.margin if args.margin is None else args.margin
    fusion = load_fusion()
    cache = ROOT / "out"
    lfw_dir, deepface_dir = eval_dir() / "faces-lfw", eval_dir() / "faces-deepface"
    lfw_records = record_faces(settings, lfw_dir, cache_dir=cache)
    lfw = pictures(lfw_records, {f: Path(f).stem.rsplit("_", 1)[0] for f in lfw_records.files})
    deep_records = record_faces(settings, deepface_dir, cache_dir=cache)
    deep = pictures(deep_records, _deepface_people(deep_records.files))

    people = sorted(set(lfw.people))
    half_a = set(people[0::2])
    rows_a = np.array([i for i, p in enumerate(lfw.people) if p in half_a])
    rows_b = np.array([i for i, p in enumerate(lfw.people) if p not in half_a])
    pics_a, pics_b = lfw.subset(rows_a), lfw.subset(rows_b)
    s1a, s2a, ya = all_pairs(pics_a)
    threshold_a = operating_point(s1a[ya], s1a[~ya], FAR).threshold
    print(
        f"LFW fold 1: {len(lfw.people)} pictures with a face, {len(people)} people; half A {len(pics_a.people)} "
        f"pictures ({int(ya.sum())} genuine, {int((~ya).sum())} impostor pairs), half B {len(pics_b.people)}"
    )
    print(f"half A: SFace threshold at FAR {FAR:g} = {threshold_a:.3f}; runner-up margin {margin}")

    s1b, s2b, yb = all_pairs(pics_b)
    header = (
        f"{'configuration':<34} {'right':>7} {'wrong':>7} {'unknown':>8} {'strangers':>10} {'climbed':>8} "
        f"{'CPU-ms':>8}"
    )
    results: dict[str, object] = {}
    for coverage in COVERAGES:
        ladder = calibrate_identify(s1a, s2a, ya, threshold=threshold_a, fusion=fusion, far=FAR, coverage=coverage)
        check = pair_check(s1b, s2b, yb, ladder)
        results[str(coverage)] = {"ladder": ladder.to_params(), "pairs_b": check}  # type: ignore[assignment]
        print(
            f"\ncoverage {coverage}: band {ladder.band[0]:.3f}..{ladder.band[1]:.3f}, fused threshold "
            f"{ladder.fused_threshold:.3f}; half-B pairs: TAR sface {check['sface_tar']:.4f} fused "
            f"{check['fused_tar']:.4f} ladder {check['ladder_tar']:.4f}; FAR sface {check['sface_far']:.5f} fused "
            f"{check['fused_far']:.5f} ladder {check['ladder_far']:.5f}; "
            f"climbs {check['climb_pairs']:.4f} of pairs"
        )
        deep_people = sorted(set(deep.people))
        galleries = (
            ("LFW half B", pics_b, frozenset[str]()),
            ("faces-deepface", deep, frozenset[str]()),
            ("faces-deepface, every other person a stranger", deep, frozenset(deep_people[1::2])),
        )
        for name, pics, strangers in galleries:
            print(f"{name} as a gallery (held out)")
            print(header)
            for mode in ("sface", "fused", "ladder"):
                outcome = gallery_run(pics, ladder, mode, margin, strangers)
                print(outcome.row(mode))
                results[str(coverage)][f"{name}: {mode}"] = outcome.__dict__

    if args.write_profile:
        s1, s2, y = all_pairs(lfw)
        threshold = face_profile.identify_threshold
        coverage = 1.0
        ladder = calibrate_identify(s1, s2, y, threshold=threshold, fusion=fusion, far=FAR, coverage=coverage)
        profile = load_profile(FACES_TASK)
        data = json.loads(PROFILE.read_text())
        # The threshold the band sits around stays in faces-identify only; the band says where it lives.
        data["params"]["identify"] = {
            "threshold_from": IDENTIFY_TASK,
            **ladder.to_params(),
            "far": FAR,
            "coverage": coverage,
            "data": "../shared/eval/faces-lfw fold 1, every pair of pictures with a face (same fusion as compare)",
            "held_out": results[str(coverage)],
            "command": "python bench/identify_ladder.py --write-profile",
        }
        assert profile.task == FACES_TASK
        PROFILE.write_text(json.dumps(data, indent=2) + "\n")
        where = PROFILE.relative_to(ROOT.parent)
        print(f"\nwrote {where}: band {ladder.band}, fused threshold {ladder.fused_threshold}")
    print(
        f"\nmedian CPU-ms per picture: detect + SFace {1000 * statistics.median(lfw.cpu_first):.1f}, dlib "
        f"{1000 * statistics.median(lfw.cpu_dlib):.1f}"
    )
    return 0


def _deepface_people(files: list[str]) -> dict[str, str]:
    """faces-deepface's people per picture file, from its identities file."""
    identities = {path.name: person for path, person in deepface_identities().items()}
    return {f: identities.get(Path(f).name, f) for f in files}


if __name__ == "__main__":
    raise SystemExit(main())
