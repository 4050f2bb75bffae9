"""Ingest: analyse photos, scans, PDFs, recordings and videos through the Analyzer and store what was found.

Each file becomes one item: its source, content hash, capture time, modality, the analysis (labels, text read,
transcript, moderation), its faces (identified against a collection by the face gallery, so each is a person or
joins an unknown-face cluster), a semantic vector per picture and per stretch of speech, and its words in the
full-text index. A file whose content and encoder are unchanged is skipped; a changed one replaces its record.

    from frugalsense.search import SearchService
    service = SearchService.open(Settings())
    summary = service.indexer.index_paths(tenant_id, ["photos/"])
    summary.counts
    # {'added': 120, 'updated': 0, 'unchanged': 0, 'failed': 1, 'removed': 0}
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from frugalsense.analyze import Analyzer, default_features
from frugalsense.errors import FrugalsenseError, InvalidRequestError, NotFoundError
from frugalsense.faces.gallery import FaceGallery
from frugalsense.faces.results import IdentifiedFace
from frugalsense.ledger import CostReceipt, Meter
from frugalsense.media.phash import photo_hash
from frugalsense.media.types import Decoded, Frame
from frugalsense.results import AnalysisResult, Face, PageResult, Transcript
from frugalsense.search.encoders import ImageEncoder, page_vector
from frugalsense.search.index import IndexCache
from frugalsense.search.sources import read_file, walk
from frugalsense.search.thumbnails import Thumbnails, make_thumbnail
from frugalsense.search.video_faces import SPAN_GAP_INTERVALS, FaceSighting, face_rank, face_tracks, seen_spans
from frugalsense.store.base import SearchStore
from frugalsense.store.items import Item, NewItem

__all__ = ["IndexOutcome", "IndexSummary", "Indexer"]

Status = Literal["added", "updated", "unchanged", "failed", "removed"]

#: labels below this probability are not recorded (the top five always include some near-zero guesses)
LABEL_MIN_SCORE = 0.05
#: seconds of speech per transcript vector: long enough for a topic, short enough to point at a moment
SPEECH_WINDOW_S = 30.0


@dataclass(frozen=True)
class IndexOutcome:
    """What happened to one file."""

    source: str
    status: Status
    item_id: str | None = None
    modality: str | None = None
    error: str | None = None
    error_code: str | None = None
    receipt: CostReceipt | None = None
    duration_s: float | None = None  # of the audio track, for throughput in audio minutes
    pictures: int = 0  # pages or sampled frames analysed (what a cloud would bill each feature for)
    sha256: str | None = None  # of the file's content, once it was read

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "status": self.status, "item_id": self.item_id}
        if self.modality:
            out["modality"] = self.modality
        if self.error:
            out["error"] = {"code": self.error_code, "message": self.error}
        if self.receipt is not None:
            out["receipt"] = self.receipt.to_dict()
        return out


@dataclass
class IndexSummary:
    """A run over many files: every outcome, counts by status, and the CPU they used."""

    outcomes: list[IndexOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("added", "updated", "unchanged", "failed", "removed"), 0)
        for outcome in self.outcomes:
            counts[outcome.status] += 1
        return counts

    @property
    def cpu_seconds(self) -> float:
        return sum(o.receipt.cpu_seconds for o in self.outcomes if o.receipt is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "wall_seconds": round(self.wall_s, 3),
            "failed": [o.to_dict() for o in self.outcomes if o.status == "failed"],
        }


class Indexer:
    """Turns files into items. Thread-safe: `index_paths` runs several files at once."""

    def __init__(
        self,
        store: SearchStore,
        cache: IndexCache,
        analyzer: Analyzer,
        gallery: FaceGallery,
        encoder: ImageEncoder,
        thumbnails: Thumbnails | None = None,
    ) -> None:
        self.store, self.cache, self.analyzer, self.gallery, self.encoder = (
            store,
            cache,
            analyzer,
            gallery,
            encoder,
        )
        self.settings = analyzer.settings
        self.thumbnails = thumbnails or Thumbnails(self.settings.data_dir)
        self._collections: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- many files -----------------------------------------------------------------------------------------

    def index_paths(
        self,
        tenant_id: str,
        paths: Sequence[str | os.PathLike[str]],
        *,
        workers: int | None = None,
        prune: bool = False,
        force: bool = False,
        collection_id: str | None = None,
        progress: Callable[[IndexOutcome], None] | None = None,
    ) -> IndexSummary:
        """Index files and folders (walked recursively), ``workers`` files at a time (default: the setting).

        Finished files are committed one by one, so an interrupted run picks up where it stopped. With ``prune``,
        items under the given folders whose file is gone are deleted.
        """
        started = time.perf_counter()
        files = list(walk(paths))
        summary = IndexSummary()
        count = workers or self.settings.index_workers

        def one(path: Path) -> IndexOutcome:
            try:
                outcome = self.index_source(tenant_id, path, force=force, collection_id=collection_id)
            except Exception as exc:  # one unreadable file must not end a run over thousands
                outcome = IndexOutcome(
                    str(path), "failed", error=f"{type(exc).__name__}: {exc}", error_code="internal"
                )
            if progress is not None:
                progress(outcome)
            return outcome

        if count <= 1:
            summary.outcomes = [one(p) for p in files]
        else:
            with ThreadPoolExecutor(count, thread_name_prefix="index") as pool:
                summary.outcomes = list(pool.map(one, files))
        if prune:
            present = {str(p) for p in files}
            removed = 0
            for folder in (Path(p).resolve() for p in paths):
                if not folder.is_dir():
                    continue
                for source, item_id in self.store.sources(tenant_id, str(folder) + os.sep).items():
                    if source not in present and not Path(source).exists():
                        self.delete(tenant_id, item_id, purge=False)
                        summary.outcomes.append(IndexOutcome(source, "removed", item_id))
                        removed += 1
            if removed:
                self.purge()  # once for the whole run: each purge rewrites the full-text index
        self.cache.snapshot(tenant_id, self.encoder.name)
        summary.wall_s = time.perf_counter() - started
        return summary

    # -- one file -------------------------------------------------------------------------------------------

    def index_source(
        self,
        tenant_id: str,
        source: str | os.PathLike[str] | bytes,
        *,
        name: str | None = None,
        source_key: str | None = None,
        captured_at: str | None = None,
        force: bool = False,
        collection_id: str | None = None,
    ) -> IndexOutcome:
        """Index one file (a path) or upload (bytes). Input problems come back as a "failed" outcome.

        A path's item is keyed by its absolute path and dated by its modification time; an upload's by
        ``source_key`` (default: its content hash) and ``captured_at`` (default: now).
        """
        try:
            # Checked before any work: a key or name past its limit would be stored and listed with every item.
            limits = self.store.limits
            if source_key is not None:
                limits.source(source_key)
            if name is not None:
                limits.name(name, "item")
            if isinstance(source, bytes):
                data = source
                digest = hashlib.sha256(data).hexdigest()
                key = source_key or f"upload:{digest}"
                when = captured_at or _iso(time.time())
                label = name or key
            else:
                path = Path(os.fspath(source)).resolve()
                key, label = limits.source(source_key or str(path)), name or path.name[: limits.name_chars]
                data, when = (
                    read_file(path, self.settings.max_upload_bytes),
                    captured_at or _iso(path.stat().st_mtime),
                )
                digest = hashlib.sha256(data).hexdigest()
        except FrugalsenseError as exc:
            return IndexOutcome(_shown(source, source_key), "failed", error=str(exc), error_code=exc.code)
        existing = self.store.find_source(tenant_id, key)
        if (
            existing is not None
            and not force
            and (existing.sha256, existing.encoder) == (digest, self.encoder.name)
        ):
            if existing.modality != "audio" and (
                existing.phash is None or not self.thumbnails.exists(tenant_id, existing.id)
            ):
                self._refresh_picture(tenant_id, existing, data)
            return IndexOutcome(key, "unchanged", existing.id, existing.modality, sha256=digest)
        replaced = existing.id if existing is not None else None
        try:
            return self._index(tenant_id, data, key, label, when, digest, collection_id, replaced)
        except (FrugalsenseError, OSError) as exc:
            code = getattr(exc, "code", "io_error")
            return IndexOutcome(key, "failed", error=str(exc), error_code=code, sha256=digest)

    def _refresh_picture(self, tenant_id: str, item: Item, data: bytes) -> None:
        """What an unchanged file's item lacks from its first picture: the picture hash (stored before the hash
        changed, store migration m006) and the thumbnail (indexed before thumbnails were kept). Only the first
        picture is decoded again; nothing is analysed."""
        from frugalsense.media import load

        with contextlib.suppress(FrugalsenseError, OSError):
            frames = load(data, self.settings, first_only=True).frames
            if not frames:
                return
            if item.phash is None:
                self.store.set_phash(tenant_id, item.id, int(photo_hash(frames[0].pixels)))
            if not self.thumbnails.exists(tenant_id, item.id):
                self.thumbnails.save(tenant_id, item.id, make_thumbnail(frames[0]))

    def delete(self, tenant_id: str, item_id: str, *, purge: bool = True) -> list[str]:
        """Delete an item with its thumbnail, vectors (its vector file goes at once), text, labels and faces
        (erased through the gallery). With ``purge`` its words also leave the full-text index's bytes (see
        `purge`)."""
        encoder = self.store.get_item(tenant_id, item_id).encoder
        # The file before the row: a crash in between leaves an item without its thumbnail, never the reverse.
        self.thumbnails.remove(tenant_id, item_id)
        outcome = self.cache.write(tenant_id, encoder, lambda: self.store.delete_item(tenant_id, item_id))
        self._erase_faces(tenant_id, outcome.replaced_faces)
        if purge:
            self.purge()
        else:
            self.store.checkpoint()
        return outcome.replaced_faces

    def purge(self) -> None:
        """Take the words of deleted items out of the database file: merge the full-text index (SQLite 3.40
        keeps them in older segments until a merge) and empty the write-ahead log."""
        self.store.purge_deleted_text()
        self.store.checkpoint()

    def _index(
        self,
        tenant_id: str,
        data: bytes,
        key: str,
        label: str,
        when: str,
        digest: str,
        collection_id: str | None,
        replaced: str | None,
    ) -> IndexOutcome:
        from frugalsense.media import load

        meter = Meter(self.settings.price_per_cpu_hour)
        with meter.stage("decode"):
            decoded = load(data, self.settings, name=label)
        features = [f for f in default_features(decoded.kind) if f != "faces"]
        if decoded.kind in ("image", "video"):
            features += [f for f in self.encoder.features if f not in features]
        collection = (collection_id or self._collection(tenant_id)) if _wants_faces(decoded) else None
        pictures = _Pictures()

        def on_page(number: int, frame: Frame, page: PageResult) -> None:
            # Everything the index needs from the pixels, while this page or frame is decoded: one pass.
            self._take_picture(tenant_id, decoded, collection, pictures, number, frame, page, meter)

        try:
            result = self.analyzer.analyze_decoded(decoded, features, meter, on_page=on_page)
            if decoded.kind == "video" and collection is not None:
                pictures.faces = self._video_faces(tenant_id, decoded, collection, pictures, meter)
            item = self._new_item(key, when, decoded, result, pictures, meter)
            if replaced is not None:
                self.thumbnails.remove(tenant_id, replaced)  # the record it replaces goes in the write below
            outcome = self.cache.write(tenant_id, self.encoder.name, lambda: self.store.put_item(tenant_id, item))
        except BaseException:
            self._erase_faces(tenant_id, pictures.stored)  # sightings of an item that was never written
            raise
        self._erase_faces(tenant_id, outcome.replaced_faces)
        assert outcome.item is not None
        if pictures.thumbnail is not None:
            # After the row commits, like a face's crop: a thumbnail is never without its item.
            self.thumbnails.save(tenant_id, outcome.item.id, pictures.thumbnail)
        audio = decoded.audio.duration_s if decoded.audio is not None else None
        status: Status = "updated" if replaced is not None else "added"
        return IndexOutcome(
            key,
            status,
            outcome.item.id,
            decoded.kind,
            receipt=meter.receipt,
            duration_s=audio,
            pictures=len(result.pages),
            sha256=digest,
        )

    def _take_picture(
        self,
        tenant_id: str,
        decoded: Decoded,
        collection: str | None,
        pictures: _Pictures,
        number: int,
        frame: Frame,
        page: PageResult,
        meter: Meter,
    ) -> None:
        """From one decoded picture: its vector, the first one's hash and thumbnail, and its faces (identified
        against the collection and kept as sightings; in a video only detected here, and grouped into tracks at the
        end)."""
        if number == 0:
            pictures.phash = int(photo_hash(frame.pixels))
            with meter.stage("thumbnail"):
                pictures.thumbnail = make_thumbnail(frame)
        with meter.stage("encode", self.encoder.name):
            vector = page_vector(self.encoder, frame, page, meter)
        if vector is not None:
            pictures.vectors.append((_part(decoded.kind, number, frame), vector))
        if collection is None:
            return
        faces = self.analyzer.faces(frame, meter)
        if decoded.kind == "video":
            pictures.seen.append((number, frame.time_s or 0.0, faces))
            return
        found = self._identify(tenant_id, collection, decoded, frame, faces, meter)
        pictures.stored += [f.face_id for f in found if f.face_id]
        pictures.faces[number] = [FaceSighting(f) for f in found]

    def _video_faces(
        self, tenant_id: str, decoded: Decoded, collection: str, pictures: _Pictures, meter: Meter
    ) -> dict[int, list[FaceSighting]]:
        """One sighting per person in a video, not one per sampled frame.

        The faces detected and embedded in every sampled frame (`pictures.seen`) are grouped into tracks with the
        gallery's identification threshold (`face_tracks`). Each track's best face (detection score, then size) is
        identified and stored, with the spans of time the track covers; only the frames holding those faces are
        decoded again.
        """
        tracks = face_tracks(pictures.seen, self.gallery.profile.identify_threshold)
        gap_s = SPAN_GAP_INTERVALS * self.settings.video_frame_interval_s
        best = [max(track, key=face_rank) for track in tracks]
        by_frame: dict[int, list[int]] = {}
        for number, chosen in enumerate(best):
            by_frame.setdefault(chosen.frame, []).append(number)
        out: dict[int, list[FaceSighting]] = {}
        for frame_number, numbers in sorted(by_frame.items()):
            faces = [best[n].face for n in numbers]
            found = self._identify(tenant_id, collection, decoded, decoded.frames[frame_number], faces, meter)
            pictures.stored += [f.face_id for f in found if f.face_id]
            for n, face in zip(numbers, found, strict=True):
                times = [t.time_s for t in tracks[n]]
                out.setdefault(frame_number, []).append(FaceSighting(face, seen_spans(times, gap_s), len(times)))
        return out

    def _identify(
        self, tenant_id: str, collection: str, decoded: Decoded, frame: Frame, faces: list[Face], meter: Meter
    ) -> list[IdentifiedFace]:
        """Identify and keep the faces the analyzer found in one of the item's frames (no second decode)."""
        found = self.gallery.identify_faces(
            tenant_id, collection, frame, faces, source_sha256=decoded.sha256, source_name=decoded.name
        )
        meter.receipt.merge(found.receipt)
        return found.faces

    def _collection(self, tenant_id: str) -> str:
        name = self.settings.search_collection
        with self._lock:
            cached = self._collections.get(tenant_id)
            if cached is not None:
                try:
                    return self.gallery.get_collection(tenant_id, cached).id
                except NotFoundError:
                    self._collections.pop(tenant_id, None)
            found = next((c for c in self.gallery.list_collections(tenant_id) if c.name == name), None)
            if found is None:
                try:
                    found = self.gallery.create_collection(tenant_id, name)
                except InvalidRequestError:  # another process created it just now
                    found = next(c for c in self.gallery.list_collections(tenant_id) if c.name == name)
            self._collections[tenant_id] = found.id
            return found.id

    def _new_item(
        self,
        key: str,
        when: str,
        decoded: Decoded,
        result: AnalysisResult,
        pictures: _Pictures,
        meter: Meter,
    ) -> NewItem:
        vectors = list(pictures.vectors)
        labels: dict[str, float] = {}
        nsfw: float | None = None
        flagged = False
        for page in result.pages:
            for lab in page.labels or []:
                if lab.score >= LABEL_MIN_SCORE:
                    labels[lab.name] = max(labels.get(lab.name, 0.0), lab.score)
            if page.moderation is not None:
                nsfw = max(nsfw or 0.0, page.moderation.nsfw)
                flagged = flagged or page.moderation.flagged
        if result.transcript is not None:
            windows = speech_windows(result.transcript)
            if windows:
                with meter.stage("encode", self.encoder.name, items=len(windows)):
                    matrix = self.encoder.encode_texts([text for _, text in windows], meter)
                vectors += [(part, row) for (part, _), row in zip(windows, matrix, strict=True)]
        faces = pictures.faces
        record = result.to_dict()
        for number, found in faces.items():
            record["pages"][number]["faces"] = [s.to_dict() for s in found]
        return NewItem(
            source=key,
            sha256=result.sha256,
            modality=decoded.kind,
            mime=decoded.mime,
            byte_size=decoded.byte_size,
            pages=len(decoded.frames),
            duration_s=decoded.audio.duration_s if decoded.audio is not None else None,
            captured_at=when,
            nsfw=nsfw,
            flagged=flagged,
            phash=pictures.phash,
            encoder=self.encoder.name,
            result=record,
            text="\n".join(p.full_text for p in result.pages),
            transcript=result.transcript.text if result.transcript is not None else "",
            labels=labels,
            faces=[(s.face.face_id, n + 1) for n, found in faces.items() for s in found if s.face.face_id],
            vectors=[(part, np.asarray(v, np.float32)) for part, v in vectors],
        )

    def _erase_faces(self, tenant_id: str, face_ids: Iterable[str]) -> None:
        for face_id in face_ids:
            # Already gone is fine: a person's erasure or a correction flow may have taken it.
            with contextlib.suppress(NotFoundError):
                self.gallery.delete_face(tenant_id, face_id)


def speech_windows(transcript: Transcript) -> list[tuple[str, str]]:
    """(part, text) for consecutive stretches of about ``SPEECH_WINDOW_S`` seconds of speech."""
    windows: list[tuple[str, str]] = []
    start: float | None = None
    texts: list[str] = []
    end = 0.0
    for segment in transcript.segments:
        if start is None:
            start = segment.start_s
        texts.append(segment.text.strip())
        end = segment.end_s
        if end - start >= SPEECH_WINDOW_S:
            windows.append((f"speech {start:.0f}-{end:.0f}s", " ".join(texts)))
            start, texts = None, []
    if texts and start is not None:
        windows.append((f"speech {start:.0f}-{end:.0f}s", " ".join(texts)))
    if not windows and transcript.text.strip():
        windows.append(("speech", transcript.text.strip()))
    return [(part, text) for part, text in windows if text.strip()]


@dataclass
class _Pictures:
    """What the index takes from an item's pictures in its one pass over them (see `Indexer._take_picture`)."""

    vectors: list[tuple[str, npt.NDArray[np.float32]]] = field(default_factory=list)
    phash: int | None = None
    #: the first picture's thumbnail (JPEG), written once the item is
    thumbnail: bytes | None = None
    #: sightings per picture number
    faces: dict[int, list[FaceSighting]] = field(default_factory=dict)
    #: a video's faces per sampled frame, before they are grouped into tracks
    seen: list[tuple[int, float, list[Face]]] = field(default_factory=list)
    #: ids of the faces stored so far, erased again if the item is never written
    stored: list[str] = field(default_factory=list)


def _wants_faces(decoded: Decoded) -> bool:
    return "faces" in default_features(decoded.kind) and bool(decoded.frames)


def _part(kind: str, number: int, frame: Frame) -> str:
    if kind == "video":
        return f"frame {frame.time_s or 0.0:.1f}s"
    if kind == "document":
        return f"page {frame.page or number + 1}"
    return "image"


def _shown(source: str | os.PathLike[str] | bytes, key: str | None) -> str:
    """How a failed outcome names its file: the key or path, cut short (an upload's bytes never)."""
    if key is not None:
        return key[:200]
    return "upload" if isinstance(source, bytes) else os.fspath(source)[:200]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
