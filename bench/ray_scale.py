"""Indexing throughput: plain `frugalsense index --workers N` against the same job on Ray, and a projection.

Starts a one-node Ray cluster on this machine (``ray start --head``, as a user would, token auth on) unless
``--address`` names one, then indexes two real sets from ``../shared/eval`` into a fresh data folder each time,
through the CLI exactly as a user runs it:

- photos: LFW photos (one per person, faces-lfw), what a photo archive holds;
- receipts: SROIE receipt scans (ocr-sroie), what a bookkeeping archive holds.

For each set and 1 and 2 workers: files per second of the whole command (models loaded, files read, the index
written, in SQLite), and the steady rate once started, from a run over a quarter of the set and one over all of
it (the fixed start-up cancels out); plain and Ray run back to back, ``--repeats`` times (medians).
Then Ray's overhead against plain at the same worker count (target <= 15%) and the scaling from 1 to 2 workers
(target >= 85%), both on the steady rates (an archive's first pass is all steady state), and a projection for
1,000,000 photos and 1,000,000 receipts on 10 nodes of 16 cores: the CPU-seconds per file the Ray job's receipts
measured, spread over 160 workers at the measured 1-to-2 efficiency (an assumption: it says nothing of a network
or of a database under 160 writers), the CPU-hours at ``--price`` per CPU-hour, and the same pictures at the
cloud list prices the console uses (frugalsense.console.prices), per feature the job ran.

    python bench/ray_scale.py                       # 200 photos, 40 receipts
    python bench/ray_scale.py --photos 400 --receipts 60 --repeats 3 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from frugalsense.console.prices import CLOUD_PRICES
from frugalsense.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
NODES, CORES = 10, 16
MILLION = 1_000_000


def _copy_sets(eval_dir: Path, work: Path, photos: int, receipts: int) -> dict[str, tuple[Path, Path]]:
    """Each set as (a quarter of it, all of it): two runs whose difference leaves out the fixed start-up."""
    people = sorted(p for p in (eval_dir / "faces-lfw" / "images").iterdir() if p.is_dir())
    files = {
        "photos": [sorted(person.glob("*.jpg"))[0] for person in people[:photos]],
        "receipts": sorted((eval_dir / "ocr-sroie" / "img").glob("*.jpg"))[:receipts],
    }
    sets = {}
    for name, chosen in files.items():
        small, full = work / f"{name}-quarter", work / name
        for folder, part in ((small, chosen[: max(2, len(chosen) // 4)]), (full, chosen)):
            folder.mkdir(parents=True)
            for file in part:
                shutil.copyfile(file, folder / file.name)
        sets[name] = (small, full)
    return sets


class _Cluster:
    def __init__(self, address: str | None) -> None:
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        self.owned = address is None
        if address is None:
            self.env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
            port = "6399"
            subprocess.run(
                [
                    *(self.ray, "start", "--head", "--port", port, "--num-cpus", str(os.cpu_count() or 2)),
                    *("--include-dashboard", "false", "--object-store-memory", str(500 * 1024 * 1024)),
                ],
                env=self.env,
                check=True,
                capture_output=True,
            )
            address = f"127.0.0.1:{port}"
        self.address = address

    def stop(self) -> None:
        if self.owned:
            subprocess.run([self.ray, "stop", "--force"], env=self.env, capture_output=True)


def _index(
    folder: Path, workers: int, *, ray: _Cluster | None, model_cache: str | None
) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one `frugalsense index` into a fresh data folder, and its JSON summary or job report."""
    data = Path(tempfile.mkdtemp(prefix="fs-ray-bench-"))
    command = [sys.executable, "-m", "frugalsense.cli", "--data-dir", str(data)]
    if model_cache:
        command += ["--model-cache", model_cache]
    command += ["index", str(folder), "--workers", str(workers), "--json", "-q"]
    if ray is not None:
        command += ["--ray", ray.address, "--batch-size", "4"]
    env = ray.env if ray is not None else None
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    shutil.rmtree(data, ignore_errors=True)
    if done.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    return wall, out["job"]["report"] if ray is not None else out


def _row(cells: list[str], markdown: bool) -> str:
    if markdown:
        return "| " + " | ".join(cells) + " |"
    return "  ".join(f"{c:>14}" if i else f"{c:<10}" for i, c in enumerate(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--eval-dir", default=os.environ.get("FRUGALSENSE_EVAL_DIR", str(ROOT.parent / "shared" / "eval"))
    )
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--receipts", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--address", help="an existing Ray cluster (default: start one here)")
    parser.add_argument(
        "--model-cache", default=str(Settings().model_dir), help="converted models (default: the set-up's cache)"
    )
    parser.add_argument("--price", type=float, default=0.05, help="USD per CPU-hour for the projection")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fs-ray-sets-"))
    sets = _copy_sets(Path(args.eval_dir), work, args.photos, args.receipts)
    cluster = _Cluster(args.address)
    results: dict[tuple[str, str, int], list[tuple[float, float, float]]] = {}
    reports: dict[str, dict[str, Any]] = {}
    try:
        for name, (small, full) in sets.items():
            sizes = (len(list(small.iterdir())), len(list(full.iterdir())))
            for workers in (1, 2):
                for _ in range(args.repeats):
                    for how in ("plain", "ray"):
                        ray = cluster if how == "ray" else None
                        wall_small, _ = _index(small, workers, ray=ray, model_cache=args.model_cache)
                        wall, out = _index(full, workers, ray=ray, model_cache=args.model_cache)
                        steady = (sizes[1] - sizes[0]) / max(1e-9, wall - wall_small)
                        startup = wall - sizes[1] / steady
                        results.setdefault((name, how, workers), []).append((sizes[1] / wall, steady, startup))
                        if how == "ray" and workers == 1:
                            reports[name] = out
                        print(
                            f"  {name} {how} x{workers}: {sizes[0]} files in {wall_small:.1f} s,"
                            f" {sizes[1]} in {wall:.1f} s",
                            file=sys.stderr,
                        )
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    def median(key: tuple[str, str, int], part: int) -> float:
        return statistics.median(r[part] for r in results[key])

    md = args.markdown
    print(
        f"\nfiles per second (median of {args.repeats}), {os.cpu_count()} cores: whole command over the set, and"
        " steady (the difference of a run over a quarter of the set and one over all of it: start-up left out)\n"
    )
    head = [
        "set",
        "workers",
        "plain whole",
        "Ray whole",
        "plain steady",
        "Ray steady",
        "Ray overhead",
        "start-up s",
    ]
    print(_row(head, md))
    if md:
        print("|" + "---|" * len(head))
    for name in sets:
        for workers in (1, 2):
            plain, ray = (name, "plain", workers), (name, "ray", workers)
            overhead = median(plain, 1) / median(ray, 1) - 1
            cells = [name, str(workers), f"{median(plain, 0):.2f}", f"{median(ray, 0):.2f}"]
            cells += [f"{median(plain, 1):.2f}", f"{median(ray, 1):.2f}", f"{overhead:+.1%}"]
            cells.append(f"{median(plain, 2):.0f} / {median(ray, 2):.0f}")
            print(_row(cells, md))
    print("\nscaling from 1 to 2 workers, steady rates (rate at 2 / twice the rate at 1)\n")
    head = ["set", "plain", "Ray"]
    print(_row(head, md))
    if md:
        print("|" + "---|" * len(head))
    efficiency = {}
    for name in sets:
        cells = [name]
        for how in ("plain", "ray"):
            value = median((name, how, 2), 1) / (2 * median((name, how, 1), 1))
            efficiency[(name, how)] = value
            cells.append(f"{value:.1%}")
        print(_row(cells, md))

    print(f"\nprojection: {MILLION:,} files on {NODES} nodes x {CORES} cores, from the Ray job at 1 worker here\n")
    head = ["set", "CPU-s/file", "wall hours", "CPU-hours", f"own $ (${args.price}/CPU-h)", "AWS $", "Google $"]
    print(_row(head, md))
    if md:
        print("|" + "---|" * len(head))
    for name in sets:
        report = reports[name]
        done = max(1, report["files"] - report["counts"].get("failed", 0))
        per_file = report["cpu_seconds"] / done
        workers = NODES * CORES
        wall_h = MILLION * per_file / (workers * min(1.0, efficiency[(name, "ray")])) / 3600
        cpu_h = wall_h * workers
        clouds = {"aws_rekognition": 0.0, "google_vision": 0.0}
        for feature, row in report["features"].items():
            for cloud in clouds:
                price = CLOUD_PRICES.get(feature, {}).get(cloud)
                clouds[cloud] += (price or 0.0) * row["units"] / done * MILLION
        cells = [
            name,
            f"{per_file:.2f}",
            f"{wall_h:.1f}",
            f"{cpu_h:,.0f}",
            f"{cpu_h * args.price:,.0f}",
            f"{clouds['aws_rekognition']:,.0f}",
            f"{clouds['google_vision']:,.0f}",
        ]
        print(_row(cells, md))
    print(
        "\nCloud columns: the pictures each feature analysed here, per file, times a million, at the first-tier"
        " list prices of frugalsense.console.prices (AWS Rekognition; Google Vision; receipts' fields are not run"
        " by index). Own $: CPU-hours at the given price, no storage or network."
    )


if __name__ == "__main__":
    main()
