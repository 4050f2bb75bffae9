"""Do the receipts add up? Replay mixed requests through one `Analyzer` and compare with the OS's CPU count.

After a warm-up that loads every model, N requests (default 1,000) run one after another in this process:
photos from faces-lfw and zeroshot-imagenet with different feature sets (some sent twice, some as re-encoded
copies, so the result cache answers part of them), SROIE receipts for text, the bundled samples (photo, receipt,
two-page PDF, voice note) and a few clips synthesised with espeak-ng. Printed: the sum of the receipts against
`getrusage(RUSAGE_SELF)` user+sys and `time.process_time` over the replay, their ratio, the per-stage breakdown,
and the per-kind gap (process CPU of each request minus its receipt).

    python bench/ledger.py [--requests 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import imagenet_sample, lfw_pairs, sroie
from frugalsense.analyze import FEATURES, Analyzer
from frugalsense.samples import write_samples
from frugalsense.settings import Settings

PHOTO_FEATURES: list[list[str] | None] = [
    ["labels"],
    ["faces"],
    ["moderation"],
    ["faces", "labels", "moderation"],
    ["labels", "moderation"],
    None,  # the image defaults: faces, labels, moderation and text (through the text gate)
]


@dataclass(frozen=True)
class Request:
    kind: str
    data: bytes
    features: list[str] | None


def _reencode(data: bytes, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _espeak_clips(folder: Path) -> list[bytes]:
    if shutil.which("espeak-ng") is None:
        return []
    lines = [
        "Please call me back about the invoice before Friday.",
        "The meeting moved to room four at half past two.",
        "Remember to water the plants and lock the back door.",
    ]
    out = []
    for i, line in enumerate(lines):
        wav = folder / f"clip{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), line], check=True, capture_output=True)
        out.append(wav.read_bytes())
    return out


def build_requests(count: int, seed: int, folder: Path) -> list[Request]:
    """A reproducible mix: mostly photos, some documents and speech, repeats and copies."""
    rng = np.random.default_rng(seed)
    photos = [p.read_bytes() for p, _ in imagenet_sample()]
    faces = sorted({p for pair in lfw_pairs("1") for p in (pair.a, pair.b)})
    photos += [p.read_bytes() for p in faces[:300]]
    receipts = [image.read_bytes() for image, _, _ in list(sroie())[:12]]
    samples = {p.suffix: p.read_bytes() for p in write_samples(folder)}
    clips = [*_espeak_clips(folder), samples[".ogg"]]
    docs = [Request("receipt", r, ["text"]) for r in receipts]
    docs += [Request("sample", samples[".png"], ["text"]), Request("pdf", samples[".pdf"], None)]
    docs += [Request("sample", samples[".jpg"], None)]
    audio = [Request("audio", c, ["speech"]) for c in clips]
    fixed = docs + audio
    requests: list[Request] = list(fixed)
    seen: list[Request] = []
    while len(requests) < count:
        roll = rng.random()
        if seen and roll < 0.1:
            requests.append(seen[int(rng.integers(len(seen)))])  # the same bytes again
        elif seen and roll < 0.2:
            again = seen[int(rng.integers(len(seen)))]
            requests.append(Request("copy", _reencode(again.data, int(rng.integers(60, 91))), again.features))
        else:
            data = photos[int(rng.integers(len(photos)))]
            features = PHOTO_FEATURES[int(rng.integers(len(PHOTO_FEATURES)))]
            request = Request("photo", data, features)
            requests.append(request)
            seen.append(request)
    order = rng.permutation(len(requests))
    return [requests[i] for i in order][:count]


def _keeps(request: Request, skip: list[str]) -> bool:
    features = request.features or (["text"] if request.kind in ("photo", "copy", "pdf", "sample") else [])
    return not set(features) & set(skip)


def _rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip", action="append", default=[], help="leave a feature out (e.g. while recalibrating)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        requests = [r for r in build_requests(args.requests, args.seed, folder) if _keeps(r, args.skip)]
        base = Settings()
        analyzer = Analyzer(Settings(data_dir=folder / "data", model_cache=base.model_dir))
        analyzer.warm_up(FEATURES)
        # One of each kind first: libraries set up lazily on their first real call (import, tables, buffers).
        for kind in ("photo", "receipt", "audio", "pdf"):
            warm = next((r for r in requests if r.kind == kind), None)
            if warm is not None:
                analyzer.analyze(warm.data, warm.features)
        assert analyzer.cache is not None
        analyzer.cache.clear()
        replay(analyzer, requests)


def replay(analyzer: Analyzer, requests: list[Request]) -> None:
    by_stage: dict[str, float] = defaultdict(float)
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    receipts = 0.0
    json_cpu = 0.0
    gc.collect()
    rusage0, process0, wall0 = _rusage_cpu(), time.process_time(), time.perf_counter()
    for request in requests:
        before = time.process_time()
        result = analyzer.analyze(request.data, request.features)
        spent = time.process_time() - before
        receipts += result.receipt.cpu_seconds
        for stage in result.receipt.stages:
            by_stage[stage.stage] += stage.cpu_s
        row = by_kind[request.kind]
        row[0] += 1
        row[1] += spent
        row[2] += result.receipt.cpu_seconds
        # What the HTTP layer would do next, outside the receipt: measured here, reported apart.
        start = time.thread_time()
        json.dumps(result.to_dict())
        json_cpu += time.thread_time() - start
    rusage = _rusage_cpu() - rusage0
    process = time.process_time() - process0
    wall = time.perf_counter() - wall0

    print(f"## {len(requests)} requests, one at a time, {wall:.1f} s wall")
    print("| measure | CPU-s | receipts / measure |")
    print("|---|---:|---:|")
    print(f"| sum of receipts | {receipts:.3f} | |")
    print(f"| getrusage(RUSAGE_SELF) user+sys | {rusage:.3f} | {receipts / rusage:.3f} |")
    print(f"| time.process_time | {process:.3f} | {receipts / process:.3f} |")
    print(f"| result.to_dict + json.dumps (not on receipts) | {json_cpu:.3f} | |")
    print(f"| receipts + JSON | {receipts + json_cpu:.3f} | {(receipts + json_cpu) / rusage:.3f} of rusage |")

    print("\n## per stage")
    print("| stage | CPU-s | share |")
    print("|---|---:|---:|")
    for stage, cpu in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        print(f"| {stage} | {cpu:.3f} | {cpu / receipts:.1%} |")

    print("\n## per kind of request: process CPU around each call vs its receipt")
    print("| kind | requests | process CPU-s | receipts CPU-s | gap |")
    print("|---|---:|---:|---:|---:|")
    for kind, (n, spent, billed) in sorted(by_kind.items()):
        print(f"| {kind} | {int(n)} | {spent:.3f} | {billed:.3f} | {(spent - billed) / max(spent, 1e-9):+.1%} |")
    if analyzer.cache is not None:
        stats = analyzer.cache.stats
        print(
            f"\ncache: {stats.exact_hits} exact hits, {stats.near_hits} near-duplicate hits, {stats.misses} misses"
        )


if __name__ == "__main__":
    main()
