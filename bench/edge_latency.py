"""Wall-clock claims the tests used to assert, measured here instead (a loaded CI box makes them flaky there).

    python bench/edge_latency.py                     # everything, 5 rounds each (about 3 minutes)
    python bench/edge_latency.py --only flood,gaps   # convert | flood | admission | gaps
    python bench/edge_latency.py --rounds 10

Each row is one claim, the test that keeps its non-timing part, and the measured seconds (median and worst):

- convert: `convert_sface` called again on a filled model cache only hashes the 10 MB source (tests/
  test_convert_sface.py keeps "no file is written again").
- flood: while 60 slow connections from 127.0.0.2 hold their per-address cap, /healthz from 127.0.0.1 answers
  at once instead of after the 30 s header deadline (tests/test_edge_timeouts.py keeps "40 refused, 200 for the
  other address").
- admission: past the memory budget, an upload is refused from its headers, before any of its body is sent
  (tests/test_abuse_edge.py keeps "503 with Retry-After").
- gaps: during the erasure of a 200,000-face collection, the longest wait between two answers to another
  tenant's reads (tests/test_abuse_edge.py keeps "at least 3 rounds of reads answered during the erasure").
"""

from __future__ import annotations

import argparse
import itertools
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _faces import random_faces
from _server import ServerProcess
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore

NAMES = ("convert", "flood", "admission", "gaps")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def convert_again(model_dir: Path) -> float:
    from frugalsense.convert.sface import convert_sface

    convert_sface(model_dir)  # fills the cache if it is empty: not what is measured
    start = time.perf_counter()
    convert_sface(model_dir)
    return time.perf_counter() - start


def flood_other_address(model_dir: Path) -> float:
    env = {
        "FRUGALSENSE_MAX_CONNECTIONS": "200",
        "FRUGALSENSE_MAX_CONNECTIONS_PER_ADDRESS": "20",
        "FRUGALSENSE_HEADER_TIMEOUT_S": "30",
    }
    with TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", model_dir, env=env).start()
        socks: list[socket.socket] = []
        try:
            for _ in range(60):
                sock = socket.socket()
                sock.bind(("127.0.0.2", 0))
                sock.settimeout(5)
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(b"GET /healthz HT")  # and never more
                socks.append(sock)
            time.sleep(0.5)
            started = time.perf_counter()
            httpx.get(f"{server.url}/healthz", timeout=60).raise_for_status()
            return time.perf_counter() - started
        finally:
            for sock in socks:
                sock.close()
            server.stop()


def refused_from_headers(model_dir: Path) -> float:
    size = 8 * 1024 * 1024
    env = {"FRUGALSENSE_MEMORY_BUDGET_BYTES": str(int(size * 3.5)), "FRUGALSENSE_BODY_TIMEOUT_S": "30"}
    with TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", model_dir, env=env).start()
        key = server.new_key()
        head = (
            f"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        holder = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        try:
            holder.sendall(head + b'{"file": "')  # admitted, then stalls with almost all of its body unsent
            time.sleep(0.5)
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
                sock.sendall(head)
                status = sock.recv(4096).split(b"\r\n", 1)[0]
            waited = time.perf_counter() - started
        finally:
            holder.close()
            server.stop()
    if b" 503 " not in status:
        raise SystemExit(f"expected a 503, got {status!r}")
    return waited


def _crowded_store(data_dir: Path, count: int) -> None:
    store = SQLiteStore.open(Settings(data_dir=data_dir))
    try:
        tenant = store.create_tenant("crowded").id
        crowd = store.create_collection(tenant, "crowd").id
        rng = np.random.default_rng(7)
        for start in range(0, count, 10_000):
            faces = random_faces(rng, min(10_000, count - start), collection_id=crowd)
            store.add_faces(tenant, faces)
    finally:
        store.close()


def longest_gap_during_erasure(model_dir: Path, faces: int = 200_000) -> float:
    with TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        _crowded_store(data, faces)
        server = ServerProcess(data, model_dir).start()
        try:
            crowded, other = server.new_key("crowded"), server.new_key("other")
            listed = httpx.get(f"{server.url}/v1/collections", headers=_auth(crowded)).json()
            crowd = listed["collections"][0]["id"]
            finished: list[float] = []

            def erase() -> None:
                url = f"{server.url}/v1/collections/{crowd}"
                httpx.delete(url, headers=_auth(crowded), timeout=300).raise_for_status()
                finished.append(time.perf_counter())

            eraser = threading.Thread(target=erase, daemon=True)
            eraser.start()
            time.sleep(0.3)
            answered: list[float] = []
            while not finished:
                httpx.get(f"{server.url}/healthz", timeout=60).raise_for_status()
                httpx.get(f"{server.url}/v1/keys", headers=_auth(other), timeout=60).raise_for_status()
                answered.append(time.perf_counter())
            eraser.join(timeout=300)
        finally:
            server.stop()
    during = [t for t in answered if t < finished[0]]
    return max((b - a for a, b in itertools.pairwise(during)), default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, from {', '.join(NAMES)}")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        raise SystemExit(f"unknown measures {unknown}; known: {', '.join(NAMES)}")
    model_dir = Settings().model_dir
    claims: dict[str, tuple[str, Callable[[], float]]] = {
        "convert": ("second sface conversion (cache check), s", lambda: convert_again(model_dir)),
        "flood": (
            "/healthz from another address during a 60-socket flood, s",
            lambda: flood_other_address(model_dir),
        ),
        "admission": (
            "503 past the memory budget, from headers alone, s",
            lambda: refused_from_headers(model_dir),
        ),
        "gaps": (
            "longest wait between reads during a 200,000-face erasure, s",
            lambda: longest_gap_during_erasure(model_dir),
        ),
    }
    print("| measure | was asserted in tests | median | worst | rounds |")
    print("|---|---|---:|---:|---:|")
    bounds = {"convert": "< 2.0", "flood": "< 2", "admission": "< 5", "gaps": "< 1.0"}
    for name in chosen:
        label, measure = claims[name]
        values = [measure() for _ in range(args.rounds)]
        print(
            f"| {label} | {bounds[name]} | {statistics.median(values):.3f} | {max(values):.3f} | {len(values)} |"
        )


if __name__ == "__main__":
    main()
