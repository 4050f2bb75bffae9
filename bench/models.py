"""Every model in the zoo, measured here: load time, CPU-ms per item, peak RSS, and quality on ../shared/eval.

    python bench/models.py            # the whole table (about 15 minutes on 2 cores)
    python bench/models.py --quick    # every 4th item of the large sets
    python bench/models.py --only sface,yunet-int8
    python bench/models.py --only compare --folds 1 --eval-dir ../shared/eval   # the shipped compare on LFW

Each model runs in a child process of its own, so its load time and peak RSS are its own (the RSS includes the
Python interpreter and numpy, about 60 MB). CPU-ms is the median over items, measured with the clock the
model's runtime computes on (thread CPU time, or process CPU time for CTranslate2), one intra-op thread.

Face verification scores what a user gets. The embedder rows look at the faces `compare` looks at (the first
picture's largest face against every face of the second, at the best threshold); the `compare` table runs the
shipped `FaceComparer` on every pair, with its ladder and with the fused score on every pair, CPU from the
receipts. LFW pairs come from `--folds` of `pairs.csv` under `--eval-dir`; the number read is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import _data
from frugalsense.analyze import Analyzer
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.models.faces import cosine
from frugalsense.profiles import load_profile
from frugalsense.quality import best_threshold_accuracy, located_cer, wer, word_recall
from frugalsense.settings import Settings

BORDERLINE = {"bikini", "bra", "one-piece bathing suit", "swim trunks / shorts", "miniskirt", "sarong"}

Result = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """What one bench run reads: every item, or every 4th with ``quick``; LFW pairs of these folds."""

    quick: bool = False
    folds: tuple[str, ...] = ("1",)
    every: int = 0  # read every n-th item (0: all, or every 4th with quick)

    @property
    def stride(self) -> int:
        return self.every or (4 if self.quick else 1)

    def pairs(self) -> list[_data.Pair]:
        """The pairs of the folds; the fold "deepface" is faces-deepface's 1,830 pairs of large web photos."""
        return [
            pair
            for fold in self.folds
            for pair in (_data.deepface_pairs() if fold == "deepface" else _data.lfw_pairs(fold))
        ]

    def argv(self) -> list[str]:
        return ["--folds", ",".join(self.folds), "--every", str(self.every)] + (["--quick"] if self.quick else [])


def _cpu(clock: str) -> Callable[[], float]:
    return time.process_time if clock == "process" else time.thread_time


def _timed(model: Any, batch: list[Any]) -> tuple[list[Any], float]:
    clock = _cpu(model.clock)
    start = clock()
    out = model.predict(batch)
    return out, (clock() - start) * 1000.0


def _faces_as_compare_sees_them(analyzer: Analyzer, path: Path) -> tuple[np.ndarray, list[Any]]:
    """A picture's faces, the largest first (the source face `compare` picks), then the rest in detection order."""
    frame = load(path, analyzer.settings).frames[0]
    faces = analyzer.faces(frame, Meter(0.05), embed=False)
    if faces:
        largest = max(range(len(faces)), key=lambda i: faces[i].box.w * faces[i].box.h)
        faces.insert(0, faces.pop(largest))
    return frame.bgr(), faces


def bench_detector(analyzer: Analyzer, name: str, run: Run) -> Result:
    model = analyzer.zoo.get(name)
    found = total = false_alarms = 0
    times = []
    for path, boxes in _data.face_boxes().items():
        frame = load(path, analyzer.settings).frames[0]
        (faces,), ms = _timed(model, [frame])
        times.append(ms)
        used: set[int] = set()
        for x, y, w, h in boxes:
            for i, f in enumerate(faces):
                b = f.box
                if i not in used and b.x <= x + w / 2 <= b.x + b.w and b.y <= y + h / 2 <= b.y + b.h:
                    used.add(i)
                    found += 1
                    break
        total += len(boxes)
        false_alarms += len(faces) - len(used)
    for pair in run.pairs()[:: 6 * run.stride]:
        frame = load(pair.a, analyzer.settings).frames[0]
        times.append(_timed(model, [frame])[1])
    return {
        "quality": f"faces-detect recall {found}/{total} = {found / total:.3f}, {false_alarms} false alarms",
        "cpu_ms": statistics.median(times),
        "items": len(times),
    }


def _verification(analyzer: Analyzer, name: str, pairs: list[_data.Pair]) -> tuple[float, float, int, float]:
    """One model alone on the faces `compare` looks at: the first picture's largest face against every face of
    the second, the best of them scoring the pair; accuracy at the best threshold."""
    model = analyzer.zoo.get(name)
    cache: dict[Path, list[Any]] = {}
    times = []

    def vectors(path: Path, *, source: bool) -> list[Any]:
        if path not in cache:
            bgr, faces = _faces_as_compare_sees_them(analyzer, path)
            cache[path] = []
            for face in faces:
                (v,), ms = _timed(model, [(bgr, face)])
                times.append(ms)
                cache[path].append(v)
        return cache[path][:1] if source else cache[path]

    scores, labels, missed = [], [], 0
    for p in pairs:
        a, b = vectors(p.a, source=True), vectors(p.b, source=False)
        if not a or not b:
            missed += 1
            scores.append(-1.0)  # a pair without a face counts as "different"
        else:
            scores.append(max(cosine(a[0], v) for v in b))
        labels.append(p.same)
    accuracy, threshold = best_threshold_accuracy(scores, labels)
    return accuracy, threshold, missed, statistics.median(times)


def bench_embedder(analyzer: Analyzer, name: str, run: Run) -> Result:
    pairs = run.pairs()[:: run.stride]
    accuracy, threshold, missed, ms = _verification(analyzer, name, pairs)
    out: Result = {
        "quality": (
            f"LFW folds {','.join(run.folds)}: {accuracy * 100:.2f}% at the best cosine {threshold:.3f}, faces as "
            f"compare picks them ({len(pairs)} pairs read, {missed} without a face)"
        ),
        "cpu_ms": ms,
        "items": len(pairs),
    }
    if name == "sface":
        detector = analyzer.zoo.get(analyzer.pipeline.face_detector)
        embedder = analyzer.zoo.get(name)
        totals = []
        for pair in pairs[::3]:
            frame = load(pair.a, analyzer.settings).frames[0]
            start = time.thread_time()
            faces = detector.predict([frame])[0]
            embedder.predict([(frame.bgr(), f) for f in faces])
            totals.append((time.thread_time() - start) * 1000.0)
        out["extra"] = f"detect + align + embed per LFW image: {statistics.median(totals):.1f} CPU-ms"
    return out


#: a band no confidence reaches: every target face climbs to dlib (the fused score on every pair)
EVERY_PAIR = math.nextafter(1.0, 2.0)


@dataclass
class Tally:
    """Decisions of one configuration over the pairs, and what they cost."""

    name: str
    same: list[bool] = field(default_factory=list)
    truth: list[bool] = field(default_factory=list)
    climbed: int = 0
    cpu_ms: list[float] = field(default_factory=list)

    def add(self, decided: bool, truth: bool, *, climbed: bool = False, cpu_ms: float | None = None) -> None:
        self.same.append(decided)
        self.truth.append(truth)
        self.climbed += climbed
        if cpu_ms is not None:
            self.cpu_ms.append(cpu_ms)

    def row(self, reference_ms: float | None) -> str:
        same, truth = np.array(self.same), np.array(self.truth)
        accepts, rejects = int(np.sum(same & ~truth)), int(np.sum(~same & truth))
        cpu = "-"
        if self.cpu_ms:
            mean = statistics.mean(self.cpu_ms)
            share = f" ({mean / reference_ms:.2f})" if reference_ms else ""
            cpu = f"{mean:.1f}{share}"
        climbing = f"{self.climbed / len(same):.1%}" if self.cpu_ms else "-"
        return f"| {self.name} | {np.mean(same == truth):.4f} | {accepts} | {rejects} | {climbing} | {cpu} |"


def bench_compare(analyzer: Analyzer, run: Run) -> Result:
    """The shipped `compare` on LFW pairs (first picture the source, second the target), with the ladder and with
    the fused score on every pair; "largest face" rows read, from the same results, the decision about the
    target's largest face: what `compare` answered before it looked at every face."""
    from frugalsense.errors import InvalidRequestError
    from frugalsense.faces import FaceComparer

    shipped = FaceComparer.open(analyzer)
    assert shipped.fusion is not None, "the verification ladder is off for this embedder"
    every = FaceComparer(analyzer, threshold=shipped.threshold, fusion=replace(shipped.fusion, band=EVERY_PAIR))
    pairs = run.pairs()[:: run.stride]
    shipped.compare(pairs[0].a, pairs[0].b)  # models load outside the receipts
    every.compare(pairs[0].a, pairs[0].b)
    names = [
        ("sface-largest", "SFace alone, largest faces"),
        ("sface-every", "SFace alone, every target face"),
        ("ladder-largest", "ladder, largest faces (compare before)"),
        ("ladder-every", "ladder, every target face (compare now)"),
        ("fused-largest", "fused on every pair, largest faces"),
        ("fused-every", "fused on every pair, every target face"),
    ]
    tallies = {key: Tally(label) for key, label in names}
    missed = multi = changed = 0
    for pair in pairs:
        try:
            ladder = shipped.compare(pair.a, pair.b)
            fused = every.compare(pair.a, pair.b)
        except InvalidRequestError:
            missed += 1  # no face in one of the pictures: "different", as a caller would read the error
            for tally in tallies.values():
                tally.add(False, pair.same)
            continue
        largest = max(ladder.target_faces, key=lambda f: f.box.w * f.box.h).index
        multi += len(ladder.target_faces) > 1
        changed += ladder.same != ladder.target_faces[largest].same
        sface_cpu = sum(s.cpu_s for s in ladder.receipt.stages if s.model != "dlib-resnet") * 1000
        limit = ladder.threshold
        tallies["sface-largest"].add(ladder.target_faces[largest].similarity >= limit, pair.same)
        tallies["sface-every"].add(ladder.similarity >= limit, pair.same, cpu_ms=sface_cpu)
        tallies["ladder-largest"].add(ladder.target_faces[largest].same, pair.same)
        climbed = any(f.climbed for f in ladder.target_faces)
        cpu = ladder.receipt.cpu_seconds * 1000
        tallies["ladder-every"].add(ladder.same, pair.same, climbed=climbed, cpu_ms=cpu)
        tallies["fused-largest"].add(fused.target_faces[largest].same, pair.same)
        cpu = fused.receipt.cpu_seconds * 1000
        tallies["fused-every"].add(fused.same, pair.same, climbed=True, cpu_ms=cpu)
    reference = statistics.mean(tallies["fused-every"].cpu_ms)
    lines = [
        f"pairs of {','.join(run.folds)} from {_data.eval_dir()}: {len(pairs)} pairs read, {missed} without a "
        f"face, {multi} with several faces in the target ({changed} decided otherwise than by its largest face); "
        f"threshold {shipped.threshold}, ladder band {[round(v, 4) for v in shipped.fusion.band_edges]}",
        "",
        "| configuration | accuracy | false accepts | false rejects | pairs climbing | CPU-ms / pair (vs fused) |",
        "|---|---:|---:|---:|---:|---:|",
        *(tally.row(reference) for tally in tallies.values()),
    ]
    return {"table": lines, "pairs": len(pairs), "missed": missed}


def bench_labels(analyzer: Analyzer, name: str, run: Run) -> Result:
    model = analyzer.zoo.get(name)
    top1 = top5 = 0
    times = []
    items = _data.imagenet_sample()[:: run.stride]
    for path, truth in items:
        frame = load(path, analyzer.settings).frames[0]
        (probs,), ms = _timed(model, [frame])
        times.append(ms)
        order = np.argsort(-probs)[:5]
        top1 += int(order[0] == truth)
        top5 += int(truth in order)
    n = len(items)
    return {
        "quality": f"ImageNet sample top-1 {top1 / n * 100:.1f}%, top-5 {top5 / n * 100:.1f}% ({n} images)",
        "cpu_ms": statistics.median(times),
        "items": n,
    }


def bench_moderation(analyzer: Analyzer, name: str, run: Run) -> Result:
    from frugalsense.models.labels import imagenet_names

    model = analyzer.zoo.get(name)
    names = imagenet_names()
    threshold = analyzer.pipeline.nsfw_threshold
    benign = flagged_benign = borderline = flagged_borderline = 0
    times = []
    for path, truth in _data.imagenet_sample()[:: run.stride]:
        frame = load(path, analyzer.settings).frames[0]
        (score,), ms = _timed(model, [frame])
        times.append(ms)
        if names[truth] in BORDERLINE:
            borderline += 1
            flagged_borderline += score >= threshold
        else:
            benign += 1
            flagged_benign += score >= threshold
    return {
        "quality": (
            f"false positives on benign ImageNet photos {flagged_benign}/{benign}; "
            f"borderline (swimwear, underwear) flagged {flagged_borderline}/{borderline} at {threshold}"
        ),
        "cpu_ms": statistics.median(times),
        "items": benign + borderline,
    }


def bench_text_gate(analyzer: Analyzer, name: str, run: Run) -> Result:
    model = analyzer.zoo.get(name)
    # The gate opens when its confidence that there is no text, 1 - score, falls below the profile's threshold.
    profile = load_profile("text", analyzer.settings.profile_dir)
    threshold = 1.0 - profile.thresholds[profile.rungs.index(name)]
    times = []
    text_open = text_total = 0
    for image, _, _ in list(_data.sroie())[:: 2 * run.stride]:
        (score,), ms = _timed(model, load(image, analyzer.settings).frames)
        times.append(ms)
        text_total += 1
        text_open += score >= threshold
    for image, _, _ in list(_data.funsd())[:: 4 * run.stride]:
        (score,), ms = _timed(model, load(image, analyzer.settings).frames)
        times.append(ms)
        text_total += 1
        text_open += score >= threshold
    photo_open = photo_total = 0
    for pair in run.pairs()[:: 3 * run.stride]:
        (score,), ms = _timed(model, load(pair.a, analyzer.settings).frames)
        times.append(ms)
        photo_total += 1
        photo_open += score >= threshold
    return {
        "quality": (
            f"opens on {text_open}/{text_total} receipts and forms; on {photo_open}/{photo_total} LFW portraits "
            f"(score threshold {threshold:.2f}, from the text profile)"
        ),
        "cpu_ms": statistics.median(times),
        "items": len(times),
    }


def bench_ocr(analyzer: Analyzer, name: str, run: Run) -> Result:
    model = analyzer.zoo.get(name)
    parts = []
    times = []
    for label, rows in (("SROIE lines", list(_data.sroie())), ("FUNSD words", list(_data.funsd()))):
        errors = chars = found = words = 0
        for image, truth, _ in rows[:: 2 * run.stride]:
            (lines,), ms = _timed(model, load(image, analyzer.settings).frames)
            times.append(ms)
            e, c = located_cer([(line.text, line.quad) for line in lines], truth)
            errors, chars = errors + e, chars + c
            f, w = word_recall(" ".join(line.text for line in lines), [t for t, _ in truth])
            found, words = found + f, words + w
        n = len(rows[:: 2 * run.stride])
        parts.append(f"{label}: CER {errors / chars:.3f}, word recall {found / words:.3f} ({n} pages)")
    return {"quality": "; ".join(parts), "cpu_ms": statistics.median(times), "items": len(times)}


def bench_text_embedding(analyzer: Analyzer, name: str, run: Run) -> Result:
    model = analyzer.zoo.get(name)
    lines = [text for _, truth, _ in list(_data.sroie())[:10] for text, _ in truth][:: run.stride]
    times = [_timed(model, [line])[1] for line in lines]
    a, b, c = model.predict(["a receipt from a hardware store", "invoice from the tool shop", "a cat on a sofa"])
    return {
        "quality": f"cos(receipt, invoice) {float(a @ b):.2f} vs cos(receipt, cat) {float(a @ c):.2f}",
        "cpu_ms": statistics.median(times),
        "items": len(times),
    }


SENTENCES = (
    "Please send the invoice for the blue chairs before Monday.",
    "The delivery van will arrive at the back door around ten o'clock.",
    "We need three more boxes of printer paper and some black ink.",
    "Call the plumber about the leaking pipe in the kitchen.",
    "The customer asked for a refund on the broken lamp.",
    "Our shop opens at nine in the morning and closes at six.",
)


def bench_speech(analyzer: Analyzer, name: str, run: Run) -> Result:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return {"quality": "espeak-ng missing: no clips to transcribe", "cpu_ms": float("nan"), "items": 0}
    model = analyzer.zoo.get(name)
    errors, per_second = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(SENTENCES):
            clip = Path(tmp) / f"{i}.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(clip), sentence], check=True)
            audio = load(clip, analyzer.settings).audio
            assert audio is not None
            (transcript,), ms = _timed(model, [audio])
            errors.append(wer(transcript.text, sentence))
            per_second.append(ms / audio.duration_s)
    return {
        "quality": f"WER {statistics.mean(errors):.3f} on {len(SENTENCES)} espeak-ng sentences",
        "cpu_ms": statistics.median(per_second),
        "unit": "per audio second",
        "items": len(SENTENCES),
    }


BENCHES: dict[str, Callable[[Analyzer, str, Run], Result]] = {
    "yunet-int8": bench_detector,
    "sface": bench_embedder,
    "dlib-resnet": bench_embedder,
    **{f"efficientnet-lite{v}-{p}": bench_labels for v in (0, 1, 2) for p in ("fp32", "int8")},
    "opennsfw": bench_moderation,
    "text-gate": bench_text_gate,
    "ppocr-v4": bench_ocr,
    "tesseract-eng": bench_ocr,
    "minilm-l6-v2": bench_text_embedding,
    "whisper-tiny-en": bench_speech,
}

PHOTO_FEATURES = ("faces", "labels", "moderation")


def bench_analyze_photo(analyzer: Analyzer, run: Run) -> Result:
    """`analyze` of one photo with faces, labels and moderation: median receipt CPU after warm-up."""
    photos = [p.a for p in run.pairs()[:: 10 * run.stride]] + [
        p for p, _ in _data.imagenet_sample()[:: 10 * run.stride]
    ]
    analyzer.analyze(photos[0], PHOTO_FEATURES)
    cpu = [analyzer.analyze(p, PHOTO_FEATURES).receipt.cpu_seconds * 1000 for p in photos]
    return {"cpu_ms": statistics.median(cpu), "p95_ms": float(np.percentile(cpu, 95)), "items": len(cpu)}


def worker(name: str, run: Run) -> Result:
    settings = Settings()
    analyzer = Analyzer(settings)
    if name == "analyze-photo":
        return bench_analyze_photo(analyzer, run) | {"rss_mb": _rss_mb()}
    if name == "compare":
        return bench_compare(analyzer, run) | {"rss_mb": _rss_mb()}
    if name == "all-image-models":
        for model in (
            "yunet-int8", "sface", "dlib-resnet", "opennsfw", "text-gate", "ppocr-v4", "tesseract-eng",
            *(f"efficientnet-lite{v}-{p}" for v in (0, 1, 2) for p in ("fp32", "int8")),
        ):  # fmt: skip
            analyzer.zoo.get(model).load()
        return {"rss_mb": _rss_mb(), "models": analyzer.zoo.loaded()}
    model = analyzer.zoo.get(name)
    start = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - start
    result = BENCHES[name](analyzer, name, run)
    return result | {"load_s": load_s, "rss_mb": _rss_mb()}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_child(name: str, run: Run) -> Result:
    command = [sys.executable, __file__, "--worker", name, *run.argv()]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated model names, or compare")
    parser.add_argument(
        "--eval-dir",
        type=Path,
        help="evaluation data laid out as ../shared/eval (default: FRUGALSENSE_EVAL_DIR or ../shared/eval)",
    )
    parser.add_argument(
        "--folds", default="1", help="comma-separated LFW folds of pairs.csv to read (default 1), or deepface"
    )
    parser.add_argument("--every", type=int, default=0, help="read every n-th item or pair (default: all)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.eval_dir:
        os.environ["FRUGALSENSE_EVAL_DIR"] = str(args.eval_dir.resolve())  # read by _data in every child
    run = Run(args.quick, tuple(f.strip() for f in args.folds.split(",") if f.strip()), max(0, args.every))
    if args.worker:
        print(json.dumps(worker(args.worker, run)))
        return
    names = args.only.split(",") if args.only else [*BENCHES, "compare"]
    pairs = run.pairs()
    print(f"evaluation data: {_data.eval_dir()}; folds {args.folds}: {len(pairs)} pairs", flush=True)
    results: dict[str, Result] = {}
    models = [name for name in names if name != "compare"]
    if models:
        print("| model | load s | CPU-ms / item | peak RSS MB | quality on ../shared/eval |")
        print("|---|---:|---:|---:|---|")
    for name in models:
        r = _run_child(name, run)
        results[name] = r
        if "error" in r:
            print(f"| {name} | - | - | - | ERROR {r['error']} |", flush=True)
            continue
        unit = f" {r['unit']}" if "unit" in r else ""
        quality = r["quality"] + (f"; {r['extra']}" if "extra" in r else "")
        print(
            f"| {name} | {r['load_s']:.2f} | {r['cpu_ms']:.1f}{unit} | {r['rss_mb']:.0f} | {quality} |", flush=True
        )
    if "compare" in names:
        results["compare"] = compared = _run_child("compare", run)
        print()
        print(f"compare: ERROR {compared['error']}" if "error" in compared else "\n".join(compared["table"]))
    if not args.only:
        photo = _run_child("analyze-photo", run)
        everything = _run_child("all-image-models", run)
        results["analyze-photo"], results["all-image-models"] = photo, everything
        print()
        if "error" not in photo:
            print(
                f"analyze (faces + labels + moderation) of one photo: median {photo['cpu_ms']:.1f} CPU-ms, "
                f"p95 {photo['p95_ms']:.1f} over {photo['items']} photos after warm-up"
            )
        if "error" not in everything:
            print(f"all image models loaded in one process: peak RSS {everything['rss_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
