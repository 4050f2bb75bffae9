"""The int8 gate: a model runs its int8 variant only where the data show, with 95% confidence, that int8 loses at
most a stated margin (1 point by default) against fp32 on the same items.

A point difference on a few hundred items is not evidence, so both variants answer the same items and the paired
table decides (frugalsense.calibration.paired): the loss (fp32 minus int8) with Newcombe's paired 95% interval,
int8 only when the interval's upper end is within the margin; McNemar's exact p-value, the discordant counts,
a paired bootstrap interval and the items needed to decide either way (80% power, at the rates seen) are printed
beside it. Per model, on evaluation data:
- EfficientNet-Lite0/1/2: top-1 on zeroshot-imagenet (every photo of images.csv; 500 in ../shared/eval);
- MiniLM-L6: retrieval top-1 on SROIE and FUNSD (a receipt's company or address, a form's header, finds its
  document's text among all of them);
- SFace: verification on LFW pairs at each variant's best threshold; its int8 graph is first made by
  convert/sface.py in a scratch folder and may already be rejected there (cosine to OpenCV < 0.99).

Prints the table; `--write` records the promise and the decisions, with the counts they rest on, in
src/frugalsense/data/profiles/int8-gate.json, which the model classes consult.

    python bench/int8_gate.py [--eval-dir ../shared/eval] [--margin 1.0] [--only efficientnet-lite0] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import funsd, imagenet_sample, lfw_pairs, sroie
from frugalsense.calibration.paired import PairedTest
from frugalsense.convert._files import quiet_session
from frugalsense.media import load_image_bytes
from frugalsense.models.registry import ModelZoo
from frugalsense.profiles import Profile, load_profile
from frugalsense.settings import Settings

MARGIN_POINTS = 1.0
CONFIDENCE = 0.95
TASK = "int8-gate"
PROFILE = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "profiles" / f"{TASK}.json"


def efficientnet(zoo: ModelZoo, variant: int) -> dict[str, Any]:
    photos = imagenet_sample()
    frames = [(load_image_bytes(p.read_bytes(), zoo.settings), cls) for p, cls in photos]
    right: dict[str, list[bool]] = {}
    cpu: dict[str, float] = {}
    for precision in ("fp32", "int8"):
        model = zoo.get(f"efficientnet-lite{variant}-{precision}")
        model.load()
        start = time.thread_time()
        right[precision] = [int(np.argmax(model.predict([frame])[0])) == cls for frame, cls in frames]
        cpu[precision] = (time.thread_time() - start) / len(frames) * 1000
    return {
        "metric": f"top-1, zeroshot-imagenet ({len(frames)} photos)",
        "fp32_right": right["fp32"],
        "int8_right": right["int8"],
        "cpu_ms": cpu,
    }


def minilm(settings: Settings) -> dict[str, Any]:
    from frugalsense.convert.minilm import convert_minilm, embed

    paths = convert_minilm(settings.model_dir)
    # Queries with a known answer: a receipt's company and its address each find that receipt's text; a form's
    # header finds the rest of that form's text. Ranks differ one query at a time, so the more the better.
    docs: list[str] = []
    queries: list[str] = []
    targets: list[int] = []
    for _, lines, key in sroie():
        docs.append(" ".join(text for text, _ in lines))
        for field in ("company", "address"):
            if key.get(field):
                queries.append(key[field])
                targets.append(len(docs) - 1)
    for _, _, form in funsd():
        header = " ".join(str(e["text"]) for e in form if e["label"] == "header" and str(e["text"]).strip())
        body = " ".join(str(e["text"]) for e in form if e["label"] != "header")
        if header and body:
            docs.append(body)
            queries.append(header)
            targets.append(len(docs) - 1)
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    right: dict[str, list[bool]] = {}
    cpu: dict[str, float] = {}
    for precision in ("fp32", "int8"):
        if precision not in paths:
            return {"metric": "retrieval", "note": "int8 rejected at conversion"}
        session = quiet_session(paths[precision])
        start = time.thread_time()
        d, q = embed(session, docs), embed(session, queries)
        cpu[precision] = (time.thread_time() - start) / (len(docs) + len(queries)) * 1000
        vectors[precision] = (d, q)
        found = np.argmax(q @ d.T, axis=1)
        right[precision] = [bool(v) for v in found == np.array(targets)]
    cosines = [
        float(np.mean(np.sum(a * b, axis=1))) for a, b in zip(vectors["fp32"], vectors["int8"], strict=True)
    ]
    return {
        "metric": f"retrieval top-1, {len(queries)} SROIE/FUNSD queries over {len(docs)} documents",
        "fp32_right": right["fp32"],
        "int8_right": right["int8"],
        "cpu_ms": cpu,
        "note": f"mean cosine fp32 vs int8: {np.mean(cosines):.4f}",
    }


def sface(settings: Settings) -> dict[str, Any]:
    from frugalsense.convert.sface import INPUT_NAME, convert_sface, preprocess
    from frugalsense.runtimes import open_session

    with tempfile.TemporaryDirectory() as tmp:
        paths = convert_sface(Path(tmp), int8=True)
        sidecar = json.loads(paths["sidecar"].read_text())
        if "int8" not in paths:
            cosine = sidecar.get("int8", {}).get("min_cosine_vs_opencv")
            return {
                "metric": "verification accuracy, LFW fold 1, best threshold",
                "note": f"int8 rejected at conversion: min cosine to OpenCV {cosine:.4f} < 0.99",
            }
        zoo = ModelZoo(settings)
        detector, embedder = zoo.get("yunet-int8"), zoo.get("sface")
        embedder.load()
        rec = embedder._rec  # type: ignore[attr-defined]  # OpenCV's own alignment, as the model uses
        from frugalsense.models.faces import _yunet_row

        pairs = lfw_pairs("1")
        crops: dict[Path, np.ndarray] = {}
        for path in sorted({p for pair in pairs for p in (pair.a, pair.b)}):
            frame = load_image_bytes(path.read_bytes(), settings)
            faces = detector.predict([frame])[0]
            if faces:
                face = max(faces, key=lambda f: f.box.w * f.box.h)
                crops[path] = np.asarray(rec.align(frame.bgr(), _yunet_row(face)), np.uint8)
        right: dict[str, list[bool]] = {}
        cpu: dict[str, float] = {}
        for precision in ("fp32", "int8"):
            session = open_session("onnxruntime", paths[precision], threads=1)
            start = time.thread_time()
            feats = {p: session.run({INPUT_NAME: preprocess([c])})[0][0] for p, c in crops.items()}
            cpu[precision] = (time.thread_time() - start) / len(crops) * 1000
            feats = {p: v / np.linalg.norm(v) for p, v in feats.items()}
            sims = np.array(
                [float(feats[x.a] @ feats[x.b]) if x.a in feats and x.b in feats else -1.0 for x in pairs]
            )
            same = np.array([x.same for x in pairs])
            best = max(np.unique(sims), key=lambda t: float(np.mean((sims >= t) == same)))
            right[precision] = [bool(v) for v in (sims >= best) == same]
        return {
            "metric": f"verification accuracy, LFW fold 1 ({len(pairs)} pairs), best threshold",
            "fp32_right": right["fp32"],
            "int8_right": right["int8"],
            "cpu_ms": cpu,
        }


def decide(row: dict[str, Any], margin: float, confidence: float) -> dict[str, Any]:
    """The paired test of one model and what it decides: int8 only when the loss is shown within the margin."""
    if "fp32_right" not in row:
        return {"use": "fp32", "metric": row["metric"], "why": row.get("note", "no int8 variant to compare")}
    test = PairedTest.from_answers(row["fp32_right"], row["int8_right"])
    low, high = test.interval(confidence)
    boot = test.bootstrap_interval(confidence, seed=0)
    needed = test.items_needed(margin, confidence)
    interval = f"[{100 * low:+.2f}, {100 * high:+.2f}]"
    if test.passes(margin, confidence):
        use, why = "int8", f"loss {interval} points is within {100 * margin:g}"
    elif test.fails(margin, confidence):
        use, why = "fp32", f"loss {interval} points is over {100 * margin:g}"
    else:
        use, why = "fp32", f"loss {interval} points may exceed {100 * margin:g}: not shown within the margin"
    return {
        "use": use,
        "metric": row["metric"],
        "n": test.n,
        "fp32": round(test.reference_rate, 4),
        "int8": round(test.variant_rate, 4),
        "both_right": test.both,
        "fp32_only": test.reference_only,
        "int8_only": test.variant_only,
        "neither": test.neither,
        "loss_points": round(100 * test.loss, 2),
        "interval_points": [round(100 * low, 2), round(100 * high, 2)],
        "bootstrap_points": [round(100 * boot[0], 2), round(100 * boot[1], 2)],
        "mcnemar_p": round(test.mcnemar_p(), 4),
        "items_needed": needed if needed != float("inf") else None,
        "why": why,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the decisions in int8-gate.json")
    parser.add_argument("--only", action="append", default=[], help="evaluate only these models")
    parser.add_argument("--margin", type=float, default=MARGIN_POINTS, help="allowed top-1 loss, in points")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE, help="of the two-sided interval")
    parser.add_argument(
        "--eval-dir",
        type=Path,
        help="evaluation data laid out as ../shared/eval (default: FRUGALSENSE_EVAL_DIR or ../shared/eval)",
    )
    args = parser.parse_args()
    if args.eval_dir:
        os.environ["FRUGALSENSE_EVAL_DIR"] = str(args.eval_dir.resolve())  # read by _data
    margin = args.margin / 100
    base = Settings()
    settings = Settings(data_dir=base.data_dir, model_cache=base.model_dir)
    zoo = ModelZoo(settings)
    rows: dict[str, dict[str, Any]] = {}
    jobs = {
        "efficientnet-lite0": lambda: efficientnet(zoo, 0),
        "efficientnet-lite1": lambda: efficientnet(zoo, 1),
        "efficientnet-lite2": lambda: efficientnet(zoo, 2),
        "minilm-l6-v2": lambda: minilm(settings),
        "sface": lambda: sface(settings),
    }
    for name, job in jobs.items():
        if args.only and name not in args.only:
            continue
        rows[name] = job()
    promise = (
        f"a model runs int8 only where its loss against fp32 (top-1, or the metric named) is at most "
        f"{args.margin:g} point(s) with {args.confidence:.0%} confidence: the upper end of Newcombe's paired "
        f"{args.confidence:.0%} interval of the loss, on the same items, is within the margin"
    )
    print(f"promise: {promise}\n")
    print(
        "| model | items | fp32 | int8 | loss, points [95% interval] | bootstrap 95% | fp32 only / int8 only "
        "| McNemar p | uses | items to decide | CPU-ms fp32 / int8 |"
    )
    print("|---|---:|---:|---:|---|---|---:|---:|---|---:|---:|")
    decisions: dict[str, dict[str, Any]] = {}
    for name, row in rows.items():
        d = decisions[name] = decide(row, margin, args.confidence)
        ms = row.get("cpu_ms") or {}
        cost = f"{ms['fp32']:.1f} / {ms['int8']:.1f}" if ms else "-"
        if "n" not in d:
            print(f"| {name} | - | - | - | - | - | - | - | fp32: {d['why']} | - | {cost} |")
            continue
        lo, hi = d["interval_points"]
        blo, bhi = d["bootstrap_points"]
        needed = "never (loss at the margin)" if d["items_needed"] is None else f"{d['items_needed']:,}"
        print(
            f"| {name} | {d['n']} | {d['fp32']:.3f} | {d['int8']:.3f} | {d['loss_points']:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] | [{blo:+.2f}, {bhi:+.2f}] | {d['fp32_only']} / {d['int8_only']} "
            f"| {d['mcnemar_p']:.3f} | {d['use']} | {needed} | {cost} |"
        )
    for name, d in decisions.items():
        print(f"{name}: {d['use']}: {d['why']}")
    if args.write:
        # The one profile format (frugalsense.profiles): no rungs; the promise and decisions in params.
        models = load_profile(TASK).params.get("models", {}) if PROFILE.is_file() else {}
        profile = Profile(
            TASK,
            [],
            [],
            params={
                "margin_points": args.margin,
                "confidence": args.confidence,
                "promise": promise,
                "models": {**models, **decisions},
            },
            calibration={
                "test": "Newcombe's hybrid score interval for paired proportions (method 10, 1998); "
                "McNemar's exact test and a paired bootstrap (10,000 resamples, seed 0) reported beside it",
                "data": "the development split of ../shared/eval (or --eval-dir); "
                "each model's metric names its items",
                "measured": date.today().isoformat(),
                "command": "python bench/int8_gate.py --write",
            },
        )
        profile.save(PROFILE)
        print(f"\nwrote {PROFILE.name}")


if __name__ == "__main__":
    main()
