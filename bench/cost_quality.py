"""Cost against quality, per task: every single model, always-strongest, and the calibrated ladder.

    python bench/_record_text.py && python bench/_record_detect.py   # once: run every rung on every item
    python bench/_record_text.py --parts && python bench/_record_text.py --widths   # PP-OCR's parts apart
    python bench/cost_quality.py                     # tables + plots (bench/out/, docs/img/)
    python bench/cost_quality.py --write-profiles    # also recalibrate the shipped text and face-detect profiles
    python bench/cost_quality.py --no-measure        # skip the live speech and photo-analysis measurements

Items are split once (seeded) into a calibration half and a held-out half: thresholds (and the ladders' free
parameters) are chosen on the first, every number printed is measured on the second. CPU-seconds are thread
CPU time with one intra-op thread, recorded once per rung per item by the `_record_*` scripts; the machine is
shared, so compare ratios within a table rather than absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import _data
import _record_detect as rd
import _record_text as rt
import text_gate as tg
from frugalsense.calibration.ltt import CalibrationTable, calibrate, simulate
from frugalsense.calibration.report import (
    CLOUD_PRICES,
    CostRow,
    TaskData,
    cloud_ratio,
    cost_quality,
    floor_thresholds,
    markdown,
    plot,
    save_task,
    split_rows,
    usd_per_1000,
)
from frugalsense.calibration.tables import gate_task_data
from frugalsense.calibration.text_gate import measure_gate
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings

OUT = Path(__file__).resolve().parent / "out"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
PROFILES = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "profiles"
SEED = 0
FRACTION = 0.5
PROFILE_TARGET = 0.98
RISK = 0.1
#: shipped thresholds are at least this: a rung reporting 0 (did not run, found nothing) never answers
FLOOR = 1e-6

LINE_CONFIDENCES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
DETECT_LADDERS: tuple[tuple[int, ...], ...] = (
    (320, 640, 1280),
    (240, 640, 1280),
    (320, 960),
    (160, 320, 640, 1280),
    (480, 1280),
    (320, 640, 960, 1280),
    (320, 1280),
    (240, 960),
)
FULL_SIZES = (24.0, 32.0, 48.0, 64.0, 96.0)


# -- text ----------------------------------------------------------------------------------------------------


#: the lite rung's free parameters (detector size, recogniser padding) chosen on the calibration half
LITE_OPTIONS: tuple[tuple[int | None, int], ...] = ((None, 320), (1280, 320), (960, 320), (1280, 160), (1280, 48))
#: hybrid (Tesseract, then PP-OCR on the boxes it does not cover): measured and reported, not shipped
HYBRIDS = ((1280, 0.5, 0.8), (1280, 0.7, 0.8), (1280, 0.85, 0.8), (1280, 0.7, 0.95))
#: the hybrid's recogniser padding: the lite rung's cheapest, so that the two compare like with like
HYBRID_PADDING = 48
#: "CER no worse than PP-OCR's": within this much absolute 1 - CER on the held-out pages
CER_NOISE = 0.005


def _text_records() -> tuple[list[dict[str, Any]], list[str]]:
    """SROIE receipts and FUNSD forms with every rung recorded (scene photos never reach the document rungs)."""
    records, sets = [], []
    for part in ("sroie", "funsd"):
        found = rt.with_parts(part)
        records += found
        sets += [part] * len(found)
    return records, sets


def _choose_on_calibration(build: Any, options: Sequence[Any], n: int) -> tuple[Any, list[tuple[Any, float]]]:
    """The option whose ladder, calibrated at the profile target on the calibration rows, costs least there."""
    cal_rows, _ = split_rows(n, FRACTION, SEED)
    scores = []
    for option in options:
        table: CalibrationTable = build(option).subset(cal_rows)
        result = calibrate(table, target=PROFILE_TARGET, risk=RISK, seed=SEED)
        cpu = simulate(table, floor_thresholds(result.thresholds, FLOOR)).cpu
        scores.append((option, cpu if not result.fallback else float("inf")))
    best = min(scores, key=lambda s: s[1])[0]
    return best, scores


def _lite_name(side: int | None, width: int) -> str:
    return f"ppocr-lite (detector {side or 'default'}, padding {width})"


def text_documents() -> tuple[TaskData, tuple[int | None, int, float], list[str], dict[str, Any]]:
    """Documents: ppocr-lite -> ppocr-v4, the lite rung's size, padding and line confidence chosen on the
    calibration half; every single engine and configuration alongside for the tables."""
    records, sets = _text_records()
    options = [(side, width, lc) for side, width in LITE_OPTIONS for lc in LINE_CONFIDENCES]
    best, sweep = _choose_on_calibration(lambda o: rt.lite_table(records, o[0], o[2], o[1]), options, len(records))
    side, width, line_conf = best
    table = rt.lite_table(records, side, line_conf, width)
    tess_q = np.array([rt._quality([(t, q) for t, q, _ in r["tesseract"]], r["truth"]) for r in records])
    tess_c = np.array([r["scan_cpu"] + r["parts"]["tesseract_cpu"] for r in records])
    full_q, full_c = table.quality[:, 1], table.cpu[:, 1]
    singles: dict[str, tuple[Any, Any]] = {
        "tesseract-eng": (tess_q, tess_c),
        "ppocr-v4": (full_q, full_c),
        "both engines (better of the two, oracle)": (np.maximum(tess_q, full_q), tess_c + full_c),
    }
    for s, w in LITE_OPTIONS:
        one = rt.lite_table(records, s, line_conf, w)
        singles[_lite_name(s, w)] = (one.quality[:, 0], one.cpu[:, 0])
    for s, lc, cover in HYBRIDS:
        q, c, share = [], [], []
        for r in records:
            lines, cpu, read = rt.hybrid_reading(r, s, lc, cover, HYBRID_PADDING)
            q.append(rt._quality(lines, r["truth"]))
            c.append(cpu)
            share.append(read)
        name = (
            f"hybrid: tesseract, then PP-OCR where it is unsure (line conf {lc}, cover {cover}; "
            f"{np.mean(share):.0%} of boxes read)"
        )
        singles[name] = (np.array(q), tess_c + np.array(c))
    data = TaskData("text: documents (1 - CER)", table, singles, "ppocr-v4", "1 - located CER", "ppocr-v4")
    info = {"sweep": sorted(sweep, key=lambda o: o[1])[:6], "sets": sets}
    return data, best, sets, info


def text_gate() -> TaskData:
    """The gate on bench/text_gate.py's recording (812 photos judged by full PP-OCR); scans skip the gate.

    Quality per photo: 1 unless the gate stops a photo in which PP-OCR reads text, so the mean is the share of
    photos handled as the strongest rung would (the gate's own calibration is conditional on photos with
    text: bench/text_gate.py). Record it first with ``python bench/text_gate.py --record-only``."""
    rec = tg.Recording.load(tg.OUT)
    if not rec.keys:
        raise SystemExit("no gate recording: run python bench/text_gate.py --record-only first")
    return gate_task_data(rec.records, float(load_profile("text").params.get("line_confidence", 0.9)))


def text_configs(data: TaskData, sets: list[str]) -> list[str]:
    """Every single configuration on the held-out pages, per set: 1 - CER, CPU-s per page, share of both."""
    _, test_rows = split_rows(len(data.table), FRACTION, SEED)
    both = data.singles["both engines (better of the two, oracle)"][1]
    head = "| config | " + " | ".join(f"{n} 1-CER | {n} CPU-s | {n} / both" for n in ("SROIE", "FUNSD", "all"))
    lines = [head + " |", "|---|" + "---:|" * 9]
    for name, (q, c) in data.singles.items():
        cells = []
        for part in ("sroie", "funsd", None):
            rows = np.array([i for i in test_rows if part is None or sets[i] == part])
            cells.append(f"{q[rows].mean():.4f} | {c[rows].mean():.3f} | {c[rows].mean() / both[rows].mean():.0%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def text_targets(data: TaskData, sets: list[str]) -> list[str]:
    """The issue's targets on the held-out pages: CER per set against the better engine, CPU against both."""
    cal_rows, test_rows = split_rows(len(data.table), FRACTION, SEED)
    cal = data.table.subset(cal_rows)
    tess_q, tess_c = data.singles["tesseract-eng"]
    lines = [
        "| set | pages | target | threshold | ladder 1-CER | PP-OCR 1-CER | Tesseract 1-CER | met (CER) | "
        "ladder CPU-s | both CPU-s | ratio | met (<= 60%) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for target in (0.95, 0.98, 0.99, 1.0):
        result = calibrate(cal, target=target, risk=RISK, seed=SEED)
        thresholds = _floor(result.thresholds)
        for name in ("sroie", "funsd", None):
            rows = np.array([i for i in test_rows if name is None or sets[i] == name])
            sub = data.table.subset(rows)
            run = simulate(sub, thresholds)
            ladder_q, ladder_cpu = run.quality, run.cpu
            if result.fallback:  # shipped as PP-OCR alone
                ladder_q, ladder_cpu = float(sub.quality[:, 1].mean()), float(sub.cpu[:, 1].mean())
            both = float(np.mean(tess_c[rows] + sub.cpu[:, 1]))
            better = max(float(sub.quality[:, 1].mean()), float(tess_q[rows].mean()))
            label = "fallback" if result.fallback else f"{thresholds[0]:.3f}"
            lines.append(
                f"| {name or 'both sets'} | {len(rows)} | {target:g} | {label} | {ladder_q:.4f} | "
                f"{sub.quality[:, 1].mean():.4f} | {tess_q[rows].mean():.4f} | "
                f"{'yes' if ladder_q >= better - CER_NOISE else 'no'} | {ladder_cpu:.3f} | {both:.3f} | "
                f"{ladder_cpu / both:.0%} | {'yes' if ladder_cpu <= 0.6 * both else 'no'} |"
            )
    return lines


def gate_costs(gate_data: TaskData) -> list[str]:
    """What a photo stopped at the gate costs against a full OCR pass of the same photo (the table of
    `text_gate()`, the shipped threshold), and against a document page's OCR pass for scale."""
    profile = load_profile("text")
    table = gate_data.table
    has_text = table.quality[:, 0] == 0.0  # stopping a photo loses it exactly when it has text
    stopped = table.confidence[:, 0] >= profile.thresholds[0]
    gate = table.cpu[stopped, 0]
    own = table.cpu[stopped, 1]
    m = measure_gate(table, has_text, profile.thresholds[0])
    docs = [r for p in ("sroie", "funsd") for r in rt.load_raw(p).values()]  # the first recording's CPU
    pp = statistics.median(r["ppocr_cpu"] for r in docs)
    return [
        f"- photos stopped at the gate (shipped threshold {profile.thresholds[0]:g}): {int(stopped.sum())} of "
        f"{len(table)}; route + gate median {statistics.median(gate) * 1000:.1f} CPU-ms against their own full "
        f"PP-OCR pass median {statistics.median(own) * 1000:.1f} CPU-ms: {gate.sum() / own.sum():.1%} "
        "(target <= 10%)",
        f"- every photo without text, stopped or not: {m.no_text_share:.1%} of its OCR pass on average; all "
        f"photos {m.ladder_share:.1%} of OCR on every photo",
        f"- for scale, a document page's full PP-OCR pass: median {pp:.3f} CPU-s",
    ]


# -- face detection ------------------------------------------------------------------------------------------


def detect_data() -> tuple[TaskData, tuple[tuple[int, ...], float], dict[str, Any]]:
    records = rd.load_raw()
    keys = list(records)
    options = [(sides, full) for sides in DETECT_LADDERS for full in FULL_SIZES]
    best, sweep = _choose_on_calibration(lambda o: rd.table(records, o[0], o[1]), options, len(keys))
    sides, full = best
    table = rd.table(records, sides, full)
    singles = {}
    for side in (320, 640, 1280):
        one = rd.table(records, (side,), full)
        singles[f"yunet@{side} alone"] = (one.quality[:, 0], one.cpu[:, 0])
    fixed = rd.table(records, (640, 1280), full)
    # Today's rule: 640, then 1280 only when nothing was found (confidence 0 climbs, anything else stops).
    today = simulate(fixed, [1e-9])
    singles["640 then 1280 if none (before)"] = (today.item_quality, today.item_cpu)
    every = rd.table(records, rd.SIDES, full)
    singles["every scale merged (strongest)"] = (every.quality[:, -1], every.cpu.sum(axis=1))
    data = TaskData("face detection (recall)", table, singles, "every scale merged (strongest)", "face recall")
    info = {"keys": keys, "sweep": sorted(sweep, key=lambda s: s[1])[:5]}
    return data, best, info


def detect_breakdown(data: TaskData, keys: list[str], thresholds: list[float]) -> list[str]:
    """Per source on the held-out photos: faces found and CPU, ladder against the single scales."""
    _, test_rows = split_rows(len(keys), FRACTION, SEED)
    lines = ["| source | photos | ladder recall | ladder CPU-ms | " + " | ".join(
        f"{n} recall | {n} CPU-ms" for n in data.singles if "before" in n or "640 alone" in n) + " |"]  # fmt: skip
    chosen = [n for n in data.singles if "before" in n or "640 alone" in n]
    lines.append("|---|---:|---:|---:|" + "---:|---:|" * len(chosen))
    run = simulate(data.table, thresholds)
    for source in ("detect", "deepface", "gallery", "lfw", "imagenet", "coco", "skimage"):
        rows = np.array([i for i in test_rows if keys[i].startswith(source + "/")])
        if len(rows) == 0:
            continue
        cells = [f"{run.item_quality[rows].mean():.3f}", f"{run.item_cpu[rows].mean() * 1000:.1f}"]
        for name in chosen:
            q, c = data.singles[name]
            cells += [f"{q[rows].mean():.3f}", f"{c[rows].mean() * 1000:.1f}"]
        lines.append(f"| {source} | {len(rows)} | " + " | ".join(cells) + " |")
    return lines


# -- profiles ------------------------------------------------------------------------------------------------


def _floor(thresholds: Sequence[float]) -> list[float]:
    return floor_thresholds(thresholds, FLOOR)


COMMON = {
    "command": "python bench/_record_text.py && python bench/_record_detect.py && "
    "python bench/cost_quality.py --write-profiles",
    "split": f"seeded half (seed {SEED}) for calibration; the other half is held out for bench/cost_quality.py",
    "floor": f"thresholds raised to at least {FLOOR}: a rung reporting confidence 0 never answers",
}


def write_profiles(text: TaskData, lite: Any, det: TaskData, det_best: Any) -> list[str]:
    return [write_text_profile(text, lite), write_detect_profile(det, det_best)]


def write_text_profile(text: TaskData, lite: tuple[int | None, int, float]) -> str:
    cal_text = text.table.subset(split_rows(len(text.table), FRACTION, SEED)[0])
    doc = calibrate(cal_text, target=PROFILE_TARGET, risk=RISK, seed=SEED)
    # The gate's threshold and record are bench/text_gate.py's (LTT on the photos with text); kept as they are.
    gate_record = _text_gate_record()
    if gate_record is None:
        raise SystemExit("the text profile has no gate record: run python bench/text_gate.py --write-profile")
    common = COMMON
    side, width, line_conf = lite
    text_profile = doc.to_profile(
        "text",
        params={"line_confidence": line_conf, "gate": "text-gate", "lite_max_side": side, "lite_min_width": width},
        provenance={
            **common,
            "command": "python bench/_record_text.py && python bench/_record_text.py --parts && "
            "python bench/_record_text.py --widths && python bench/cost_quality.py --write-profiles",
            "data": f"../shared/eval: ocr-sroie and ocr-funsd ({len(text.table)} pages, every one) for the "
            "document rungs; gate: ocr-icdar2015 (10 scene photos, 2 WildReceipt receipts) against faces-lfw, "
            "zeroshot-imagenet, detect-coco-tiny photos",
            "quality_measure": "1 - located CER (frugalsense.quality.located_cer), clipped to [0, 1]",
            "gate": gate_record,
        },
    )
    # With nothing certified the lite rung would only add CPU: the profile drops it. Photos skip the lite rung
    # (it reports confidence 0), so they still go from the gate to the full pipeline.
    rungs, thresholds = (["ppocr-v4"], []) if doc.fallback else (doc.rungs, doc.thresholds)
    profile = type(text_profile)(
        task="text",
        rungs=["text-gate", *rungs],
        thresholds=_floor([float(str(gate_record["threshold"])), *thresholds]),
        target=PROFILE_TARGET,
        risk=RISK,
        params=text_profile.params,
        calibration=text_profile.calibration,
    )
    profile.save(PROFILES / "text.json")
    return f"- text.json: rungs {profile.rungs}, thresholds {profile.thresholds}, params {profile.params}"


def write_detect_profile(det: TaskData, det_best: Any) -> str:
    cal_det = det.table.subset(split_rows(len(det.table), FRACTION, SEED)[0])
    dec = calibrate(cal_det, target=PROFILE_TARGET, risk=RISK, seed=SEED)
    common = COMMON
    full = det_best[1]
    det_profile = dec.to_profile(
        "face-detect",
        params={"detector": "yunet-int8", "full_size_px": full},
        provenance={
            **common,
            "data": "../shared/eval: faces-detect (recall of 43 labelled faces), faces-deepface, faces-gallery, "
            "faces-lfw, zeroshot-imagenet, detect-coco-tiny, captions-skimage (agreement with every scale merged)",
            "quality_measure": "recall of labelled faces; elsewhere share of the faces every scale merged finds",
        },
    )
    det_profile = type(det_profile)(**{**det_profile.to_dict(), "thresholds": _floor(det_profile.thresholds)})
    det_profile.save(PROFILES / "face-detect.json")
    return (
        f"- face-detect.json: rungs {det_profile.rungs}, thresholds {det_profile.thresholds}, full_size_px {full}"
    )


# -- live measurements ---------------------------------------------------------------------------------------


def speech_costs(settings: Settings) -> list[str]:
    from frugalsense.analyze import Analyzer
    from frugalsense.media import load
    from frugalsense.media.types import AudioClip

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return ["- espeak-ng missing: speech not measured"]
    model = Analyzer(settings).zoo.get("whisper-tiny-en")
    model.load()

    def cpu(clip: AudioClip) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            model.predict([clip])
            times.append(time.process_time() - start)
        return statistics.median(times)

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        sentence = (
            "Please send the invoice for the blue chairs before Monday, and call the plumber about the pipe."
        )
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True)
        speech = load(wav, settings).audio
    assert speech is not None
    seconds = len(speech.samples) / speech.sample_rate
    rng = np.random.default_rng(0)
    silence = AudioClip(np.zeros_like(speech.samples))
    hiss = AudioClip((rng.normal(0, 0.003, len(speech.samples))).astype(np.float32))
    s, z, h = cpu(speech), cpu(silence), cpu(hiss)
    return [
        f"| clip ({seconds:.1f} s) | CPU-s (median of 3, process clock) | share of speech |",
        "|---|---:|---:|",
        f"| speech (espeak-ng) | {s:.3f} | 100% |",
        f"| digital silence | {z:.3f} | {z / s:.1%} |",
        f"| faint hiss (-50 dBFS) | {h:.3f} | {h / s:.1%} |",
    ]


def photo_costs(settings: Settings, price: float) -> list[str]:
    """Full analysis of a photo (faces, labels, moderation, text gate): median receipt, against cloud prices."""
    from frugalsense.analyze import Analyzer

    analyzer = Analyzer(settings)
    photos = [p.a for p in _data.lfw_pairs()[::20]] + [p for p, _ in _data.imagenet_sample()[::20]]
    features = ["faces", "labels", "moderation", "text"]
    analyzer.analyze(photos[0], features)
    results = [analyzer.analyze(p, features) for p in photos]
    cpu = [r.receipt.cpu_seconds for r in results]
    read = sum(any(s.stage == "ocr" for s in r.receipt.stages) for r in results)
    median, mean = statistics.median(cpu), statistics.fmean(cpu)
    lines = [
        f"- full analysis of a photo ({len(photos)} photos: LFW + ImageNet; faces, labels, moderation, text; the "
        f"gate sent {read} to OCR): median {median * 1000:.1f} CPU-ms (${usd_per_1000(median, price):.5f} per "
        f"1,000), mean {mean * 1000:.1f} CPU-ms (${usd_per_1000(mean, price):.5f} per 1,000) at ${price}/CPU-hour",
    ]
    for name, per_feature in CLOUD_PRICES.items():
        ratio = cloud_ratio(median, 4, price, per_feature)
        ratio_mean = cloud_ratio(mean, 4, price, per_feature)
        verdict = "met" if min(ratio, ratio_mean) >= 500 else "NOT met"
        lines.append(
            f"- {name}: 4 features x ${per_feature:.2f} = ${4 * per_feature:.2f} per 1,000 -> {ratio:,.0f}x "
            f"cheaper here at the median, {ratio_mean:,.0f}x at the mean (target >= 500x: {verdict})"
        )
    return lines


def other_tasks(price: float) -> dict[str, tuple[list[CostRow], str]]:
    """Rows from the labels and face-verification ladders (bench/_ladders.py), on their held-out halves."""
    import _ladders  # type: ignore[import-not-found]

    makers: dict[str, tuple[Any, str]] = {
        "labels": (lambda: _ladders.labels_rows(), "top-1"),
        "faces-verify (faces-lfw)": (lambda: _ladders.faces_rows("faces-lfw"), "pair accuracy"),
        "faces-verify (faces-deepface)": (lambda: _ladders.faces_rows("faces-deepface"), "pair accuracy"),
    }
    out: dict[str, tuple[list[CostRow], str]] = {}
    for task, (make, quality_name) in makers.items():
        rows = [
            CostRow(
                task=task,
                config=config,
                quality=quality,
                cpu_s=cpu,
                usd_per_1000=usd_per_1000(cpu, price),
                items=0,
                fallback="fallback" in config,
            )
            for config, quality, cpu in make()
        ]
        out[task] = (rows, quality_name)
    return out


def _text_gate_record() -> dict[str, object] | None:
    """The gate record bench/text_gate.py wrote into the shipped text profile, if any."""
    record = load_profile("text").calibration.get("gate")
    if isinstance(record, dict) and str(record.get("command", "")).startswith("python bench/text_gate.py"):
        return record
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-profiles", action="store_true")
    parser.add_argument("--no-measure", action="store_true", help="skip the live speech and photo measurements")
    args = parser.parse_args()
    settings = Settings()
    price = settings.price_per_cpu_hour
    rows_by_task: dict[str, list[CostRow]] = {}
    names: dict[str, str] = {}

    text, lite, sets, info = text_documents()
    gate = text_gate()
    det, det_best, det_info = detect_data()
    for slug, data in (("text-gate", gate), ("text-documents", text), ("face-detect", det)):
        rows = cost_quality(
            data,
            targets=(0.9, 0.95, 0.98, 0.99, 1.0),
            price_per_cpu_hour=price,
            risk=RISK,
            fraction=FRACTION,
            seed=SEED,
            min_threshold=FLOOR,
        )
        rows_by_task[data.task] = rows
        names[data.task] = data.quality_name
        save_task(data, OUT / "tables" / f"{slug}.npz")
        print(f"\n### {data.task}\n")
        print(markdown(rows, quality_name=data.quality_name, rungs=data.table.rungs))
    print(f"\ntext: lite rung (detector side, padding, line confidence) chosen on the calibration half: {lite}")
    print(f"(cheapest 6 there: {info['sweep']})")
    print("\n### text: every configuration on the held-out pages\n")
    print("\n".join(text_configs(text, sets)))
    print("\n### text ladder against the issue's targets (held-out pages)\n")
    print("\n".join(text_targets(text, sets)))
    print("\n### text gate cost\n")
    print("\n".join(gate_costs(gate)))
    print(f"\nface detection: rungs {det_best[0]}, full_size_px {det_best[1]}")
    print(f"(cheapest 5 on the calibration half: {det_info['sweep']})")
    cal = det.table.subset(split_rows(len(det.table), FRACTION, SEED)[0])
    det_thresholds = _floor(calibrate(cal, target=PROFILE_TARGET, risk=RISK, seed=SEED).thresholds)
    print(f"\n### face detection by source (held-out photos, ladder @{PROFILE_TARGET})\n")
    print("\n".join(detect_breakdown(det, det_info["keys"], det_thresholds)))

    for task, (task_rows, quality_name) in other_tasks(price).items():
        rows_by_task[task] = task_rows
        names[task] = quality_name
        print(f"\n### {task} (held-out half)\n")
        print(markdown(task_rows, quality_name=quality_name))

    if args.write_profiles:
        print("\n### profiles written\n")
        print("\n".join(write_profiles(text, lite, det, det_best)))
    if not args.no_measure:
        print("\n### speech: silence against speech (Whisper tiny.en with Silero VAD)\n")
        print("\n".join(speech_costs(settings)))
        print("\n### a photo, end to end, against cloud list prices\n")
        print("\n".join(photo_costs(settings, price)))

    path = plot(rows_by_task, OUT / "cost_quality.png", quality_names=names)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS_IMG / "cost_quality.png")
    print(f"\nplot: {path.relative_to(OUT.parent.parent)} (copy in docs/img/cost_quality.png)")


if __name__ == "__main__":
    main()
