"""Batch jobs on a real local Ray cluster (tests/_ray.py: a head and a second node), driven through the CLI as a
user runs them, writing into a real PostgreSQL (the store a cluster shares) or the embedded SQLite file.

Real photos, receipts and a PDF made of two real receipts, from ``../shared/eval``; one file that is not a picture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _backends import PostgresServer, postgres_rows
from _ray import RayCluster, worker_pids
from frugalsense.settings import Settings

pytestmark = [pytest.mark.ray]

_PHOTOS = ("obama_small.jpg", "two_people.jpg", "alex-lacamoire.png")


def _inputs(folder: Path, eval_dir: Path, *, lfw: int = 0, receipts: int = 2) -> Path:
    """A folder of real files: face photos, receipts, a two-page PDF of receipts, and a bad file."""
    from PIL import Image

    folder.mkdir(parents=True)
    for name in _PHOTOS:
        (folder / name).write_bytes((eval_dir / "faces-gallery" / "examples" / name).read_bytes())
    scans = sorted((eval_dir / "ocr-sroie" / "img").glob("*.jpg"))
    for scan in scans[:receipts]:
        (folder / f"receipt-{scan.name}").write_bytes(scan.read_bytes())
    pages = [Image.open(p).convert("RGB") for p in scans[receipts : receipts + 2]]
    pages[0].save(folder / "scans.pdf", save_all=True, append_images=pages[1:])
    people = sorted(p for p in (eval_dir / "faces-lfw" / "images").iterdir() if p.is_dir())
    for person in people[:lfw]:
        first = sorted(person.glob("*.jpg"))[0]
        (folder / f"lfw-{first.name}").write_bytes(first.read_bytes())
    (folder / "broken.jpg").write_text("this is not a picture\n")
    return folder


def _cli(
    cluster: RayCluster, data_dir: Path, model_dir: Path, *args: str, database_url: str | None = None
) -> list[str]:
    database = ["--database-url", database_url] if database_url else []
    base = [sys.executable, "-m", "frugalsense.cli", "--data-dir", str(data_dir), "--model-cache", str(model_dir)]
    return [*base, *database, *args]


def _run(cluster: RayCluster, command: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def _index_state(settings: Settings) -> dict[str, Any]:
    """What an index holds, per file, without the ids and times that differ between two runs."""
    from frugalsense.search import SearchService

    with SearchService.open(settings) as service:
        tenant = next(t for t in service.store.list_tenants() if t.name == "default")
        items = service.list_items(tenant.id, limit=1000)
        faces = service.items.faces_of(tenant.id, [i.id for i in items])
        stored = service.items.vectors(tenant.id, service.encoder.name)
        by_rowid = {i.rowid: i.source for i in items}
        vectors: dict[str, list[np.ndarray]] = {}
        for rowid, vector in zip(stored.item_rowids, stored.matrix, strict=True):
            vectors.setdefault(by_rowid[int(rowid)], []).append(np.asarray(vector))
        out = {}
        for item in items:
            record = service.items.get_item(tenant.id, item.id)
            out[item.source] = {
                "sha256": record.sha256,
                "modality": record.modality,
                "pages": record.pages,
                "captured_at": record.captured_at,
                "labels": [[lab["name"] for lab in page.get("labels") or []] for page in record.result["pages"]],
                "faces": len(faces.get(item.id, [])),
                "vectors": vectors.get(item.source, []),
            }
        return out


def _same_index(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert sorted(mine) == sorted(theirs)
    for source, item in mine.items():
        other = theirs[source]
        for key in ("sha256", "modality", "pages", "captured_at", "labels", "faces"):
            assert item[key] == other[key], f"{source}: {key} {item[key]!r} != {other[key]!r}"
        assert len(item["vectors"]) == len(other["vectors"]), source
        for a, b in zip(item["vectors"], other["vectors"], strict=True):
            assert float(np.dot(a, b)) > 0.999, f"{source}: its vectors differ"


@pytest.mark.postgres
def test_index_on_ray_builds_the_index_plain_index_builds(
    ray_cluster: RayCluster, postgres_server: PostgresServer, eval_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    folder = _inputs(tmp_path / "archive", eval_dir)
    plain_url, ray_url = postgres_server.fresh(), postgres_server.fresh()
    plain = _run(
        ray_cluster, _cli(ray_cluster, tmp_path / "a", model_dir, "index", str(folder), database_url=plain_url)
    )
    assert plain.returncode == 2, plain.stderr  # the bad file
    command = _cli(
        ray_cluster,
        tmp_path / "b",
        model_dir,
        "index",
        str(folder),
        "--ray",
        ray_cluster.address,
        "--batch-size",
        "1",
        "--progress-every",
        "2",
        database_url=ray_url,
    )
    done = _run(ray_cluster, command)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "6 added" in done.stdout and "1 failed" in done.stdout, done.stdout
    assert "failed: " in done.stderr and "broken.jpg" in done.stderr
    assert "4/7 files" in done.stderr  # the progress line every 2 files

    plain_state = _index_state(Settings(data_dir=tmp_path / "a", model_cache=model_dir, database_url=plain_url))
    ray_state = _index_state(Settings(data_dir=tmp_path / "b", model_cache=model_dir, database_url=ray_url))
    assert len(ray_state) == 6
    assert sum(i["faces"] for i in ray_state.values()) >= 3
    _same_index(ray_state, plain_state)

    # The journal holds every file once, the bad one included.
    assert postgres_rows(ray_url, "SELECT COUNT(*), COUNT(DISTINCT source) FROM job_files")[0] == (7, 7)

    # The job is listed with its report, its failure shown.
    listed = _run(
        ray_cluster, _cli(ray_cluster, tmp_path / "b", model_dir, "jobs", "--json", database_url=ray_url)
    )
    jobs = json.loads(listed.stdout)
    assert [j["status"] for j in jobs] == ["finished"]
    report = jobs[0]["report"]
    assert report["counts"] == {"added": 6, "failed": 1}
    assert report["cpu_seconds"] > 0 and report["features"]["labels"]["units"] == 5  # photos and receipts
    assert report["features"]["text"]["units"] == 7  # and the PDF's two pages
    assert report["cloud_usd"]["aws_rekognition"] > report["usd"]
    shown = _run(
        ray_cluster,
        _cli(ray_cluster, tmp_path / "b", model_dir, "jobs", "show", jobs[0]["id"], database_url=ray_url),
    )
    assert "broken.jpg" in shown.stdout and "labels" in shown.stdout

    # Run again: nothing is indexed twice (every file is unchanged by its content hash).
    again = _run(ray_cluster, command)
    assert "6 unchanged" in again.stdout, again.stdout
    assert postgres_rows(ray_url, "SELECT COUNT(*) FROM items")[0][0] == 6


def _index_job(cluster: RayCluster, tmp_path: Path, model_dir: Path, folder: Path, url: str) -> list[str]:
    return _cli(
        cluster,
        tmp_path / "data",
        model_dir,
        *("index", str(folder), "--ray", cluster.address, "--batch-size", "1"),
        database_url=url,
    )


def _interrupted(
    cluster: RayCluster, command: list[str], url: str, interrupt: Callable[[subprocess.Popen[str]], None]
) -> tuple[subprocess.Popen[str], str, str, int]:
    """Run a job's driver; once the journal holds 3 files, `interrupt` it. Returns the driver, its output and
    how many files the journal held right after the interruption."""
    driver = subprocess.Popen(command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None:
            if _journaled(url) >= 3:
                break
            time.sleep(0.2)
        assert driver.poll() is None, "the job ended before it could be interrupted"
        interrupt(driver)
        at = _journaled(url)
        out, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver, out, err, at


def _ctrl_c(driver: subprocess.Popen[str]) -> None:
    driver.send_signal(signal.SIGINT)


def _kill_a_worker(driver: subprocess.Popen[str]) -> None:
    pids = worker_pids()
    assert pids, "no worker to kill"
    os.kill(pids[0], signal.SIGKILL)


@pytest.mark.postgres
def test_a_killed_worker_loses_nothing_and_indexes_each_file_once(
    ray_cluster: RayCluster, postgres_server: PostgresServer, eval_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    folder = _inputs(tmp_path / "archive", eval_dir, lfw=12, receipts=3)
    files = len(list(folder.iterdir()))
    url = postgres_server.fresh()
    command = _index_job(ray_cluster, tmp_path, model_dir, folder, url)
    driver, out, err, killed_at = _interrupted(ray_cluster, command, url, _kill_a_worker)
    assert killed_at < files, "the kill came after every file was done"
    assert driver.returncode == 2, out + err  # the bad file only
    assert f"{files - 1} added" in out and "1 failed" in out, out + err
    per_source = postgres_rows(url, "SELECT source, COUNT(*) FROM items GROUP BY source")
    assert len(per_source) == files - 1 and all(n == 1 for _, n in per_source)
    # Every face kept belongs to exactly one item: the dead worker's half-done file left no sighting behind.
    faces = postgres_rows(url, "SELECT COUNT(*) FROM faces")[0][0]
    links = postgres_rows(url, "SELECT COUNT(*), COUNT(DISTINCT face_id) FROM item_faces")[0]
    assert faces > 0 and links == (faces, faces)
    assert _journaled(url) == files


def _journaled(url: str) -> int:
    return int(postgres_rows(url, "SELECT COUNT(*) FROM job_files")[0][0]) if _has_jobs(url) else 0


def _has_jobs(url: str) -> bool:
    return bool(postgres_rows(url, "SELECT COUNT(*) FROM jobs")[0][0])


def test_analyze_on_ray_writes_jsonl_and_parquet_on_sqlite(
    ray_cluster: RayCluster, eval_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    folder = _inputs(tmp_path / "archive", eval_dir)
    data = tmp_path / "data"
    out = tmp_path / "results.jsonl"
    done = _run(
        ray_cluster,
        _cli(
            ray_cluster, data, model_dir, "analyze", str(folder), "--ray", ray_cluster.address, "--out", str(out)
        ),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    records = {Path(r["source"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(records) == 7
    assert records["broken.jpg"]["status"] == "failed" and records["broken.jpg"]["error"]["code"]
    assert len(records["scans.pdf"]["pages"]) == 2 and records["scans.pdf"]["receipt"]["cpu_seconds"] > 0
    # The same answer a plain analyze gives for one photo.
    photo = folder / "two_people.jpg"
    plain = _run(ray_cluster, _cli(ray_cluster, data, model_dir, "analyze", "--json", str(photo)))
    mine = records["two_people.jpg"]["pages"][0]
    theirs = json.loads(plain.stdout)["pages"][0]
    assert [lab["name"] for lab in mine["labels"]] == [lab["name"] for lab in theirs["labels"]]
    assert len(mine["faces"]) == len(theirs["faces"]) == 2

    # Run again: the job is finished, so a new one starts and finds the same files; to Parquet this time.
    table_path = tmp_path / "results.parquet"
    again = _run(
        ray_cluster,
        _cli(
            ray_cluster,
            data,
            model_dir,
            "analyze",
            str(folder),
            "--ray",
            ray_cluster.address,
            "--out",
            str(table_path),
        ),
    )
    assert again.returncode == 2, again.stderr
    table = pq.read_table(table_path).to_pylist()
    assert sorted(Path(r["source"]).name for r in table) == sorted(records)
    assert not table_path.with_name(table_path.name + ".partial.jsonl").exists()
    listed = _run(ray_cluster, _cli(ray_cluster, data, model_dir, "jobs"))
    assert listed.stdout.count(" analyze ") == 2 and listed.stdout.count(" finished ") == 2


def test_the_embedded_default_never_imports_ray(eval_dir: Path, model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes((eval_dir / "faces-gallery" / "examples" / "obama_small.jpg").read_bytes())
    code = (
        "import sys\n"
        "from frugalsense.cli import main\n"
        f"assert main(['--data-dir', {str(tmp_path / 'data')!r}, '--model-cache', {str(model_dir)!r},"
        f" 'index', '-q', {str(folder)!r}]) == 0\n"
        "assert 'ray' not in sys.modules and 'pyarrow' not in sys.modules and 'psycopg' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.postgres
def test_a_stopped_job_continues_where_it_was(
    ray_cluster: RayCluster, postgres_server: PostgresServer, eval_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    folder = _inputs(tmp_path / "archive", eval_dir, lfw=10)
    files = len(list(folder.iterdir()))
    url = postgres_server.fresh()
    command = _index_job(ray_cluster, tmp_path, model_dir, folder, url)
    driver, _, err, _ = _interrupted(ray_cluster, command, url, _ctrl_c)
    assert driver.returncode != 0
    assert "run the same command again to continue it" in err, err
    stopped = postgres_rows(url, "SELECT status, attempts FROM jobs")
    done_before = postgres_rows(url, "SELECT COUNT(*) FROM job_files")[0][0]
    assert stopped == [("stopped", 1)] and 3 <= done_before < files

    again = _run(ray_cluster, command)
    assert "continuing" in again.stderr and f"{files - done_before} of {files} files to do" in again.stderr
    assert f"{files - 1} added" in again.stdout and "1 failed" in again.stdout, again.stdout + again.stderr
    assert postgres_rows(url, "SELECT status, attempts FROM jobs") == [("finished", 2)]
    per_source = postgres_rows(url, "SELECT source, COUNT(*) FROM items GROUP BY source")
    assert len(per_source) == files - 1 and all(n == 1 for _, n in per_source)
