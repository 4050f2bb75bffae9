"""What every part of the face gallery shares: the store, the models, the thresholds, the lock, the per-tenant
vector indexes kept in step with the store, and the steps from a picture to a stored face (decode, detect and
embed, crop, insert). `FaceGallery` is this plus one mixin per idea (identify, compare, corrections, clusters,
erasure)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError, InvalidRequestError
from frugalsense.faces.fusion import RUNGS, FaceFusion, IdentifyLadder, load_fusion
from frugalsense.faces.index import VectorIndex
from frugalsense.faces.profile import FaceProfile, load_face_profile
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame, Source
from frugalsense.results import Box, Face
from frugalsense.store.base import FaceRecord, NewFace, Store
from frugalsense.store.files import private_folder, private_replace
from frugalsense.store.sqlite import new_id

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer
    from frugalsense.settings import Settings

__all__ = [
    "SECOND_MODEL",
    "GalleryBase",
    "check_threshold",
    "checked_profile",
    "decode_first",
    "pick_face",
    "verification_ladder",
]

#: the model the identification ladder climbs to; its embedding of every enrolled face is stored at enrolment
SECOND_MODEL = "dlib-resnet"
_CROP_MAX_SIDE = 160


class GalleryBase:
    """The gallery's state and the internals its parts share. Thread-safe."""

    def __init__(
        self,
        store: Store,
        analyzer: Analyzer,
        profile: FaceProfile | None = None,
        *,
        keep_crops: bool | None = None,
    ) -> None:
        self.store = store
        self.analyzer = analyzer
        self.settings = analyzer.settings
        self.profile = checked_profile(analyzer, profile)
        # Its 1:N side decides around this gallery's identify threshold.
        self.fusion: FaceFusion | None = verification_ladder(analyzer, self.profile.identify_threshold)
        # The 1:N side: probes whose best SFace score is in the calibrated band are re-scored with dlib.
        self.identify_ladder: IdentifyLadder | None = self.fusion.identify if self.fusion is not None else None
        self.model = analyzer.pipeline.face_embedder
        self.keep_crops = self.settings.keep_face_crops if keep_crops is None else keep_crops
        self.crops_dir = self.settings.data_dir / "crops"
        if self.crops_dir.is_dir():
            private_folder(self.crops_dir)  # an older version left it readable by others
        #: faces deleted per transaction when a collection is erased (the locks are free between chunks)
        self.erase_chunk = self.settings.erase_chunk_faces
        #: how many times each tenant's face index was loaded from the store (once, unless its faces changed
        #: in another process)
        self.index_loads: Counter[str] = Counter()
        # A lock per tenant orders every write with its index update, so a concurrent delete cannot resurrect a
        # face; no tenant waits for another's (a 20,000-face erasure goes on beside other tenants' identify).
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._indexes: dict[str, VectorIndex] = {}

    def _lock(self, tenant_id: str) -> threading.RLock:
        """The tenant's lock (made on first use)."""
        with self._locks_guard:
            lock = self._locks.get(tenant_id)
            if lock is None:
                lock = self._locks[tenant_id] = threading.RLock()
            return lock

    def _index(self, tenant_id: str) -> VectorIndex:
        """The tenant's index, loaded on first use and again only when its faces changed in another process
        (its face version moved without this gallery): other tenants' writes never reload it."""
        with self._lock(tenant_id):
            version = self.store.face_version(tenant_id)
            index = self._indexes.get(tenant_id)
            if index is None or index.version != version:
                index = VectorIndex.from_vectors(self.store.face_vectors(tenant_id, self.model))
                index.version = version
                self._load_negatives(tenant_id, index)
                self._indexes[tenant_id] = index
                self.index_loads[tenant_id] += 1
            return index

    def _changed(self, tenant_id: str, writes: int = 1) -> VectorIndex | None:
        """After this gallery's ``writes`` store writes to the tenant's faces (each moves its face version by one),
        under the lock: the loaded index to mirror them in, or None when none is loaded or another process wrote
        too (the index is dropped, and reloads on next use)."""
        index = self._indexes.get(tenant_id)
        if index is None:
            return None
        version = self.store.face_version(tenant_id)
        if version != index.version + writes:
            del self._indexes[tenant_id]
            return None
        index.version = version
        return index

    def _load_negatives(self, tenant_id: str, index: VectorIndex) -> None:
        negatives: dict[str, set[str]] = {}
        for correction in self.store.list_corrections(tenant_id, "is_not"):
            negatives.setdefault(correction.face_id, set()).add(correction.person_id)
        index.negatives = negatives

    def _decode(self, source: Source, meter: Meter, name: str | None) -> tuple[Frame, str, str]:
        return decode_first(source, self.settings, meter, name)

    def _faces(self, frame: Frame, meter: Meter) -> list[Face]:
        return self.analyzer.faces(frame, meter)

    def _new_face(
        self,
        face: Face,
        sha256: str,
        source_name: str,
        *,
        collection_id: str | None,
        person_id: str | None,
        enrolled: bool = False,
        cluster_id: str | None = None,
    ) -> NewFace:
        assert face.embedding is not None
        face_id = new_id("face", 16)
        return NewFace(
            id=face_id,
            embedding=face.embedding,
            model=self.model,
            box=face.box,
            landmarks=face.landmarks,
            det_score=face.score,
            source_sha256=sha256,
            source_name=source_name,
            collection_id=collection_id,
            person_id=person_id,
            enrolled=enrolled,
            cluster_id=cluster_id,
        )

    def _insert(self, tenant_id: str, new: NewFace, crop: bytes | None) -> FaceRecord:
        """Store a face, then its crop, then index it; the caller holds the lock."""
        assert new.id is not None
        relative = f"crops/{tenant_id}/{new.id}.jpg" if crop is not None else None
        record = self.store.add_face(tenant_id, with_crop(new, relative))
        if crop is not None and relative is not None:
            # Written after the row commits: a crash in between leaves a face without a crop, never a crop
            # without a face (which erasure could not find). Private to the service's user, like every file.
            with private_replace(self.settings.data_dir / relative, durable=False) as handle:
                handle.write(crop)
        index = self._changed(tenant_id)
        if index is not None:
            index.add(
                record.id,
                record.embedding,
                collection_id=record.collection_id,
                person_id=record.person_id,
                enrolled=record.enrolled,
                cluster_id=record.cluster_id,
            )
        return record

    def _encode_crop(self, frame: Frame, box: Box) -> bytes | None:
        if not self.keep_crops:
            return None
        import cv2

        margin = 0.2 * max(box.w, box.h)
        x0, y0 = max(0, int(box.x - margin)), max(0, int(box.y - margin))
        x1, y1 = min(frame.width, int(box.x + box.w + margin)), min(frame.height, int(box.y + box.h + margin))
        if x1 <= x0 or y1 <= y0:
            return None
        crop: npt.NDArray[Any] = frame.pixels[y0:y1, x0:x1, ::-1]
        scale = _CROP_MAX_SIDE / max(crop.shape[:2])
        if scale < 1:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(crop), [cv2.IMWRITE_JPEG_QUALITY, 85])
        return bytes(buffer) if ok else None

    def _tenant_crops(self, tenant_id: str) -> Path:
        return self.crops_dir / tenant_id

    def _second_embedding(self, frame: Frame, face: Face, meter: Meter) -> npt.NDArray[np.float32]:
        vectors = self.analyzer.zoo.get(SECOND_MODEL).predict([(frame.bgr(), face)], meter)
        return np.asarray(vectors[0], np.float32)


def checked_profile(analyzer: Analyzer, profile: FaceProfile | None = None) -> FaceProfile:
    """The face thresholds (the user's profile folder, else shipped), refused when calibrated for another
    embedder than the analyzer's."""
    chosen = profile or load_face_profile(analyzer.settings.profile_dir)
    model = analyzer.pipeline.face_embedder
    if chosen.model != model:
        raise ConfigurationError(
            f"the face profile was calibrated for {chosen.model!r} but faces are embedded with "
            f"{model!r}; run bench/calibrate_faces.py --embedder {model}"
        )
    return chosen


def verification_ladder(analyzer: Analyzer, identify_threshold: float) -> FaceFusion | None:
    """The SFace -> dlib verification ladder (``faces-verify`` profile), only for the embedder it was calibrated
    on; None otherwise."""
    if analyzer.pipeline.face_embedder != RUNGS[0]:
        return None
    return load_fusion(analyzer.settings.profile_dir, identify_threshold=identify_threshold)


def decode_first(source: Source, settings: Settings, meter: Meter, name: str | None) -> tuple[Frame, str, str]:
    """The first picture of `source`, its name and digest. Galleries work on photos: the first page of a document
    or the first sampled video frame, the only picture decoded (first_only), so a long document costs one page."""
    from frugalsense.media import load

    with meter.stage("decode"):
        decoded = load(source, settings, name=name, first_only=True)
        first = decoded.frames[0] if decoded.frames else None
    if first is None:
        raise InvalidRequestError(f"{decoded.name} has no picture ({decoded.kind}); send a photo")
    return first, decoded.name, decoded.sha256


def with_crop(new: NewFace, crop_path: str | None) -> NewFace:
    return replace(new, crop_path=crop_path)


def check_threshold(threshold: float | None, default: float) -> float:
    if threshold is None:
        return default
    if not -1.0 <= threshold <= 1.0:
        raise InvalidRequestError(f"threshold is a cosine similarity between -1 and 1, got {threshold}")
    return float(threshold)


def pick_face(
    faces: Sequence[Face],
    face_index: int | None,
    source_name: str,
    *,
    largest: bool = False,
    label: str = "",
    option: str = "face_index",
) -> Face:
    what = label or source_name
    if not faces:
        raise InvalidRequestError(f"no face found in {what}; send a photo where the face is clear and frontal")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise InvalidRequestError(
                f"{option} {face_index} is out of range: {what} has {len(faces)} face(s), 0 to {len(faces) - 1}"
            )
        return faces[face_index]
    if len(faces) == 1:
        return faces[0]
    if largest:
        return max(faces, key=lambda f: f.box.w * f.box.h)
    listing = "; ".join(
        f"{i}: box x={f.box.x:.0f} y={f.box.y:.0f} w={f.box.w:.0f} h={f.box.h:.0f} score={f.score:.2f}"
        for i, f in enumerate(faces)
    )
    raise InvalidRequestError(f"{what} shows {len(faces)} faces; choose one with face_index ({listing})")
