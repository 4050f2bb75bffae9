"""Batch jobs on a Ray cluster: `frugalsense index --ray [ADDRESS]` and `frugalsense analyze --ray ... --out`.

The driver (the machine the command runs on) lists the job's files, starts or continues its journal in the store
(`frugalsense.store.jobs`), and hands the files not yet done to Ray Data: a dataset of paths in blocks, mapped by
an actor pool sized to the cluster's CPUs, each actor holding the models (and, for an index job, a connection to
the shared store) loaded once (`FileWork`). Results stream back to the driver, which journals them a few at a
time, appends them to the output file (JSON lines; Parquet written from them at the end) and prints a line every
``progress_every`` files; Ray's own progress bars and dashboard show the rest.

Faults: Ray restarts a dead actor and runs its lost batch again (index jobs are idempotent through the index's
content hashes, `frugalsense.cluster.work`); a file that fails is a row in the journal, not a failed job; a job
stopped with Ctrl-C is marked "stopped", one whose driver died stays "running", and the same command run again
continues either, skipping every file its journal (or its output file) already has.

Where the data goes: every worker opens the store the settings name. PostgreSQL is the store a cluster shares; the
embedded SQLite file works only while every Ray node runs on the driver's machine (checked before starting).

Ray is an optional extra (``pip install frugalsense[ray]``), imported only here and only when a job starts.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugalsense.cluster.inputs import job_inputs
from frugalsense.cluster.report import job_report
from frugalsense.cluster.work import FileWork, JobKind, sweep_orphan_faces
from frugalsense.errors import ConfigurationError, InvalidRequestError
from frugalsense.settings import Settings
from frugalsense.store.jobs import Job, JobFile, JobStore, open_jobs

__all__ = ["JobRequest", "JobRun", "connect_ray", "run_job"]

#: rows journaled in one transaction, at the latest every `_JOURNAL_EVERY_S`
_JOURNAL_ROWS = 32
_JOURNAL_EVERY_S = 2.0


@dataclass(frozen=True)
class JobRequest:
    """What a job runs over and how. ``address``: a Ray cluster's address ("auto", "ray://host:10001",
    "host:6379"); None starts a local Ray for this job alone."""

    kind: JobKind
    paths: list[str]
    tenant: str = "default"
    features: list[str] | None = None
    out: Path | None = None
    collection: str | None = None
    force: bool = False
    address: str | None = None
    workers: int | None = None
    batch_size: int = 4
    progress_every: int = 100

    def spec(self) -> dict[str, Any]:
        """What makes two runs the same job (so the second continues the first): inputs and options, not the
        cluster or how many workers it has."""
        inputs = [p if p.startswith("@") else str(Path(p).resolve()) for p in self.paths]
        return {
            "inputs": inputs,
            "features": self.features,
            "out": str(self.out.resolve()) if self.out else None,
            "collection": self.collection,
            "force": self.force,
        }


@dataclass
class JobRun:
    """A finished (or stopped) run: the job as recorded, its report, and some of its failed files."""

    job: Job
    report: dict[str, Any]
    failures: list[JobFile] = field(default_factory=list)
    continued: bool = False


class _RayWorker:
    """The callable class Ray Data keeps one of per actor: its `FileWork` is built once, in the actor."""

    def __init__(self, kind: JobKind, settings: dict[str, Any], tenant_id: str, **options: Any) -> None:
        self.work = FileWork(kind, Settings(**settings), tenant_id, **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        return self.work.run_many(str(path) for path in batch["path"])


def connect_ray(address: str | None, *, workers: int | None = None) -> Any:
    """Connect to the cluster at ``address``, or start a local Ray (``workers`` CPUs, default all). Returns the
    ``ray`` module."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError("Ray is not installed: pip install 'frugalsense[ray]'") from exc
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": always a new Ray of this job's own, even when `ray start` runs one on this machine
            ray.init(address="local", num_cpus=workers, include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigurationError(f"cannot reach a Ray cluster at {address or 'a new local Ray'}: {exc}") from exc
    return ray


def _check_store_reach(ray: Any, settings: Settings) -> None:
    """An SQLite file is one machine's: refuse a cluster with nodes elsewhere (they would write files of
    their own, or nothing)."""
    if settings.database_url:
        return
    here = {ray.util.get_node_ip_address(), "127.0.0.1", socket.gethostbyname(socket.gethostname())}
    others = sorted({n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")} - here)
    if others:
        raise InvalidRequestError(
            f"the cluster has nodes on other machines ({', '.join(others)}) but the store is an SQLite file here;"
            " give every node one PostgreSQL: --database-url postgresql://... (see docs/ray.md)"
        )


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_job(
    settings: Settings,
    request: JobRequest,
    *,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> JobRun:
    """Run (or continue) a job on Ray; returns once every file is done. Ctrl-C marks it stopped and re-raises."""
    from frugalsense.store import open_store

    if request.kind == "analyze" and request.out is None:
        raise InvalidRequestError("analyze --ray needs --out results.jsonl (or .parquet): the results go there")
    files = [str(p) for p in job_inputs(request.paths)]
    store = open_store(settings)
    try:
        tenant_id = _tenant(store, request.tenant)
        collection_id = _collection(settings, store, tenant_id, request) if request.kind == "index" else None
    finally:
        store.close()
    jobs = open_jobs(store.path)
    try:
        return _run(settings, request, jobs, tenant_id, collection_id, files, echo)
    finally:
        jobs.close()


def _run(
    settings: Settings,
    request: JobRequest,
    jobs: JobStore,
    tenant_id: str,
    collection_id: str | None,
    files: list[str],
    echo: Callable[[str], None],
) -> JobRun:
    spec = request.spec()
    found = jobs.resumable(tenant_id, request.kind, spec)
    job = jobs.resume(tenant_id, found.id) if found else jobs.start(tenant_id, request.kind, spec)
    output = _Output(request.out) if request.out else None
    done = jobs.done_sources(tenant_id, job.id)
    if output is not None:  # written to the file, then the worker or driver died before the journal had it
        late = [_journaled(record) for source, record in output.records().items() if source not in done]
        jobs.record(tenant_id, job.id, late)
        done |= {f.source for f in late}
    todo = [f for f in files if f not in done]
    ray = connect_ray(request.address, workers=request.workers)
    _check_store_reach(ray, settings)
    workers = request.workers or _cluster_cpus(ray)
    verb = "continuing" if found else "started"
    echo(f"job {job.id} {verb}: {len(todo)} of {len(files)} files to do, {workers} workers on Ray")
    started = time.perf_counter()
    journal = _Journal(jobs, tenant_id, job.id)
    seen = 0
    try:
        for row in _rows(ray, settings, request, tenant_id, collection_id, job, todo, workers):
            if output is not None:
                output.write(row, request.kind)
            journal.add(row)
            seen += 1
            if request.progress_every and (seen % request.progress_every == 0 or seen == len(todo)):
                _progress(echo, seen, len(todo), time.perf_counter() - started)
        journal.flush()
        if output is not None:
            output.finish()
        if request.kind == "index" and collection_id is not None:
            _tidy_index(settings, tenant_id, collection_id, journal.digests)
    except KeyboardInterrupt:
        journal.flush()
        report = _report(jobs, settings, job, time.perf_counter() - started, workers)
        jobs.finish(tenant_id, job.id, "stopped", report)
        echo(f"job {job.id} stopped after {seen} files; run the same command again to continue it")
        raise
    report = _report(jobs, settings, job, time.perf_counter() - started, workers)
    finished = jobs.finish(tenant_id, job.id, "finished", report)
    return JobRun(finished, report, jobs.failures(tenant_id, job.id, limit=20), continued=found is not None)


def _rows(
    ray: Any,
    settings: Settings,
    request: JobRequest,
    tenant_id: str,
    collection_id: str | None,
    job: Job,
    todo: list[str],
    workers: int,
) -> Iterator[dict[str, Any]]:
    """The job's rows as the actors finish them (in no set order)."""
    if not todo:
        return
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = True
    blocks = max(1, min(len(todo), math.ceil(len(todo) / request.batch_size)))
    dataset = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=blocks)
    mapped = dataset.map_batches(
        _RayWorker,
        fn_constructor_args=(request.kind, settings.model_dump(mode="json"), tenant_id),
        fn_constructor_kwargs={
            "features": request.features,
            "collection_id": collection_id,
            "force": request.force,
            "job_started": job.started_at,
        },
        batch_size=request.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        # A lost actor is started again and its batch run again: index writes are idempotent.
        max_restarts=-1,
        max_task_retries=-1,
    )
    yield from mapped.iter_rows()


def _progress(echo: Callable[[str], None], seen: int, total: int, wall_s: float) -> None:
    rate = seen / wall_s if wall_s > 0 else 0.0
    left = (total - seen) / rate if rate > 0 else float("nan")
    echo(f"{seen}/{total} files, {rate:.2f} files/s, {left:.0f} s left")


def _report(jobs: JobStore, settings: Settings, job: Job, wall_s: float, workers: int) -> dict[str, Any]:
    totals = jobs.totals(job.tenant_id, job.id).to_dict()
    return job_report(
        totals,
        price_per_cpu_hour=settings.price_per_cpu_hour,
        wall_s=wall_s,
        workers=workers,
        attempts=job.attempts,
    )


def _tidy_index(settings: Settings, tenant_id: str, collection_id: str, digests: set[str]) -> None:
    """After an index job: erase sightings left by killed workers, and save the tenant's vector snapshot once
    (as `frugalsense index` does at the end of a run)."""
    from frugalsense.search import SearchService

    with SearchService.open(settings) as service:
        sweep_orphan_faces(service, tenant_id, collection_id, digests)
        service.cache.snapshot(tenant_id, service.encoder.name)


def _tenant(store: Any, name: str) -> str:
    found = next((t for t in store.list_tenants() if t.name == name), None)
    return str((found or store.create_tenant(name)).id)


def _collection(settings: Settings, store: Any, tenant_id: str, request: JobRequest) -> str:
    """The collection an index job identifies faces against (made now, once, not by every actor at once)."""
    name = request.collection or settings.search_collection
    found = next((c for c in store.list_collections(tenant_id) if c.name == name), None)
    return str((found or store.create_collection(tenant_id, name)).id)


class _Journal:
    """Rows into the job's journal a few at a time, and the content hashes of what the job touched."""

    def __init__(self, jobs: JobStore, tenant_id: str, job_id: str) -> None:
        self.jobs, self.tenant_id, self.job_id = jobs, tenant_id, job_id
        self.digests: set[str] = set()
        self._pending: list[JobFile] = []
        self._last = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        if row["sha256"]:
            self.digests.add(row["sha256"])
        self._pending.append(
            JobFile(
                source=row["source"],
                status=row["status"],
                sha256=row["sha256"] or None,
                item_id=row["item_id"] or None,
                cpu_s=float(row["cpu_s"]),
                usd=float(row["usd"]),
                pictures=int(row["pictures"]),
                features={k: (float(v[0]), int(v[1])) for k, v in json.loads(row["features"]).items()},
                error=json.loads(row["error"]) if row["error"] else None,
            )
        )
        if len(self._pending) >= _JOURNAL_ROWS or time.monotonic() - self._last >= _JOURNAL_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.jobs.record(self.tenant_id, self.job_id, self._pending)
            self._pending = []
        self._last = time.monotonic()


class _Output:
    """The results file: JSON lines appended as rows arrive (flushed each time, so a stop loses none), or, for a
    ``.parquet`` name, JSON lines beside it that become the Parquet file when the job is done."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.parquet = self.path.suffix.lower() == ".parquet"
        self.lines = self.path.with_name(self.path.name + ".partial.jsonl") if self.parquet else self.path
        self.lines.parent.mkdir(parents=True, exist_ok=True)
        _cut_partial_line(self.lines)
        self._file = self.lines.open("a", encoding="utf-8")

    def records(self) -> dict[str, dict[str, Any]]:
        """The records already in the file, by source (a continued job skips them)."""
        return {str(record.get("source")): record for record in _read_lines(self.lines)}

    def write(self, row: dict[str, Any], kind: JobKind) -> None:
        record: dict[str, Any] = json.loads(row["result"]) if row["result"] else {}
        record = {"source": row["source"], "status": row["status"], **record}
        if row["error"]:
            record["error"] = json.loads(row["error"])
        if kind == "index" and row["item_id"]:
            record["item_id"] = row["item_id"]
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def finish(self) -> None:
        """Close the lines; for Parquet, write the table (every source in it is journaled by now)."""
        self._file.close()
        if not self.parquet:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        records = self.records()  # the last line of a source wins
        table = pa.Table.from_pylist(
            [
                {
                    "source": source,
                    "status": r.get("status"),
                    "sha256": r.get("sha256"),
                    "error": json.dumps(r["error"]) if r.get("error") else None,
                    "record": json.dumps(r, separators=(",", ":")),
                }
                for source, r in records.items()
            ]
        )
        pq.write_table(table, self.path)
        self.lines.unlink()


def _read_lines(path: Path) -> Iterable[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a kill: its file is done again
    return out


def _cut_partial_line(path: Path) -> None:
    """Drop a last line a kill cut short, so the next record starts on a line of its own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as file:
        data = file.read()
        if not data.endswith(b"\n"):
            file.truncate(data.rfind(b"\n") + 1)


def _journaled(record: dict[str, Any]) -> JobFile:
    """A journal row for a record found only in the output file (its CPU from the record's receipt)."""
    receipt = record.get("receipt") or {}
    return JobFile(
        source=str(record.get("source")),
        status=str(record.get("status") or "analyzed"),
        sha256=record.get("sha256"),
        item_id=record.get("item_id"),
        cpu_s=float(receipt.get("cpu_seconds") or 0.0),
        usd=float(receipt.get("cost_usd") or 0.0),
        pictures=len(record.get("pages") or []),
        error=_error(record.get("error")),
    )


def _error(value: Any) -> dict[str, str] | None:
    """A record's error as the journal keeps it: a code and a message, whatever the line held."""
    if not value:
        return None
    if isinstance(value, dict):
        return {"code": str(value.get("code") or "failed"), "message": str(value.get("message") or "")}
    return {"code": "failed", "message": str(value)}
