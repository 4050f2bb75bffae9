"""Batch work past one machine: index or analyse archives of millions of files as jobs on a Ray cluster.

`run_job` runs a `JobRequest` (the CLI's ``index --ray`` and ``analyze --ray``); `FileWork` is what each of the
cluster's actors runs per file, the same code a plain run uses; the job's journal and report live in the store
(`frugalsense.store.jobs`, `frugalsense.cluster.report`). Ray is an optional extra imported only when a job
starts; docs/ray.md goes from one box to a cluster.
"""

from __future__ import annotations

from frugalsense.cluster.inputs import job_inputs
from frugalsense.cluster.ray_jobs import JobRequest, JobRun, connect_ray, run_job
from frugalsense.cluster.report import format_report, job_report
from frugalsense.cluster.work import FileWork

__all__ = [
    "FileWork",
    "JobRequest",
    "JobRun",
    "connect_ray",
    "format_report",
    "job_inputs",
    "job_report",
    "run_job",
]
