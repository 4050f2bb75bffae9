"""The web console's speed against a real `frugalsense serve`, printed as tables.

    python bench/console.py                                  # 10,000 persons, 100,000 items (a few minutes)
    python bench/console.py --persons 1000 --items 10000     # quicker

1. Server time of each screen's HTML and data calls, p50/p95 over `--repeat` calls from a signed-in session on
   127.0.0.1 (the client's wall time: loopback adds well under a millisecond), with the store seeded straight
   through the store API: `--persons` persons with one enrolled face each, 2,000 unknown sightings in 400
   clusters, `--items` indexed items with random vectors and words. Target: p95 <= 200 ms.
2. Bytes of HTML, JS and CSS on first load (raw and gzip). Target: JS+CSS <= 150 KB.
3. Time to the first analyze result of a typical photo in headless Chromium (click to drawn result) against the
   same POST /v1/analyze through the API, photo by photo, with the result cache off so both do the work. Target:
   overhead <= 20%.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import eval_dir
from _faces import random_faces
from _server import ServerProcess
from frugalsense.search import SearchService
from frugalsense.search.encoders import normalize
from frugalsense.settings import Settings
from frugalsense.store.items import NewItem

TENANT = "shop"
CLUSTERS, SIGHTINGS = 400, 2000


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n{title}")
    cells = [
        [str(c) for c in header],
        *[[f"{c:.1f}" if isinstance(c, float) else str(c) for c in r] for r in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def seed(settings: Settings, persons: int, items: int) -> dict[str, str]:
    """Fill the data folder through the store API; returns ids the calls below use."""
    import cv2

    rng = np.random.default_rng(12)
    crop = "crops/bench.jpg"
    (settings.data_dir / "crops").mkdir(parents=True, exist_ok=True)
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    assert ok
    (settings.data_dir / crop).write_bytes(bytes(jpeg))
    with SearchService.open(settings) as service:
        store = service.store
        tenant = store.create_tenant(TENANT).id
        staff = store.create_collection(tenant, "staff").id
        people = []
        for start in range(0, persons, 1000):
            names = [f"person {i:05d}" for i in range(start, min(persons, start + 1000))]
            made = store.create_persons(tenant, staff, names)
            people.extend(made)
            faces = random_faces(rng, len(made), crop_path=crop, collection_id=staff, enrolled=True)
            store.add_faces(tenant, [replace(f, person_id=p.id) for f, p in zip(faces, made, strict=True)])
        unknown = store.add_faces(tenant, random_faces(rng, SIGHTINGS, crop_path=crop))
        store.set_clusters(tenant, {f.id: f"clu_{i % CLUSTERS:04d}" for i, f in enumerate(unknown)})
        vocabulary = [f"w{i}" for i in range(5000)]
        encoder = service.encoder.name
        dim = 384  # the default ConSE encoder's text space (all-MiniLM-L6-v2)
        for start in range(0, items, 5000):
            batch = []
            for i in range(start, min(items, start + 5000)):
                batch.append(
                    NewItem(
                        source=f"synthetic/{i}.jpg",
                        sha256=f"{i:064x}",
                        modality=("image", "document", "audio", "video")[i % 4],
                        mime="image/jpeg",
                        byte_size=1,
                        pages=1,
                        duration_s=None,
                        captured_at=f"20{10 + i % 15:02d}-01-01T00:00:00",
                        nsfw=float(rng.random()) * 0.1,
                        flagged=False,
                        phash=int(rng.integers(-(2**63), 2**63 - 1)),
                        encoder=encoder,
                        result={"pages": []},
                        text=" ".join(rng.choice(vocabulary, 12)),
                        transcript="",
                        labels={},
                        faces=[],
                        vectors=[("image", normalize(rng.standard_normal(dim).astype(np.float32)))],
                    )
                )
            service.items.put_items(tenant, batch)
    return {"collection": staff, "person": people[len(people) // 2].id, "face": unknown[0].id}


def timings(client: httpx.Client, path: str, repeat: int) -> tuple[float, float]:
    for _ in range(2):  # first use loads indexes; a person sees that once
        client.get(path).raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def bench_calls(server: ServerProcess, key: str, ids: dict[str, str], persons: int, repeat: int) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        client.post("/console/session", json={"key": key}).raise_for_status()
        c, deep = ids["collection"], max(0, persons - 24)
        calls = [
            ("sign-in", "page", "/"),
            ("sign-in", "session", "/console/session"),
            ("people", "collections", "/v1/collections"),
            ("people", "persons, first page", f"/console/api/persons?collection_id={c}&limit=24"),
            (
                "people",
                f"persons, offset {deep}",
                f"/console/api/persons?collection_id={c}&limit=24&offset={deep}",
            ),
            (
                "people",
                "persons, find by name",
                f"/console/api/persons?collection_id={c}&name=person%2004&limit=24",
            ),
            ("people", "clusters, first page", "/console/api/clusters?limit=24"),
            ("people", "delete confirmation", f"/console/api/persons/{ids['person']}/erasure"),
            ("people", "face thumbnail", f"/console/api/crops/{ids['face']}"),
            ("search", "items, newest 24", "/v1/items?limit=24"),
            ("search", "words", "/v1/search?q=w17%20w4242"),
            ("search", "filter only", "/v1/search?modality=document&since=2020-01-01"),
            ("search", "near-duplicate groups", "/v1/search/duplicates"),
            ("costs", "usage, 30 days", "/v1/usage"),
            ("keys", "keys", "/v1/keys"),
        ]
        rows = []
        for screen, what, path in calls:
            p50, p95 = timings(client, path, repeat)
            rows.append([screen, what, p50, p95, "yes" if p95 <= 200 else "NO"])
        table(
            f"Server time per call, ms ({persons:,} persons, items as seeded; {repeat} calls each)",
            ["screen", "call", "p50", "p95", "p95 <= 200"],
            rows,
        )
        sizes = []
        total = 0
        for path in ("/", "/console/static/console.js", "/console/static/console.css"):
            body = client.get(path).content
            sizes.append([path, len(body), len(gzip.compress(body))])
            total += len(body) if path != "/" else 0
        sizes.append(["JS + CSS", total, sum(r[2] for r in sizes[1:])])  # type: ignore[misc]
        table("Bytes on first load (the server sends them uncompressed)", ["file", "bytes", "gzip bytes"], sizes)


def _api_analyze(api: httpx.Client, photo: Path) -> float:
    started = time.perf_counter()
    api.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes())}).raise_for_status()
    return (time.perf_counter() - started) * 1000


def _browser_analyze(page: Any, photo: Path) -> tuple[float, float, float]:
    """(click to drawn result as playwright sees it, submit to drawn as the page measured it, the fetch), ms."""
    before = page.evaluate("document.body.dataset.analyzed || ''")
    page.set_input_files("#analyze-file", str(photo))
    started = time.perf_counter()
    page.click("#analyze-form button[type=submit]")
    page.wait_for_function("prev => (document.body.dataset.analyzed || '') !== prev", arg=before, timeout=300_000)
    took = (time.perf_counter() - started) * 1000
    drawn, fetched = page.evaluate(
        "() => { const m = performance.measure('a', 'analyze-start', 'analyze-done');"
        " const f = performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/analyze')).at(-1);"
        " performance.clearMarks(); performance.clearMeasures(); performance.clearResourceTimings();"
        " return [m.duration, f.responseEnd - f.startTime]; }"
    )
    return took, float(drawn), float(fetched)


def bench_analyze(server: ServerProcess, key: str, photos: list[Path]) -> None:
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install chromium-headless-shell")
    headers = {"Authorization": f"Bearer {key}"}
    rows = []
    with httpx.Client(base_url=server.url, timeout=300, headers=headers) as api, sync_playwright() as pw:
        for photo in photos:  # every model these photos climb to is loaded before timing starts
            api.post("/v1/analyze", files={"file": photo.read_bytes()}).raise_for_status()
        browser = pw.chromium.launch(executable_path=chromium)
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("#signin-key", key)
        page.click("#signin-form button")
        page.wait_for_selector("#analyze-form", state="visible")
        for photo in photos:
            # Best of three on each side, taken in turn, so neither profits from a warmer machine.
            api_ms, browser_ms, in_page, fetch_ms = min(_api_analyze(api, photo) for _ in range(3)), 1e9, 1e9, 1e9
            for _ in range(3):
                took, drawn, fetched = _browser_analyze(page, photo)
                browser_ms, in_page, fetch_ms = min(browser_ms, took), min(in_page, drawn), min(fetch_ms, fetched)
            overhead = f"{(in_page / api_ms - 1) * 100:+.0f}%"
            rows.append([photo.name, api_ms, fetch_ms, in_page, browser_ms, overhead])
        browser.close()
    medians = [statistics.median(float(r[i]) for r in rows) for i in range(1, 5)]  # type: ignore[arg-type]
    rows.append(["median", *medians, f"{(medians[2] / medians[0] - 1) * 100:+.0f}%"])
    table(
        "Time to the first analyze result, ms (cache off; best of 3 each; overhead: submit to drawn vs API call)",
        ["photo", "API call", "page's fetch", "page: submit to drawn", "click to drawn", "overhead"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    gallery = eval_dir() / "faces-gallery" / "examples" / "knn_examples"
    photos = sorted((gallery / "train").glob("*/*.jp*g"))[:6]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), model_cache=Settings().model_dir)
        started = time.perf_counter()
        ids = seed(settings, args.persons, args.items)
        print(f"seeded {args.persons:,} persons and {args.items:,} items in {time.perf_counter() - started:.0f} s")
        server = ServerProcess(Path(folder), settings.model_dir, env={"FRUGALSENSE_CACHE_ENTRIES": "0"}).start()
        try:
            key = server.new_key(TENANT)
            bench_calls(server, key, ids, args.persons, args.repeat)
            bench_analyze(server, key, photos)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
