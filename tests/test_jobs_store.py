"""The batch-job journal (store/jobs.py, migration m011_batch_jobs) on SQLite and on a real PostgreSQL as the
service role, row-level security applied: jobs started, their files journalled, summed, resumed and finished;
a source recorded again keeps its later row; a tenant reaches none of another's jobs; an erased tenant leaves
no job or file row; an older database gets the tables when it is opened."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pytest

from _backends import postgres_rows
from frugalsense.errors import InvalidRequestError, NotFoundError
from frugalsense.settings import Settings
from frugalsense.store import Store, open_store
from frugalsense.store.jobs import Job, JobFile, JobStore, JobTotals, PostgresJobStore, open_jobs, spec_key
from frugalsense.store.postgres_db import connect, is_postgres_url
from frugalsense.store.postgres_rls import ALL_TENANTS, scope_of

SPEC = {"root": "photos", "features": ["faces", "labels"], "recursive": True}
# binary fractions, so sums in any order are exact on both backends
ADDED = JobFile(
    "photos/a.jpg", "added", "a" * 64, "item_a", 0.5, 0.25, 1, {"faces": (0.25, 1), "labels": (0.125, 1)}
)
UPDATED = JobFile("photos/b.jpg", "updated", "b" * 64, "item_b", 1.5, 0.5, 2, {"faces": (1.0, 2)})
UNCHANGED = JobFile("photos/c.jpg", "unchanged", "c" * 64, "item_c")
FAILED = JobFile("photos/d.pdf", "failed", "d" * 64, error={"code": "corrupt_input", "message": "truncated PDF"})


@dataclass
class Journal:
    store: Store
    jobs: JobStore
    a: str
    b: str

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every tenant's rows, read behind the stores' back."""
        path = str(self.store.path)  # type: ignore[attr-defined]
        if is_postgres_url(path):
            return postgres_rows(path, sql.replace("?", "%s"), params)
        with closing(sqlite3.connect(path)) as db:
            return [tuple(r) for r in db.execute(sql, params)]


@pytest.fixture()
def journal(store_settings: Settings) -> Iterator[Journal]:
    """The job journal of a fresh database with tenants A and B."""
    store = open_store(store_settings)
    a, b = store.create_tenant("a").id, store.create_tenant("b").id
    jobs = open_jobs(store.path)  # type: ignore[attr-defined]
    yield Journal(store, jobs, a, b)
    jobs.close()
    store.close()


def test_the_backend_under_test_is_the_one_the_address_names(journal: Journal) -> None:
    postgres = is_postgres_url(str(journal.store.path))  # type: ignore[attr-defined]
    assert isinstance(journal.jobs, PostgresJobStore) == postgres


def test_a_job_is_started_journalled_summed_and_finished(journal: Journal) -> None:
    jobs, a = journal.jobs, journal.a
    job = jobs.start(a, "index", SPEC)
    assert job.id.startswith("job_") and (job.kind, job.spec, job.status, job.attempts) == (
        "index",
        SPEC,
        "running",
        1,
    )
    assert job.finished_at is None and job.report is None and jobs.get_job(a, job.id) == job
    assert jobs.totals(a, job.id) == JobTotals(0, {}, 0.0, 0.0, 0, {})
    assert jobs.done_sources(a, job.id) == set()

    jobs.record(a, job.id, [ADDED, UPDATED])
    jobs.record(a, job.id, [UNCHANGED, FAILED])
    jobs.record(a, job.id, [])  # nothing to journal: no-op
    assert jobs.done_sources(a, job.id) == {"photos/a.jpg", "photos/b.jpg", "photos/c.jpg", "photos/d.pdf"}
    totals = jobs.totals(a, job.id)
    assert totals == JobTotals(
        files=4,
        counts={"added": 1, "failed": 1, "unchanged": 1, "updated": 1},
        cpu_s=2.0,
        usd=0.75,
        pictures=3,
        features={"faces": (1.25, 3), "labels": (0.125, 1)},
    )
    assert totals.to_dict()["features"] == {"faces": [1.25, 3], "labels": [0.125, 1]}
    assert jobs.failures(a, job.id) == [FAILED]  # read back whole, error and all
    assert jobs.failures(a, job.id, limit=0) == []

    report = {"files": 4, "failed": 1, "totals": totals.to_dict()}
    done = jobs.finish(a, job.id, "finished", report)
    assert (done.status, done.report, done.attempts) == ("finished", report, 1)
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert jobs.get_job(a, job.id) == done
    shown = done.to_dict()
    assert shown["started_at"].endswith("+00:00") and shown["finished_at"].endswith("+00:00")
    assert shown["elapsed_s"] == done.finished_at - done.started_at and shown["spec"] == SPEC

    later = jobs.start(a, "analyze", {"root": "scans"})
    assert [j.id for j in jobs.list_jobs(a)] == [later.id, job.id]  # newest first
    assert jobs.list_jobs(a, limit=1) == [later]
    assert jobs.list_jobs(journal.b) == []


def test_recording_a_source_again_keeps_one_row_the_later(journal: Journal) -> None:
    jobs, a = journal.jobs, journal.a
    job = jobs.start(a, "analyze", SPEC)
    first = JobFile("photos/a.jpg", "failed", error={"code": "model_unavailable", "message": "no OCR model"})
    retried = JobFile("photos/a.jpg", "analyzed", cpu_s=0.5, pictures=1, features={"text": (0.5, 1)})
    jobs.record(a, job.id, [first])
    jobs.record(a, job.id, [retried])
    assert jobs.totals(a, job.id) == JobTotals(1, {"analyzed": 1}, 0.5, 0.0, 1, {"text": (0.5, 1)})
    assert jobs.failures(a, job.id) == []
    # within one batch too, the later wins
    skipped = JobFile("photos/b.jpg", "skipped")
    jobs.record(a, job.id, [JobFile("photos/b.jpg", "analyzed", cpu_s=9.0), skipped])
    assert jobs.totals(a, job.id).counts == {"analyzed": 1, "skipped": 1}
    assert journal.rows("SELECT source, status FROM job_files WHERE job_id = ? ORDER BY source", (job.id,)) == [
        ("photos/a.jpg", "analyzed"),
        ("photos/b.jpg", "skipped"),
    ]


def test_the_job_to_resume_is_the_newest_unfinished_one_of_the_same_spec(journal: Journal) -> None:
    jobs, a = journal.jobs, journal.a
    assert jobs.resumable(a, "index", SPEC) is None
    finished = jobs.start(a, "index", SPEC)
    jobs.finish(a, finished.id, "finished", {})
    assert jobs.resumable(a, "index", SPEC) is None  # a finished job is not resumed
    older = jobs.start(a, "index", SPEC)
    jobs.finish(a, older.id, "stopped", {"reason": "interrupted"})
    stopped = jobs.start(a, "index", SPEC)
    jobs.finish(a, stopped.id, "stopped", {"reason": "interrupted"})
    jobs.start(a, "index", {**SPEC, "recursive": False})  # another spec
    jobs.start(a, "analyze", SPEC)  # another kind
    # the keys of the spec in any order are the same spec
    assert jobs.resumable(a, "index", dict(reversed(SPEC.items()))) == jobs.get_job(a, stopped.id)
    assert spec_key("index", SPEC) == spec_key("index", dict(reversed(SPEC.items())))

    jobs.record(a, stopped.id, [ADDED, FAILED])
    resumed = jobs.resume(a, stopped.id)
    assert (resumed.status, resumed.attempts, resumed.finished_at) == ("running", 2, None)
    assert resumed.report == {"reason": "interrupted"}  # the last run's, until this one finishes
    # a run cut short while running (no finish) is resumed as well
    assert jobs.resumable(a, "index", SPEC) == resumed
    assert jobs.done_sources(a, stopped.id) == {"photos/a.jpg", "photos/d.pdf"}
    assert jobs.resume(a, stopped.id).attempts == 3
    jobs.finish(a, stopped.id, "finished", {"files": 2})
    assert jobs.resumable(a, "index", SPEC) == jobs.get_job(a, older.id)
    assert jobs.resumable(journal.b, "index", SPEC) is None  # nor another tenant's


FOREIGN_CALLS: list[tuple[str, Callable[[JobStore, str, str], object]]] = [
    ("get", lambda s, t, j: s.get_job(t, j)),
    ("resume", lambda s, t, j: s.resume(t, j)),
    ("record", lambda s, t, j: s.record(t, j, [JobFile("evil.jpg", "added")])),
    ("done sources", lambda s, t, j: s.done_sources(t, j)),
    ("totals", lambda s, t, j: s.totals(t, j)),
    ("failures", lambda s, t, j: s.failures(t, j)),
    ("finish", lambda s, t, j: s.finish(t, j, "finished", {"evil": True})),
]


@pytest.mark.parametrize(("what", "call"), FOREIGN_CALLS, ids=[w for w, _ in FOREIGN_CALLS])
def test_tenant_b_cannot_read_or_record_into_tenant_as_job(
    journal: Journal, what: str, call: Callable[[JobStore, str, str], object]
) -> None:
    jobs, a, b = journal.jobs, journal.a, journal.b
    job = jobs.start(a, "index", SPEC)
    jobs.record(a, job.id, [ADDED, FAILED])
    with pytest.raises(NotFoundError, match="see frugalsense jobs"):
        call(jobs, b, job.id)
    with pytest.raises(NotFoundError):
        call(jobs, a, "job_missing")
    # A's job is as it was
    assert jobs.get_job(a, job.id) == job
    assert jobs.done_sources(a, job.id) == {"photos/a.jpg", "photos/d.pdf"}
    assert journal.rows("SELECT tenant_id, COUNT(*) FROM job_files GROUP BY tenant_id") == [(a, 2)]
    assert jobs.list_jobs(b) == []


def test_postgres_runs_every_call_in_its_tenants_scope() -> None:
    """On PostgreSQL each call sees only its tenant's rows, whatever its SQL says (store/postgres_rls.py)."""
    public = [name for name in vars(JobStore) if not name.startswith("_")]
    assert set(public) >= {"start", "record", "totals", "list_jobs"}
    assert {name: scope_of(PostgresJobStore, name) for name in public} == dict.fromkeys(public, "tenant")


BAD_CALLS: list[tuple[str, Callable[[JobStore, str, str], object], str]] = [
    ("unknown kind", lambda s, t, j: s.start(t, "transcode", SPEC), "'index', 'analyze'"),
    ("unknown kind to resume", lambda s, t, j: s.resumable(t, "reindex", SPEC), "'index', 'analyze'"),
    ("spec not JSON", lambda s, t, j: s.start(t, "index", {"roots": {"a", "b"}}), "plain JSON"),
    ("end still running", lambda s, t, j: s.finish(t, j, "running", {}), "'finished', 'stopped'"),
    ("end unknown", lambda s, t, j: s.finish(t, j, "done", {}), "'finished', 'stopped'"),
    ("report not JSON", lambda s, t, j: s.finish(t, j, "stopped", {"cpu": math.nan}), "plain JSON"),
    ("file status", lambda s, t, j: s.record(t, j, [JobFile("a.jpg", "indexed")]), "'added', 'updated'"),
    ("file cost", lambda s, t, j: s.record(t, j, [JobFile("a.jpg", "added", cpu_s=math.inf)]), "finite"),
    ("file error", lambda s, t, j: s.record(t, j, [JobFile("a.jpg", "failed", error={"oops": "x"})]), "'code'"),
    (
        "feature cost",
        lambda s, t, j: s.record(t, j, [JobFile("a.jpg", "added", features={"ocr": (math.nan, 1)})]),
        "plain JSON",
    ),
    ("no source", lambda s, t, j: s.record(t, j, [JobFile("", "added")]), "source"),
]


@pytest.mark.parametrize(("what", "call", "says"), BAD_CALLS, ids=[w for w, _, _ in BAD_CALLS])
def test_bad_requests_are_refused_with_what_to_do_before_the_database_sees_them(
    journal: Journal, what: str, call: Callable[[JobStore, str, str], object], says: str
) -> None:
    job = journal.jobs.start(journal.a, "index", SPEC)
    with pytest.raises(InvalidRequestError, match=says):
        call(journal.jobs, journal.a, job.id)
    assert journal.jobs.get_job(journal.a, job.id) == job
    assert journal.jobs.totals(journal.a, job.id).files == 0
    with pytest.raises(NotFoundError, match="no tenant"):
        journal.jobs.start("ten_missing", "index", SPEC)


def test_erasing_a_tenant_removes_its_jobs_and_their_files(journal: Journal) -> None:
    jobs, a, b = journal.jobs, journal.a, journal.b
    for tenant in (a, b):
        for kind in ("index", "analyze"):
            job = jobs.start(tenant, kind, SPEC)
            jobs.record(tenant, job.id, [ADDED, FAILED])
    kept = jobs.list_jobs(b)
    journal.store.delete_tenant(a)
    assert journal.rows("SELECT tenant_id, COUNT(*) FROM jobs GROUP BY tenant_id") == [(b, 2)]
    assert journal.rows("SELECT tenant_id, COUNT(*) FROM job_files GROUP BY tenant_id") == [(b, 4)]
    assert jobs.list_jobs(a) == [] and jobs.list_jobs(b) == kept
    assert all(jobs.totals(b, j.id).files == 2 for j in kept)


def test_an_older_database_gets_the_journal_when_opened(journal: Journal) -> None:
    """A database from before m011 (its tables dropped and its record deleted behind the store's back)."""
    path = str(journal.store.path)  # type: ignore[attr-defined]
    assert journal.rows("SELECT name FROM migrations WHERE name = 'm011_batch_jobs'") == [("m011_batch_jobs",)]
    journal.jobs.close()
    undo = ["DROP TABLE job_files", "DROP TABLE jobs", "DELETE FROM migrations WHERE name = 'm011_batch_jobs'"]
    with closing(connect(path, tenant=ALL_TENANTS) if is_postgres_url(path) else sqlite3.connect(path)) as db:
        for statement in undo:
            db.execute(statement)
        if not is_postgres_url(path):
            db.commit()
    reopened = open_jobs(path)
    try:
        assert reopened.migrated == ["m011_batch_jobs"]
        job = reopened.start(journal.a, "index", SPEC)
        reopened.record(journal.a, job.id, [ADDED])
        assert reopened.totals(journal.a, job.id).files == 1
    finally:
        reopened.close()
    if is_postgres_url(path):  # under the tenant policy from the start
        policies = postgres_rows(
            path,
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, COUNT(p.polname) FROM pg_class c"
            " LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname IN ('jobs', 'job_files')"
            " GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity ORDER BY c.relname",
        )
        assert policies == [("job_files", True, True, 1), ("jobs", True, True, 1)]


def test_a_new_database_lists_the_migration(settings: Settings) -> None:
    store = open_store(settings)
    try:
        assert "m011_batch_jobs" in store.migrated  # type: ignore[attr-defined]
    finally:
        store.close()


def test_to_dict_is_plain_json() -> None:
    job = Job("job_x", "ten_x", "index", SPEC, "running", 0.0, None, 1, None)
    assert job.to_dict()["started_at"] == "1970-01-01T00:00:00.000+00:00"
    assert job.to_dict()["finished_at"] is None and job.to_dict()["elapsed_s"] is None
    assert ADDED.to_dict()["features"] == {"faces": [0.25, 1], "labels": [0.125, 1]}
    assert FAILED.to_dict()["error"] == {"code": "corrupt_input", "message": "truncated PDF"}
