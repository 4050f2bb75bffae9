"""A bounded concurrency smoke test: many clients at once against a small server get answers or a clear 503."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx

from _server import Server
from frugalsense.samples import write_samples


def test_concurrent_requests_are_answered_or_refused_cleanly(tmp_path: Path, model_dir: Path) -> None:
    photo = write_samples(tmp_path / "samples")[0].read_bytes()
    env = {
        "FRUGALSENSE_RATE_PER_KEY": "0",
        "FRUGALSENSE_WORKERS": "2",
        "FRUGALSENSE_QUEUE": "4",
        "FRUGALSENSE_CACHE_ENTRIES": "0",  # every request must run the models
    }
    server = Server(tmp_path / "data", model_dir, env=env).start()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}

        def client() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as c:
                for _ in range(4):
                    r = c.post("/v1/analyze", files={"file": ("p.jpg", photo)}, data={"features": "faces,labels"})
                    with lock:
                        statuses[r.status_code] += 1
                    if r.status_code == 503:
                        assert r.json()["code"] == "overloaded" and r.headers["retry-after"]
                    if r.status_code == 429:  # one tenant may fill at most half of the waiting room
                        assert r.json()["code"] == "tenant_busy" and r.headers["retry-after"]

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        # The server still answers after the burst.
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.kill()
    assert sum(statuses.values()) == 64
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] >= 8, statuses  # at most workers + queue wait; the rest are refused, never dropped


def test_batching_server_answers_concurrent_requests_with_every_feature(tmp_path: Path, model_dir: Path) -> None:
    """With a batching window the server groups the embedder, labeler, moderator and the text profile's gate;
    concurrent requests through all of them still get their own full answers and receipts."""
    photo = write_samples(tmp_path / "samples")[0].read_bytes()
    env = {"FRUGALSENSE_RATE_PER_KEY": "0", "FRUGALSENSE_BATCH_WINDOW_MS": "4", "FRUGALSENSE_CACHE_ENTRIES": "0"}
    server = Server(tmp_path / "data", model_dir, env=env).start()
    bodies: list[dict[str, object]] = []
    lock = threading.Lock()
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}

        def client() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as c:
                r = c.post("/v1/analyze", files={"file": ("p.jpg", photo)})
                assert r.status_code == 200, r.text
                with lock:
                    bodies.append(r.json())

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.kill()
    assert len(bodies) == 4
    for body in bodies:
        stages = {s["stage"] for s in body["receipt"]["stages"]}  # type: ignore[index]
        assert {"face-embedding", "labels", "moderation", "text-presence"} <= stages
