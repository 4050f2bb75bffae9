"""One file of a batch job, as every worker of the job runs it: the same code with or without Ray.

A `FileWork` opens what its kind of job needs once (an index job: the search service over the shared store, with
its analyzer, gallery and encoder; an analyze job: an analyzer) and turns one path at a time into a `row`: flat
fields a Ray dataset carries as columns (strings, numbers; nested parts as JSON text), from which the driver
journals the job and writes its output. Bad input never raises out of `run`: it comes back as a "failed" row, so
one unreadable file cannot fail a job over a million.

Index jobs are idempotent through the index itself: a file whose content hash (and encoder) is already stored
under its path comes back "unchanged" without being analysed, so a task Ray retries after losing a worker, or a
job run again after a stop, never indexes a file twice. A file an earlier attempt of the same job indexed but
could not report (its worker died after the write) is reported "added" again, without the CPU it cost then.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from frugalsense.console.prices import features_of
from frugalsense.errors import FrugalsenseError, NotFoundError
from frugalsense.settings import Settings

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.search import SearchService

__all__ = ["COLUMNS", "FileWork", "JobKind", "sweep_orphan_faces"]

JobKind = Literal["index", "analyze"]

#: the fields of a row, in order
COLUMNS = (
    "source",
    "status",
    "sha256",
    "item_id",
    "cpu_s",
    "usd",
    "pictures",
    "features",
    "error",
    "result",
    "worker",
    "wall_s",
)


class FileWork:
    """The models and store one worker holds for a whole job, and the work on one file."""

    def __init__(
        self,
        kind: JobKind,
        settings: Settings,
        tenant_id: str,
        *,
        features: Sequence[str] | None = None,
        collection_id: str | None = None,
        force: bool = False,
        job_started: float = 0.0,
    ) -> None:
        self.kind, self.settings, self.tenant_id = kind, settings, tenant_id
        self.features = list(features) if features else None
        self.collection_id, self.force, self.job_started = collection_id, force, job_started
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._service: SearchService | None = None
        self._analyzer: Analyzer | None = None
        if kind == "index":
            from frugalsense.search import SearchService

            self._service = SearchService.open(settings)
        else:
            from frugalsense.analyze import Analyzer

            self._analyzer = Analyzer(settings)
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the picture models now, once per worker, so no file's receipt pays for loading them (a speech
        model still loads with the first recording)."""
        from frugalsense.analyze import default_features

        analyzer = self._service.analyzer if self._service is not None else self._analyzer
        assert analyzer is not None
        wanted = self.features or default_features("image")
        analyzer.warm_up([f for f in wanted if f in ("faces", "labels", "moderation", "text", "fields")])
        if self._service is not None:
            self._service.encoder.encode_texts(["warm up"])

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None

    def run_many(self, paths: Iterable[str]) -> dict[str, list[Any]]:
        """Rows for several paths, as columns (what a Ray Data batch function returns)."""
        rows = [self.run(path) for path in paths]
        return {column: [row[column] for row in rows] for column in COLUMNS}

    def run(self, path: str) -> dict[str, Any]:
        """One file: analysed (and, in an index job, stored), as a row. Never raises for bad input."""
        started = time.perf_counter()
        try:
            row = self._index(path) if self._service is not None else self._analyze(path)
        except Exception as exc:  # a bug on one file must not end the job: it is reported like bad input
            row = _row(path, "failed", error={"code": "internal", "message": f"{type(exc).__name__}: {exc}"})
        row["worker"] = self.worker
        row["wall_s"] = time.perf_counter() - started
        return row

    def _index(self, path: str) -> dict[str, Any]:
        service = self._service
        assert service is not None
        outcome = service.index(self.tenant_id, Path(path), force=self.force, collection_id=self.collection_id)
        if outcome.status == "failed":
            error = {"code": outcome.error_code or "bad_input", "message": outcome.error or ""}
            return _row(outcome.source, "failed", sha256=outcome.sha256, error=error)
        status = outcome.status
        if status == "unchanged" and self.job_started and outcome.item_id:
            with contextlib.suppress(NotFoundError):
                item = service.items.get_item(self.tenant_id, outcome.item_id)
                if _epoch(item.indexed_at) >= self.job_started:
                    status = "added"  # by an earlier attempt of this job, whose report was lost with its worker
        row = _row(outcome.source, status, sha256=outcome.sha256, item_id=outcome.item_id)
        if outcome.receipt is not None:
            _bill(row, outcome.receipt, outcome.pictures)
        return row

    def _analyze(self, path: str) -> dict[str, Any]:
        assert self._analyzer is not None
        try:
            result = self._analyzer.analyze(path, self.features, name=Path(path).name)
        except FrugalsenseError as exc:
            return _row(path, "failed", error={"code": exc.code, "message": str(exc)})
        row = _row(path, "analyzed", sha256=result.sha256)
        row["result"] = json.dumps(result.to_dict(), separators=(",", ":"))
        _bill(row, result.receipt, len(result.pages))
        return row


def _row(
    source: str,
    status: str,
    *,
    sha256: str | None = None,
    item_id: str | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    # Empty strings, not None: every column keeps one type in the dataset's blocks.
    return {
        "source": source,
        "status": status,
        "sha256": sha256 or "",
        "item_id": item_id or "",
        "cpu_s": 0.0,
        "usd": 0.0,
        "pictures": 0,
        "features": "{}",
        "error": json.dumps(error) if error else "",
        "result": "",
        "worker": "",
        "wall_s": 0.0,
    }


def _bill(row: dict[str, Any], receipt: Any, pictures: int) -> None:
    row["cpu_s"] = receipt.cpu_seconds
    row["usd"] = receipt.cost_usd
    row["pictures"] = pictures
    row["features"] = json.dumps(features_of(receipt, max(1, pictures)))


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def sweep_orphan_faces(service: SearchService, tenant_id: str, collection_id: str, digests: set[str]) -> int:
    """Erase the sightings a killed worker stored for a file it never finished: faces of the job's files (by
    content hash) in the collection the job identified against, not enrolled, that no item links to.

    Faces are kept (and identified) while a file is analysed, before its item is written; a worker killed in
    between leaves them behind, and the file's retry stores its own. Run once every file of the job is done (a
    retry may still be writing before that), and not beside another index run into the same collection, whose
    files in flight have faces without items too. Returns how many were erased."""
    if not digests:
        return 0
    candidates = [
        face.id
        for face in service.store.list_faces(tenant_id, collection_id=collection_id)
        if not face.enrolled and face.source_sha256 in digests
    ]
    erased = 0
    for face_id in sorted(service.items.unlinked_faces(tenant_id, candidates)):
        with contextlib.suppress(NotFoundError):
            service.gallery.delete_face(tenant_id, face_id)
            erased += 1
    return erased
