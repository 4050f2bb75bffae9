"""The command line's batch jobs on Ray, thin over `frugalsense.cluster`: ``index --ray`` and ``analyze --ray``
(their options are added to those commands), and ``jobs`` (the runs recorded in the store, with their reports)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["add_jobs_command", "add_ray_options", "run_on_ray"]


def add_ray_options(p: argparse.ArgumentParser, *, analyze: bool) -> None:
    """The options a command takes to run as a job on Ray."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run as a job on a Ray cluster (its address; none: a local Ray); needs frugalsense[ray]",
    )
    out_help = "with --ray: results as JSON lines (.jsonl) or Parquet (.parquet)"
    p.add_argument("--out", help=out_help + ("" if analyze else " beside the index"))
    p.add_argument("--batch-size", type=int, default=4, help="with --ray: files per task (default 4)")
    p.add_argument("--progress-every", type=int, default=100, help="with --ray: a progress line every N files")
    if analyze:
        p.add_argument("--tenant", default="default", help="with --ray: the tenant the job is recorded for")
        p.add_argument("--workers", type=int, help="with --ray: actors (default: the cluster's CPUs)")


def run_on_ray(args: argparse.Namespace, settings: Any, kind: str) -> int:
    """``index --ray`` / ``analyze --ray``: run or continue the job, print its report; 2 when files failed."""
    from frugalsense.cluster import JobRequest, format_report, run_job

    request = JobRequest(
        kind="index" if kind == "index" else "analyze",
        paths=list(args.paths),
        tenant=args.tenant,
        features=args.features.split(",") if getattr(args, "features", None) else None,
        out=Path(args.out) if args.out else None,
        collection=getattr(args, "collection", None),
        force=bool(getattr(args, "force", False)),
        address=args.ray or None,
        workers=args.workers,
        batch_size=max(1, args.batch_size),
        progress_every=0 if args.quiet else max(1, args.progress_every),
    )
    run = run_job(settings, request)
    if getattr(args, "json", False):
        print(json.dumps({"job": run.job.to_dict(), "failed": [f.to_dict() for f in run.failures]}, indent=2))
    else:
        print(f"job {run.job.id} {run.job.status}" + (" (continued)" if run.continued else ""))
        print(format_report(run.report))
        for failure in run.failures:
            message = (failure.error or {}).get("message", "")
            print(f"failed: {failure.source}: {message}", file=sys.stderr)
    return 2 if run.report["counts"].get("failed") else 0


def add_jobs_command(sub: Any, settings: Callable[[argparse.Namespace], Any]) -> None:
    """``frugalsense jobs [list | show JOB_ID]``."""
    p = sub.add_parser("jobs", help="batch jobs run with --ray: list them, or show one's report and failures")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("job", nargs="?", help="job id (show)")
    p.add_argument("--tenant", default="default")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda args: _jobs(args, settings(args)))


def _jobs(args: argparse.Namespace, settings: Any) -> int:
    from frugalsense.cluster.report import format_report
    from frugalsense.errors import InvalidRequestError
    from frugalsense.store import open_store
    from frugalsense.store.jobs import open_jobs

    store = open_store(settings)
    try:
        tenant = next((t for t in store.list_tenants() if t.name == args.tenant), None)
    finally:
        store.close()
    if tenant is None:
        raise InvalidRequestError(f"no tenant {args.tenant!r}; see frugalsense tenants list")
    jobs = open_jobs(store.path)
    try:
        if args.action == "show":
            if not args.job:
                raise InvalidRequestError("say which job: frugalsense jobs show JOB_ID (see frugalsense jobs)")
            job = jobs.get_job(tenant.id, args.job)
            failures = jobs.failures(tenant.id, job.id, limit=args.limit)
            if args.json:
                print(json.dumps({"job": job.to_dict(), "failed": [f.to_dict() for f in failures]}, indent=2))
                return 0
            print(f"{job.id}  {job.kind}  {job.status}  started {_when(job.started_at)}  attempts {job.attempts}")
            print("inputs: " + " ".join(job.spec.get("inputs") or []))
            if job.report:
                print(format_report(job.report))
            else:
                totals = jobs.totals(tenant.id, job.id)
                print(f"running: {totals.files} files done so far ({totals.counts})")
            for failure in failures:
                print(f"failed: {failure.source}: {(failure.error or {}).get('message', '')}")
            return 0
        listed = jobs.list_jobs(tenant.id, limit=args.limit)
    finally:
        jobs.close()
    if args.json:
        print(json.dumps([j.to_dict() for j in listed], indent=2))
        return 0
    for job in listed:
        report = job.report or {}
        counts = ", ".join(f"{n} {s}" for s, n in sorted((report.get("counts") or {}).items()) if n) or "-"
        cost = f"${report['usd']:.4f}" if "usd" in report else "-"
        print(f"{job.id:<22} {job.kind:<8} {job.status:<9} {_when(job.started_at)}  {cost:>9}  {counts}")
    if not listed:
        print("no jobs yet: frugalsense index --ray FOLDER")
    return 0


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
