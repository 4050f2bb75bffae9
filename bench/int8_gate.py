"""The int8 accuracy gate: a model's int8 variant is used only where it scores within 0.5 points of fp32.

Per model, on evaluation data:
- EfficientNet-Lite0/1/2: top-1 on zeroshot-imagenet (500 photos, one per even class);
- MiniLM-L6: retrieval top-1 on SROIE (each receipt's company name finds its receipt's OCR text among all 94),
  plus the mean cosine of the two variants' embeddings;
- SFace: verification accuracy on LFW fold 1 (600 pairs) at the best threshold; its int8 graph is first made by
  convert/sface.py in a scratch folder and may already be rejected there (cosine to OpenCV < 0.99).

Prints the table and which variant each model uses and why; `--write` records the decisions in
src/frugalsense/data/profiles/int8-gate.json, which the model classes consult.

    python bench/int8_gate.py [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import funsd, imagenet_sample, lfw_pairs, sroie
from frugalsense.convert._files import quiet_session
from frugalsense.media import load_image_bytes
from frugalsense.models.registry import ModelZoo
from frugalsense.profiles import Profile, load_profile
from frugalsense.settings import Settings

GATE_POINTS = 0.5
TASK = "int8-gate"
PROFILE = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "profiles" / f"{TASK}.json"


def efficientnet(zoo: ModelZoo, variant: int) -> dict[str, Any]:
    photos = imagenet_sample()
    frames = [(load_image_bytes(p.read_bytes(), zoo.settings), cls) for p, cls in photos]
    scores: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for precision in ("fp32", "int8"):
        model = zoo.get(f"efficientnet-lite{variant}-{precision}")
        model.load()
        start = time.thread_time()
        right = sum(int(np.argmax(model.predict([frame])[0])) == cls for frame, cls in frames)
        cpu[precision] = (time.thread_time() - start) / len(frames) * 1000
        scores[precision] = 100.0 * right / len(frames)
    return {
        "metric": "top-1 %, zeroshot-imagenet (500)",
        "fp32": scores["fp32"],
        "int8": scores["int8"],
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
    scores: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for precision in ("fp32", "int8"):
        if precision not in paths:
            return {"metric": "retrieval", "fp32": None, "int8": None, "note": "int8 rejected at conversion"}
        session = quiet_session(paths[precision])
        start = time.thread_time()
        d, q = embed(session, docs), embed(session, queries)
        cpu[precision] = (time.thread_time() - start) / (len(docs) + len(queries)) * 1000
        vectors[precision] = (d, q)
        found = np.argmax(q @ d.T, axis=1)
        scores[precision] = 100.0 * float(np.mean(found == np.array(targets)))
    cosines = [
        float(np.mean(np.sum(a * b, axis=1))) for a, b in zip(vectors["fp32"], vectors["int8"], strict=True)
    ]
    return {
        "metric": f"retrieval top-1 %, {len(queries)} SROIE/FUNSD queries over {len(docs)} documents",
        "fp32": scores["fp32"],
        "int8": scores["int8"],
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
                "metric": "verification accuracy %, LFW fold 1 (600 pairs), best threshold",
                "fp32": None,
                "int8": None,
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
        scores: dict[str, float] = {}
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
            scores[precision] = 100.0 * max(float(np.mean((sims >= t) == same)) for t in np.unique(sims))
        return {
            "metric": "verification accuracy %, LFW fold 1 (600 pairs), best threshold",
            "fp32": scores["fp32"],
            "int8": scores["int8"],
            "cpu_ms": cpu,
        }


def decide(row: dict[str, Any]) -> tuple[str, str]:
    fp32, int8 = row.get("fp32"), row.get("int8")
    if fp32 is None or int8 is None:
        return "fp32", row.get("note", "no int8 variant to compare")
    drop = fp32 - int8
    if drop <= GATE_POINTS:
        return "int8", f"int8 scores {-drop:+.1f} points vs fp32 (a loss within {GATE_POINTS} is allowed)"
    return "fp32", f"int8 loses {drop:.1f} points (more than {GATE_POINTS})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the decisions in int8-gate.json")
    parser.add_argument("--only", action="append", default=[], help="evaluate only these models")
    args = parser.parse_args()
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
    print(
        f"| model | metric | fp32 | int8 | CPU-ms fp32 / int8 | uses | why |  (gate: within {GATE_POINTS} points)"
    )
    print("|---|---|---:|---:|---:|---|---|")
    decisions: dict[str, dict[str, Any]] = {}
    for name, row in rows.items():
        use, why = decide(row)
        fp32 = "-" if row.get("fp32") is None else f"{row['fp32']:.1f}"
        int8 = "-" if row.get("int8") is None else f"{row['int8']:.1f}"
        ms = row.get("cpu_ms") or {}
        cost = f"{ms['fp32']:.1f} / {ms['int8']:.1f}" if ms else "-"
        extra = f"; {row['note']}" if row.get("note") and use == "int8" else ""
        print(f"| {name} | {row['metric']} | {fp32} | {int8} | {cost} | {use} | {why}{extra} |")
        decisions[name] = {
            "use": use,
            "fp32": row.get("fp32"),
            "int8": row.get("int8"),
            "metric": row["metric"],
            "why": why,
        }
    if args.write:
        # The one profile format (frugalsense.profiles): no rungs; the decisions in params, how in calibration.
        rule = "a model runs its int8 variant only where int8 scores within gate_points of fp32; otherwise fp32"
        models = load_profile(TASK).params.get("models", {}) if PROFILE.is_file() else {}
        profile = Profile(
            TASK,
            [],
            [],
            params={"gate_points": GATE_POINTS, "models": {**models, **decisions}},
            calibration={
                "rule": rule,
                "measured": date.today().isoformat(),
                "command": "python bench/int8_gate.py",
            },
        )
        profile.save(PROFILE)
        print(f"\nwrote {PROFILE.name}")


if __name__ == "__main__":
    main()
