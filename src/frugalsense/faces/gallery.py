"""Face galleries: enrol people, identify faces 1:N with an honest "unknown", learn from corrections, search back
through every face seen, group recurring strangers, and erase a person or a face completely.

Every method takes the tenant first and treats another tenant's ids as missing (``NotFoundError``). Calls that
look at a picture return the request's ``CostReceipt``.

    >>> from frugalsense import Analyzer, Settings
    >>> from frugalsense.store import SQLiteStore
    >>> settings = Settings(data_dir="/tmp/fs-gallery-demo")
    >>> gallery = FaceGallery(SQLiteStore.open(settings), Analyzer(settings))       # doctest: +SKIP
    >>> tenant = gallery.store.create_tenant("acme").id                             # doctest: +SKIP
    >>> staff = gallery.create_collection(tenant, "staff")                          # doctest: +SKIP
    >>> ada = gallery.create_person(tenant, staff.id, "Ada")                        # doctest: +SKIP
    >>> gallery.enrol(tenant, ada.id, "ada.jpg").face.id                            # doctest: +SKIP
    'face_...'
    >>> gallery.identify(tenant, staff.id, "door-camera.jpg").faces[0].decision     # doctest: +SKIP
    'per_...'
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ConfigurationError, InvalidRequestError, NotFoundError
from frugalsense.faces.calibration import FaceProfile
from frugalsense.faces.clusters import Cluster, average_linkage, nearest_cluster, reuse_cluster_ids
from frugalsense.faces.fusion import RUNGS, FaceFusion, IdentifyLadder, load_fusion
from frugalsense.faces.index import VectorIndex
from frugalsense.faces.results import (
    UNKNOWN,
    Candidate,
    CompareResult,
    CorrectionResult,
    EnrolResult,
    FaceMatch,
    IdentifiedFace,
    IdentifyResult,
    SearchResult,
)
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame, Source
from frugalsense.results import Box, Face
from frugalsense.store.base import Collection, Erased, FaceRecord, NewFace, Person, Store
from frugalsense.store.files import private_folder, private_replace
from frugalsense.store.sqlite import ERASE_CHUNK, new_id

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = ["FaceGallery", "Source", "decide"]

#: unknown faces re-clustered at once (the similarity matrix is n x n float32: 36 MB at 3,000)
RECLUSTER_MAX = 3000
#: the model the identification ladder climbs to; its embedding of every enrolled face is stored at enrolment
SECOND_MODEL = "dlib-resnet"
_CROP_MAX_SIDE = 160


def decide(scores: Sequence[tuple[str, float]], *, threshold: float, margin: float) -> tuple[str | None, float]:
    """The person a face is, or None for unknown, from per-person scores sorted best first.

    A name needs the best score at or above ``threshold`` and ``margin`` clear of the second-best person: two
    people both resembling the face is a reason for "unknown", not for a coin toss.

        >>> decide([("per_a", 0.62), ("per_b", 0.30)], threshold=0.4, margin=0.05)
        ('per_a', 0.62)
        >>> decide([("per_a", 0.62), ("per_b", 0.60)], threshold=0.4, margin=0.05)
        (None, 0.62)
    """
    if not scores:
        return None, 0.0
    best_person, best = scores[0]
    runner_up = scores[1][1] if len(scores) > 1 else -1.0
    if best >= threshold and best - runner_up >= margin:
        return best_person, best
    return None, best


class FaceGallery:
    """Galleries of people per tenant, over a `Store` and the analyzer's face models. Thread-safe."""

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
        self.profile = profile or FaceProfile.load()
        # SFace -> dlib verification ladder (faces-verify profile); only for the embedder it was calibrated on.
        self.fusion: FaceFusion | None = load_fusion(self.settings.profile_dir)
        if analyzer.pipeline.face_embedder != RUNGS[0]:
            self.fusion = None
        # The 1:N side: probes whose best SFace score is in the calibrated band are re-scored with dlib.
        self.identify_ladder: IdentifyLadder | None = self.fusion.identify if self.fusion is not None else None
        self.model = analyzer.pipeline.face_embedder
        if self.profile.model != self.model:
            raise ConfigurationError(
                f"the face profile was calibrated for {self.profile.model!r} but faces are embedded with "
                f"{self.model!r}; run bench/calibrate_faces.py --embedder {self.model}"
            )
        self.keep_crops = self.settings.keep_face_crops if keep_crops is None else keep_crops
        self.crops_dir = self.settings.data_dir / "crops"
        if self.crops_dir.is_dir():
            private_folder(self.crops_dir)  # an older version left it readable by others
        #: faces deleted per transaction when a collection is erased (the locks are free between chunks)
        self.erase_chunk = ERASE_CHUNK
        #: how many times each tenant's face index was loaded from the store (once, unless its faces changed
        #: in another process)
        self.index_loads: Counter[str] = Counter()
        # One lock orders every write with its index update, so a concurrent delete cannot resurrect a face.
        self._lock = threading.RLock()
        self._indexes: dict[str, VectorIndex] = {}
        # Erasures a crash interrupted are finished before anything else.
        for tenant_id, collection_id in store.erasing_collections():
            self._erase_collection(tenant_id, collection_id, None)

    # -- collections and persons ----------------------------------------------------------------------------

    def create_collection(self, tenant_id: str, name: str) -> Collection:
        return self.store.create_collection(tenant_id, name)

    def list_collections(self, tenant_id: str) -> list[Collection]:
        return self.store.list_collections(tenant_id)

    def get_collection(self, tenant_id: str, collection_id: str) -> Collection:
        return self.store.get_collection(tenant_id, collection_id)

    def delete_collection(
        self, tenant_id: str, collection_id: str, *, progress: Callable[[Erased], None] | None = None
    ) -> Erased:
        """Erase a collection with its persons and every face enrolled in or identified against it.

        The collection and everything in it disappear at once; its faces are then deleted ``erase_chunk`` at a
        time, and between chunks no lock is held, so other tenants' work goes on during a large erasure.
        ``progress`` is told what went so far after each chunk. A crash part-way leaves the collection hidden;
        deleting it again (or the next start) finishes the erasure.
        """
        with self._lock:
            self.store.begin_collection_erasure(tenant_id, collection_id)
            index = self._changed(tenant_id)
            if index is not None:
                index.remove_collection(collection_id)
        return self._erase_collection(tenant_id, collection_id, progress)

    def _erase_collection(
        self, tenant_id: str, collection_id: str, progress: Callable[[Erased], None] | None
    ) -> Erased:
        """The chunks of a begun collection erasure, each under the lock, none held in between."""
        erased = Erased()
        while not erased.collections:
            with self._lock:
                try:
                    chunk = self.store.erase_collection_chunk(
                        tenant_id, collection_id, self.erase_chunk, lambda ids: self._unlink_crops(tenant_id, ids)
                    )
                except NotFoundError:
                    break  # begun, so gone: another process finished this erasure meanwhile
                self._after_erase(tenant_id, chunk)
            erased = erased.plus(chunk)
            if progress is not None:
                progress(erased)
            time.sleep(0.001)  # let a thread waiting for the lock take it before the next chunk
        self.store.checkpoint()
        return erased

    def create_person(
        self, tenant_id: str, collection_id: str, name: str, metadata: Mapping[str, Any] | None = None
    ) -> Person:
        return self.store.create_person(tenant_id, collection_id, name, metadata)

    def get_person(self, tenant_id: str, person_id: str) -> Person:
        return self.store.get_person(tenant_id, person_id)

    def list_persons(self, tenant_id: str, collection_id: str | None = None) -> list[Person]:
        return self.store.list_persons(tenant_id, collection_id)

    def delete_person(self, tenant_id: str, person_id: str) -> Erased:
        """Erase a person: their enrolled faces, the sightings identified as them, embeddings, crops and
        corrections. Sightings never attributed to them cannot be told apart from strangers and stay."""
        with self._lock:
            self.store.get_person(tenant_id, person_id)
            doomed = self.store.list_faces(tenant_id, person_id=person_id)
            self._unlink_crops(tenant_id, [f.id for f in doomed])
            return self._after_erase(tenant_id, self.store.delete_person(tenant_id, person_id))

    # -- faces ----------------------------------------------------------------------------------------------

    def get_face(self, tenant_id: str, face_id: str) -> FaceRecord:
        return self.store.get_face(tenant_id, face_id)

    def list_faces(
        self, tenant_id: str, *, person_id: str | None = None, cluster_id: str | None = None
    ) -> list[FaceRecord]:
        if person_id is not None:
            self.store.get_person(tenant_id, person_id)
        return self.store.list_faces(tenant_id, person_id=person_id, cluster_id=cluster_id)

    def delete_face(self, tenant_id: str, face_id: str) -> Erased:
        with self._lock:
            self.store.get_face(tenant_id, face_id)
            self._unlink_crops(tenant_id, [face_id])
            return self._after_erase(tenant_id, self.store.delete_face(tenant_id, face_id))

    def erase_tenant(self, tenant_id: str, *, progress: Callable[[Erased], None] | None = None) -> Erased:
        """Erase a tenant and everything it owns: keys, collections, persons, faces and crops. Its faces go
        ``erase_chunk`` at a time, with no lock held between chunks (``progress`` is told what went so far after
        each), then the rest at once."""
        self.store.get_tenant(tenant_id)
        erased = Erased()
        while True:
            with self._lock:
                chunk = self.store.erase_tenant_faces(
                    tenant_id, self.erase_chunk, lambda ids: self._unlink_crops(tenant_id, ids)
                )
                if chunk.face_ids:
                    self._after_erase(tenant_id, chunk)
            if not chunk.face_ids:
                break
            erased = erased.plus(chunk)
            if progress is not None:
                progress(erased)
            time.sleep(0.001)  # let a thread waiting for the lock take it before the next chunk
        with self._lock:
            shutil.rmtree(self._tenant_crops(tenant_id), ignore_errors=True)
            erased = erased.plus(self.store.delete_tenant(tenant_id))
            shutil.rmtree(self._tenant_crops(tenant_id), ignore_errors=True)
            self._indexes.pop(tenant_id, None)
            self.index_loads.pop(tenant_id, None)
        return erased

    def enrol(
        self,
        tenant_id: str,
        person_id: str,
        source: Source,
        *,
        face_index: int | None = None,
        name: str | None = None,
    ) -> EnrolResult:
        """Add a reference face for a person. The picture must show exactly one face, or ``face_index`` must
        pick one of those found (0-based, in detection order; the error lists them)."""
        person = self.store.get_person(tenant_id, person_id)
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, decoded_name, sha256 = self._decode(source, meter, name)
        faces = self._faces(frame, meter)
        face = _pick_face(faces, face_index, decoded_name)
        assert face.embedding is not None
        new = self._new_face(
            face, sha256, decoded_name, collection_id=person.collection_id, person_id=person.id, enrolled=True
        )
        crop = self._encode_crop(frame, face.box)
        # dlib's embedding too, so that probes in the identification ladder's band can climb to it later
        second = self._second_embedding(frame, face, meter) if self.identify_ladder is not None else None
        with meter.stage("store"), self._lock:
            record = self._insert(tenant_id, new, crop)
            if second is not None:
                self.store.add_face_embedding(tenant_id, record.id, SECOND_MODEL, second)
        return EnrolResult(
            person=self.store.get_person(tenant_id, person_id),
            face=record,
            faces_found=len(faces),
            receipt=meter.receipt,
        )

    def identify(
        self,
        tenant_id: str,
        collection_id: str,
        source: Source,
        *,
        top_k: int = 3,
        threshold: float | None = None,
        keep: bool = True,
        name: str | None = None,
    ) -> IdentifyResult:
        """Who is each face in the picture, among the collection's persons: a person id, or ``"unknown"``.

        Every face is kept as a sighting (for search and clustering) unless ``keep`` is False.
        """
        limit = self._identify_limit(tenant_id, collection_id, top_k, threshold)
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, decoded_name, sha256 = self._decode(source, meter, name)
        faces = self._faces(frame, meter)
        return self._identify(
            tenant_id, collection_id, frame, faces, sha256, decoded_name, limit, top_k, threshold, keep, meter
        )

    def identify_faces(
        self,
        tenant_id: str,
        collection_id: str,
        frame: Frame,
        faces: Sequence[Face],
        *,
        source_sha256: str,
        source_name: str,
        top_k: int = 3,
        threshold: float | None = None,
        keep: bool = True,
    ) -> IdentifyResult:
        """`identify` for faces already detected and embedded in a decoded `frame` (by the analyzer's face
        models), e.g. the chosen frames of a video: nothing is decoded or detected again. The receipt covers
        only the matching, climbing and storing."""
        limit = self._identify_limit(tenant_id, collection_id, top_k, threshold)
        if any(face.embedding is None for face in faces):
            raise InvalidRequestError("identify_faces needs faces with identity embeddings (Analyzer.faces)")
        meter = Meter(self.settings.price_per_cpu_hour)
        return self._identify(
            tenant_id,
            collection_id,
            frame,
            list(faces),
            source_sha256,
            source_name,
            limit,
            top_k,
            threshold,
            keep,
            meter,
        )

    def _identify_limit(self, tenant_id: str, collection_id: str, top_k: int, threshold: float | None) -> float:
        """Check an identification's arguments; the threshold it decides with."""
        self.store.get_collection(tenant_id, collection_id)
        if not 1 <= top_k <= 100:
            raise InvalidRequestError(f"top_k must be between 1 and 100, got {top_k}")
        return _check_threshold(threshold, self.profile.identify_threshold)

    def _identify(
        self,
        tenant_id: str,
        collection_id: str,
        frame: Frame,
        faces: list[Face],
        sha256: str,
        decoded_name: str,
        limit: float,
        top_k: int,
        threshold: float | None,
        keep: bool,
        meter: Meter,
    ) -> IdentifyResult:
        identified: list[IdentifiedFace] = []
        with meter.stage("match", items=max(1, len(faces))):
            index = self._index(tenant_id)
            scored = [self._scores(index, face, collection_id, limit, top_k) for face in faces]
        # The ladder: only faces whose best score SFace is unsure of climb to dlib (not with a caller's threshold).
        climbed = [
            self._climb(tenant_id, frame, face, kept, top_k, meter) if threshold is None else (kept, False)
            for face, (kept, _) in zip(faces, scored, strict=True)
        ]
        with meter.stage("match", items=max(1, len(faces)), note="decide"):
            decisions = [
                self._decide(tenant_id, kept, excluded, limit, top_k, up)
                for (kept, up), (_, excluded) in zip(climbed, scored, strict=True)
            ]
        if keep and faces:
            with meter.stage("store", items=len(faces)), self._lock:
                index = self._index(tenant_id)
                used_clusters: list[str] = []
                for face, (decision, candidates, excluded, up) in zip(faces, decisions, strict=True):
                    assert face.embedding is not None
                    cluster = None
                    if decision is None:
                        cluster = nearest_cluster(
                            index,
                            face.embedding,
                            link_threshold=self.profile.cluster_threshold,
                            mean_threshold=self.profile.identify_threshold,
                            avoid=used_clusters,
                        ) or new_id("clu")
                        used_clusters.append(cluster)
                    new = self._new_face(
                        face,
                        sha256,
                        decoded_name,
                        collection_id=collection_id,
                        person_id=decision,
                        cluster_id=cluster,
                    )
                    record = self._insert(tenant_id, new, self._encode_crop(frame, face.box))
                    identified.append(_identified(face, decision, candidates, excluded, up, record.id, cluster))
        else:
            identified = [_identified(face, *d, None, None) for face, d in zip(faces, decisions, strict=True)]
        return IdentifyResult(
            collection_id=collection_id,
            source_name=decoded_name,
            source_sha256=sha256,
            threshold=limit,
            faces=identified,
            receipt=meter.receipt,
        )

    def _scores(
        self, index: VectorIndex, face: Face, collection_id: str, threshold: float, top_k: int
    ) -> tuple[list[tuple[str, float]], list[str]]:
        """Score persons for one face (best first) and drop those its corrections rule out."""
        assert face.embedding is not None
        vector = face.embedding
        # Only the best few persons matter (top_k, and the runner-up for the margin), plus room for persons
        # that "is not" corrections may strike out; scoring every person would cost O(persons) Python.
        ruled_out_persons = {p for persons in index.negatives.values() for p in persons}
        limit = max(top_k, 2) + len(ruled_out_persons)
        scores = index.person_scores(vector, collection_id=collection_id, limit=limit)
        excluded = set(self._ruled_out(index, vector, dict(scores), threshold))
        kept = [(p, s) for p, s in scores if p not in excluded]
        return kept, sorted(excluded)

    def _climb(
        self, tenant_id: str, frame: Frame, face: Face, kept: list[tuple[str, float]], top_k: int, meter: Meter
    ) -> tuple[list[tuple[str, float]], bool]:
        """Re-score the top persons with the fused SFace + dlib score when the best SFace score is in the band.

        A person's dlib similarity is the best over their faces that have a stored dlib embedding (enrolled
        since the ladder was shipped); a person without one keeps the SFace score.
        """
        ladder = self.identify_ladder
        if ladder is None or not kept or not ladder.climbs(kept[0][1]):
            return kept, False
        top = kept[: max(top_k, 2)]
        with meter.stage("match", note="stored dlib embeddings of the top persons"):
            stored = self.store.person_embeddings(tenant_id, [p for p, _ in top], SECOND_MODEL)
        if not stored:
            return kept, False
        probe = self._second_embedding(frame, face, meter)
        with meter.stage("match", note="fused re-score"):
            rescored = [
                (p, ladder.rescore(s, float(np.max(stored[p] @ probe))) if p in stored else s) for p, s in top
            ]
            merged = sorted(rescored + kept[len(top) :], key=lambda ps: -ps[1])
        return merged, True

    def _decide(
        self,
        tenant_id: str,
        kept: list[tuple[str, float]],
        excluded: list[str],
        threshold: float,
        top_k: int,
        climbed: bool,
    ) -> tuple[str | None, list[Candidate], list[str], bool]:
        decision, _ = decide(kept, threshold=threshold, margin=self.profile.margin)
        persons = self.store.get_persons(tenant_id, [p for p, _ in kept[:top_k]])
        candidates = [Candidate(p, persons[p].name, s) for p, s in kept[:top_k] if p in persons]
        return decision, candidates, excluded, climbed

    def _second_embedding(self, frame: Frame, face: Face, meter: Meter) -> npt.NDArray[np.float32]:
        vectors = self.analyzer.zoo.get(SECOND_MODEL).predict([(frame.bgr(), face)], meter)
        return np.asarray(vectors[0], np.float32)

    def _second_from_crop(self, tenant_id: str, face_id: str) -> npt.NDArray[np.float32] | None:
        """dlib's embedding of a stored face, from its crop: None without an identification ladder, without a
        crop (crops off, or written by an older version), or when the detector no longer finds the face in it."""
        if self.identify_ladder is None:
            return None
        record = self.store.get_face(tenant_id, face_id)
        path = self.settings.data_dir / record.crop_path if record.crop_path else None
        if path is None or not path.is_file():
            return None
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, _, _ = self._decode(path, meter, None)
        faces = self._faces(frame, meter)
        if not faces:
            return None
        # The crop is centred on the face with a margin: the largest face nearest the centre is the one.
        cx, cy = frame.width / 2, frame.height / 2
        face = min(
            faces, key=lambda f: (abs(f.box.x + f.box.w / 2 - cx) + abs(f.box.y + f.box.h / 2 - cy), -f.box.w)
        )
        return self._second_embedding(frame, face, meter)

    def _ruled_out(
        self, index: VectorIndex, vector: npt.NDArray[np.float32], scores: dict[str, float], threshold: float
    ) -> list[str]:
        """Persons a face must not be called, from "is not" corrections on faces like it.

        A person X is ruled out when the probe is a near-duplicate of a face corrected as "not X", or when it
        resembles such a face (above the identify threshold) at least as much as it resembles X's own faces:
        the same stranger seen again looks more like themself than like the person they were mistaken for.
        """
        if not index.negatives:
            return []
        sims = index.face_similarity(vector, index.negatives)
        strongest: dict[str, float] = {}
        for face_id, similarity in sims.items():
            for person in index.negatives[face_id]:
                strongest[person] = max(strongest.get(person, -1.0), similarity)
        return [
            person
            for person, similarity in strongest.items()
            if similarity >= self.profile.near_duplicate
            or (similarity >= threshold and similarity >= scores.get(person, -1.0))
        ]

    def compare(self, source_a: Source, source_b: Source, *, threshold: float | None = None) -> CompareResult:
        """Are the largest faces of two pictures the same person? Nothing is stored."""
        limit = _check_threshold(threshold, self.profile.compare_threshold)
        meter = Meter(self.settings.price_per_cpu_hour)
        chosen, patches = [], []
        for label, source in (("the first picture", source_a), ("the second picture", source_b)):
            frame, decoded_name, _ = self._decode(source, meter, None)
            face = _pick_face(self._faces(frame, meter), None, decoded_name, largest=True, label=label)
            chosen.append(face)
            # Only the region around the face is kept for a climb to dlib: two whole pictures are never held.
            patches.append(face_patch(frame, face))
            del frame
        a, b = chosen
        assert a.embedding is not None and b.embedding is not None
        similarity = float(np.dot(a.embedding, b.embedding))
        same = similarity >= limit
        # The verification ladder: only a pair SFace is unsure of (inside the calibrated band) climbs to dlib,
        # and then the fused score decides. A caller's own threshold means SFace alone, as asked.
        if threshold is None and self.fusion is not None and self.fusion.climbs(similarity):
            dlib = self.analyzer.zoo.get("dlib-resnet")
            first, second = dlib.predict(patches, meter)
            same = self.fusion.decide(similarity, float(np.dot(first, second)))
        return CompareResult(similarity, same, limit, a.box, b.box, meter.receipt)

    def search_faces(
        self,
        tenant_id: str,
        source: Source,
        *,
        top_k: int = 10,
        include_unenrolled: bool = True,
        collection_id: str | None = None,
        face_index: int | None = None,
        name: str | None = None,
    ) -> SearchResult:
        """Faces stored for the tenant most like the picture's largest face (or ``face_index``), best first.

        With ``include_unenrolled`` (the default) sightings are searched too, so a face seen once and never
        enrolled can be found again. ``same_person`` marks matches above the identify threshold.
        """
        if not 1 <= top_k <= 1000:
            raise InvalidRequestError(f"top_k must be between 1 and 1000, got {top_k}")
        if collection_id is not None:
            self.store.get_collection(tenant_id, collection_id)
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, decoded_name, _ = self._decode(source, meter, name)
        faces = self._faces(frame, meter)
        face = _pick_face(faces, face_index, decoded_name, largest=face_index is None)
        assert face.embedding is not None
        with meter.stage("search"):
            index = self._index(tenant_id)
            hits = index.search(
                face.embedding, top_k, collection_id=collection_id, enrolled_only=not include_unenrolled
            )
            records = self.store.get_faces(tenant_id, [h.face_id for h in hits])
        matches = [
            FaceMatch(
                face_id=h.face_id,
                similarity=h.similarity,
                person_id=h.person_id,
                enrolled=h.enrolled,
                source_name=records[h.face_id].source_name,
                created_at=records[h.face_id].created_at,
                cluster_id=h.cluster_id,
                same_person=h.similarity >= self.profile.identify_threshold,
            )
            for h in hits
            if h.face_id in records
        ]
        return SearchResult(box=face.box, matches=matches, receipt=meter.receipt)

    # -- corrections ----------------------------------------------------------------------------------------

    def correct(
        self, tenant_id: str, face_id: str, *, is_person: str | None = None, is_not_person: str | None = None
    ) -> CorrectionResult:
        """Tell the gallery what a stored face is (or is not). "is" enrols the face for that person; "is not"
        takes it away from that person and keeps later answers for faces like it from naming them again."""
        if is_person is None and is_not_person is None:
            raise InvalidRequestError("say what the face is: pass is_person, is_not_person or both")
        if is_person is not None and is_person == is_not_person:
            raise InvalidRequestError("a face cannot both be and not be the same person")
        corrections = []
        # Enrolled by a correction: dlib's embedding from the stored crop, so the person can climb the
        # identification ladder like one enrolled from a picture (worked out before taking the lock).
        second = self._second_from_crop(tenant_id, face_id) if is_person is not None else None
        with self._lock:
            if is_not_person is not None:
                corrections.append(self.store.correct_face(tenant_id, face_id, is_not_person, "is_not"))
            if is_person is not None:
                corrections.append(self.store.correct_face(tenant_id, face_id, is_person, "is"))
            if second is not None:
                self.store.add_face_embedding(tenant_id, face_id, SECOND_MODEL, second)
            record = self.store.get_face(tenant_id, face_id)
            index = self._changed(tenant_id, writes=len(corrections)) or self._index(tenant_id)
            if record.person_id is None and record.cluster_id is None and record.model == self.model:
                cluster = nearest_cluster(
                    index,
                    record.embedding,
                    link_threshold=self.profile.cluster_threshold,
                    mean_threshold=self.profile.identify_threshold,
                ) or new_id("clu")
                self.store.set_clusters(tenant_id, {face_id: cluster})
                index = self._changed(tenant_id) or self._index(tenant_id)
                record = self.store.get_face(tenant_id, face_id)
            index.update(
                face_id,
                collection_id=record.collection_id,
                person_id=record.person_id,
                enrolled=record.enrolled,
                cluster_id=record.cluster_id,
            )
            for correction in corrections:
                negatives = index.negatives.setdefault(face_id, set())
                if correction.kind == "is_not":
                    negatives.add(correction.person_id)
                else:
                    negatives.discard(correction.person_id)
        return CorrectionResult(face=record, corrections=corrections)

    # -- clusters -------------------------------------------------------------------------------------------

    def clusters(self, tenant_id: str, min_size: int = 2) -> list[Cluster]:
        """Groups of unknown sightings that look like one person, biggest first."""
        groups: dict[str, list[FaceRecord]] = {}
        for record in self.store.list_faces(tenant_id, unknown_only=True):
            if record.cluster_id is not None:
                groups.setdefault(record.cluster_id, []).append(record)
        out = [
            Cluster(
                id=cluster_id,
                face_ids=[f.id for f in faces],
                first_seen=faces[0].created_at,
                last_seen=faces[-1].created_at,
                sources=list(dict.fromkeys(f.source_name for f in faces)),
            )
            for cluster_id, faces in groups.items()
            if len(faces) >= max(1, min_size)
        ]
        return sorted(out, key=lambda c: (-c.size, c.last_seen))

    def recluster(self, tenant_id: str) -> list[Cluster]:
        """Recompute clusters of unknown faces with average linkage (the most recent ``RECLUSTER_MAX``)."""
        with self._lock:
            index = self._index(tenant_id)
            ids, vectors, previous = index.unknown_faces()
            ids, vectors, previous = ids[-RECLUSTER_MAX:], vectors[-RECLUSTER_MAX:], previous[-RECLUSTER_MAX:]
            labels = average_linkage(vectors, self.profile.identify_threshold)
            names = reuse_cluster_ids(labels.tolist(), previous, lambda: new_id("clu"))
            changes = {f: c for f, c, old in zip(ids, names, previous, strict=True) if c != old}
            if changes:
                self.store.set_clusters(tenant_id, changes)
                mirror = self._changed(tenant_id)  # None: it reloads with the new clusters on next use
                for face_id, cluster in changes.items():
                    if mirror is not None:
                        mirror.set_cluster(face_id, cluster)
        return self.clusters(tenant_id)

    def promote_cluster(self, tenant_id: str, cluster_id: str, collection_id: str, name: str) -> Person:
        """Name a cluster: a new person in ``collection_id`` whose enrolled faces are the cluster's faces."""
        with self._lock:
            person = self.store.promote_cluster(tenant_id, cluster_id, collection_id, name)
            index = self._changed(tenant_id) or self._index(tenant_id)
            for record in self.store.list_faces(tenant_id, person_id=person.id):
                index.update(
                    record.id,
                    collection_id=record.collection_id,
                    person_id=record.person_id,
                    enrolled=record.enrolled,
                    cluster_id=None,
                )
        return person

    # -- internals ------------------------------------------------------------------------------------------

    def _index(self, tenant_id: str) -> VectorIndex:
        """The tenant's index, loaded on first use and again only when its faces changed in another process
        (its face version moved without this gallery): other tenants' writes never reload it."""
        with self._lock:
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
        from frugalsense.media import load

        # Galleries work on photos: the first page of a document or the first sampled video frame, the only
        # picture decoded (first_only), so a long document costs one page.
        with meter.stage("decode"):
            decoded = load(source, self.settings, name=name, first_only=True)
            first = decoded.frames[0] if decoded.frames else None
        if first is None:
            raise InvalidRequestError(f"{decoded.name} has no picture ({decoded.kind}); send a photo")
        return first, decoded.name, decoded.sha256

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
        record = self.store.add_face(tenant_id, _with_crop(new, relative))
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

    def _unlink_crops(self, tenant_id: str, face_ids: Sequence[str]) -> None:
        # Crops go before their rows: a crash in between leaves rows to delete again, not orphaned pictures.
        for face_id in face_ids:
            (self._tenant_crops(tenant_id) / f"{face_id}.jpg").unlink(missing_ok=True)

    def _after_erase(self, tenant_id: str, erased: Erased) -> Erased:
        root = self.settings.data_dir.resolve()
        for relative in erased.crop_paths:
            path = (self.settings.data_dir / relative).resolve()
            if path.is_relative_to(root):
                path.unlink(missing_ok=True)
        index = self._changed(tenant_id)
        if index is not None:
            index.remove(erased.face_ids)
            self._load_negatives(tenant_id, index)
        return erased


def _with_crop(new: NewFace, crop_path: str | None) -> NewFace:
    from dataclasses import replace

    return replace(new, crop_path=crop_path)


def _check_threshold(threshold: float | None, default: float) -> float:
    if threshold is None:
        return default
    if not -1.0 <= threshold <= 1.0:
        raise InvalidRequestError(f"threshold is a cosine similarity between -1 and 1, got {threshold}")
    return float(threshold)


def face_patch(frame: Frame, face: Face, margin: float = 1.0) -> tuple[npt.NDArray[np.uint8], Face]:
    """The region around `face` (its box grown by `margin` of its size on every side, within the picture) in
    OpenCV's channel order, and the face placed in that region: all a second embedding model looks at.

    >>> import numpy as np
    >>> from frugalsense.results import Box
    >>> face = Face(Box(100, 50, 20, 30), [(110.0, 60.0)] * 5, 0.9)
    >>> patch, moved = face_patch(Frame(np.zeros((400, 300, 3), np.uint8)), face)
    >>> patch.shape, moved.box, moved.landmarks[0]
    ((90, 60, 3), Box(x=20.0, y=30.0, w=20, h=30), (30.0, 40.0))
    """
    box = face.box
    left = max(0, int(box.x - margin * box.w))
    top = max(0, int(box.y - margin * box.h))
    right = min(frame.width, int(np.ceil(box.x + (1 + margin) * box.w)))
    bottom = min(frame.height, int(np.ceil(box.y + (1 + margin) * box.h)))
    patch = np.ascontiguousarray(frame.pixels[top:bottom, left:right, ::-1])
    moved = replace(
        face,
        box=replace(box, x=float(box.x - left), y=float(box.y - top)),
        landmarks=[(float(x - left), float(y - top)) for x, y in face.landmarks],
    )
    return patch, moved


def _pick_face(
    faces: Sequence[Face], face_index: int | None, source_name: str, *, largest: bool = False, label: str = ""
) -> Face:
    what = label or source_name
    if not faces:
        raise InvalidRequestError(f"no face found in {what}; send a photo where the face is clear and frontal")
    if face_index is not None:
        if not 0 <= face_index < len(faces):
            raise InvalidRequestError(
                f"face_index {face_index} is out of range: {what} has {len(faces)} face(s), 0 to {len(faces) - 1}"
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


def _identified(
    face: Face,
    decision: str | None,
    candidates: list[Candidate],
    excluded: list[str],
    climbed: bool,
    face_id: str | None,
    cluster_id: str | None,
) -> IdentifiedFace:
    name = next((c.name for c in candidates if c.person_id == decision), None)
    return IdentifiedFace(
        box=face.box,
        det_score=face.score,
        decision=decision or UNKNOWN,
        name=name,
        similarity=candidates[0].similarity if candidates else 0.0,
        candidates=candidates,
        face_id=face_id,
        cluster_id=cluster_id,
        excluded=excluded,
        climbed=climbed,
    )
