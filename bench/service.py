"""The service, measured end to end through real `frugalsense serve` processes on 127.0.0.1.

    python bench/service.py                 # everything (about 5 minutes)
    python bench/service.py --seconds 20    # shorter load runs
    python bench/service.py --only scale    # scale | load | deepface

- scale: identify (1:N) against 100,000 enrolled faces (synthetic unit vectors bulk-imported through the store,
  plus real enrolled photos): latency beyond the embedding itself, and the server's peak RSS.
- load: 32 concurrent clients posting LFW photos to /v1/analyze (faces, labels, moderation) for N seconds,
  with and without micro-batching: requests/s, p50/p95 latency, errors.
- deepface: identification through the API on faces-deepface: one photo per person enrolled, the rest probed;
  half of the people left out of the gallery to count false accepts of strangers at the default threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _data
from _server import ServerProcess, proc_rss_mb
from frugalsense.results import Box
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, NewFace, SQLiteStore

PHOTO_FEATURES = "faces,labels,moderation"


def _rss_mb(server: ServerProcess) -> tuple[float, float]:
    """Current and peak resident memory of the server process, from /proc."""
    return proc_rss_mb(server.pid) or float("nan"), proc_rss_mb(server.pid, peak=True) or float("nan")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_scale(n: int, model_dir: Path) -> None:
    print(f"\n## identify against {n:,} enrolled faces")
    with TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        store = SQLiteStore(data / DB_FILENAME)
        tenant = store.create_tenant("default")
        key = store.create_api_key(tenant.id, "bench", "admin").key
        collection = store.create_collection(tenant.id, "everyone")
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        chunk = 10_000
        for offset in range(0, n, chunk):
            persons = store.create_persons(tenant.id, collection.id, [f"p{offset + i}" for i in range(chunk)])
            vectors = rng.standard_normal((chunk, 128)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.add_faces(
                tenant.id,
                [
                    NewFace(
                        embedding=v,
                        model="sface",
                        box=Box(0, 0, 1, 1),
                        landmarks=[(0.0, 0.0)] * 5,
                        det_score=1.0,
                        source_sha256="",
                        source_name="synthetic",
                        collection_id=collection.id,
                        person_id=p.id,
                        enrolled=True,
                    )
                    for p, v in zip(persons, vectors, strict=True)
                ],
            )
        store.close()
        print(f"bulk import of {n:,} persons and faces: {time.perf_counter() - start:.1f} s")

        server = ServerProcess(data, model_dir).start()
        try:
            headers = {"Authorization": f"Bearer {key}"}
            pairs = [p for p in _data.lfw_pairs() if p.same][:40]
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as c:
                for pair in pairs:  # the real people: enrolled from one photo, probed with the other
                    person = c.post(f"/v1/collections/{collection.id}/persons", json={"name": pair.a.parent.name})
                    c.post(
                        f"/v1/persons/{person.json()['id']}/faces",
                        files={"file": (pair.a.name, pair.a.read_bytes())},
                    )
                beyond, total, found = [], [], 0
                for rounds in range(3):
                    for pair in pairs:
                        t0 = time.perf_counter()
                        r = c.post(
                            f"/v1/collections/{collection.id}/identify",
                            files={"file": (pair.b.name, pair.b.read_bytes())},
                            data={"keep": "false"},
                        )
                        wall = (time.perf_counter() - t0) * 1000
                        r.raise_for_status()
                        body = r.json()
                        if rounds == 0:
                            continue  # warm-up: the first identify loads the index from SQLite
                        models = sum(
                            s["wall_ms"]
                            for s in body["receipt"]["stages"]
                            if s["stage"] in ("decode", "face-detection", "face-embedding", "load")
                        )
                        total.append(wall)
                        beyond.append(wall - models)
                        found += any(f["name"] == pair.a.parent.name for f in body["faces"])
            rss, peak = _rss_mb(server)
        finally:
            server.stop()
    print("| measure | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    print(
        f"| identify, whole request (client wall) | {statistics.median(total):.1f} | "
        f"{_percentile(total, 95):.1f} |"
    )
    print(
        f"| identify beyond decode + detection + embedding | {statistics.median(beyond):.1f} | "
        f"{_percentile(beyond, 95):.1f} |"
    )
    print(f"\nright person named in {found} of {len(total)} probes among {n:,} + {len(pairs)} enrolled faces")
    print(
        f"server RSS with face models loaded and {n + len(pairs):,} faces enrolled: {rss:.0f} MB "
        f"(peak {peak:.0f} MB)"
    )


async def _load_run(
    server: ServerProcess, key: str, seconds: float, clients: int, photos: list[bytes]
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = defaultdict(int)
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}

    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as c:
            k = i
            while time.perf_counter() < stop:
                photo = photos[k % len(photos)]
                k += clients
                t0 = time.perf_counter()
                try:
                    r = await c.post(
                        "/v1/analyze", files={"file": ("p.jpg", photo)}, data={"features": PHOTO_FEATURES}
                    )
                    if r.status_code != 200:
                        errors[str(r.status_code)] += 1
                        continue
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    return {"ok": len(latencies), "errors": dict(errors), "rps": len(latencies) / elapsed, "lat": latencies}


def bench_load(seconds: float, model_dir: Path, clients: int = 32) -> None:
    print(
        f"\n## {clients} concurrent clients posting LFW photos to /v1/analyze ({PHOTO_FEATURES}), {seconds:.0f} s"
    )
    photos = [p.a.read_bytes() for p in _data.lfw_pairs()[:200]]
    print("| batching | requests | errors | requests/s | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    # The result cache would answer the repeated photos without running a model: measure inference with it
    # off, then once with it on to show what repeats cost.
    for window, cache in ((0.0, 0), (4.0, 0), (0.0, 1024)):
        with TemporaryDirectory() as tmp:
            env = {"FRUGALSENSE_BATCH_WINDOW_MS": str(window), "FRUGALSENSE_CACHE_ENTRIES": str(cache)}
            server = ServerProcess(Path(tmp) / "data", model_dir, env=env).start()
            try:
                key = server.new_key()
                warm = httpx.post(
                    f"{server.url}/v1/analyze",
                    headers={"Authorization": f"Bearer {key}"},
                    files={"file": ("p.jpg", photos[0])},
                    data={"features": PHOTO_FEATURES},
                    timeout=120,
                )
                warm.raise_for_status()
                result = asyncio.run(_load_run(server, key, seconds, clients, photos))
            finally:
                server.stop()
        lat = result["lat"]
        errors = sum(result["errors"].values())
        label = (f"window {window:g} ms" if window else "off") + (", result cache on" if cache else "")
        print(
            f"| {label} | {result['ok']} | {errors} {result['errors'] or ''} | {result['rps']:.1f} | "
            f"{statistics.median(lat):.0f} | {_percentile(lat, 95):.0f} |"
        )


def bench_deepface(model_dir: Path) -> None:
    print("\n## identification through the API on faces-deepface")
    base = _data.eval_dir() / "faces-deepface"
    with open(base / "identities.csv") as f:
        identity = {base / "images" / r["file"]: r["identity"] for r in csv.DictReader(f)}
    by_person: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(identity, key=lambda p: int(p.stem.removeprefix("img"))):
        by_person[identity[path]].append(path)
    people = sorted(by_person)
    with TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", model_dir).start()
        try:
            headers = {"Authorization": f"Bearer {server.new_key()}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as c:
                rows = []
                for label, enrolled_people in (("all 13 enrolled", people), ("7 of 13 enrolled", people[::2])):
                    col = c.post("/v1/collections", json={"name": label}).json()["id"]
                    ids = {}
                    for name in enrolled_people:
                        pid = c.post(f"/v1/collections/{col}/persons", json={"name": name}).json()["id"]
                        first = by_person[name][0]
                        c.post(
                            f"/v1/persons/{pid}/faces", files={"file": (first.name, first.read_bytes())}
                        ).raise_for_status()
                        ids[pid] = name
                    right = wrong = unknown = rank1 = probes = strangers = named = 0
                    for name, paths in by_person.items():
                        for path in paths[1:] if name in enrolled_people else paths:
                            r = c.post(
                                f"/v1/collections/{col}/identify",
                                files={"file": (path.name, path.read_bytes())},
                                data={"keep": "false"},
                            ).json()
                            if not r["faces"]:
                                continue
                            face = max(r["faces"], key=lambda f: f["box"]["w"] * f["box"]["h"])
                            decision = face["decision"]
                            if name in enrolled_people:
                                probes += 1
                                top = face["candidates"][0]["person_id"] if face["candidates"] else None
                                rank1 += ids.get(top or "") == name
                                if decision == "unknown":
                                    unknown += 1
                                elif ids.get(decision) == name:
                                    right += 1
                                else:
                                    wrong += 1
                            else:
                                strangers += 1
                                named += decision != "unknown"
                    rows.append((label, probes, rank1, right, wrong, unknown, strangers, named))
        finally:
            server.stop()
    print(
        "| gallery | probes | rank-1 | named right | named wrong | unknown | stranger probes | strangers named |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, probes, rank1, right, wrong, unknown, strangers, named in rows:
        far = f"{named} ({named / strangers:.3f})" if strangers else "-"
        print(
            f"| {label} | {probes} | {rank1 / probes:.3f} | {right / probes:.3f} | {wrong / probes:.3f} | "
            f"{unknown / probes:.3f} | {strangers} | {far} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["scale", "load", "deepface"])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--faces", type=int, default=100_000)
    args = parser.parse_args()
    model_dir = Settings().model_dir
    if args.only in (None, "scale"):
        bench_scale(args.faces, model_dir)
    if args.only in (None, "deepface"):
        bench_deepface(model_dir)
    if args.only in (None, "load"):
        bench_load(args.seconds, model_dir)


if __name__ == "__main__":
    main()
