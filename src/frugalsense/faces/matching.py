"""Who a face is: 1:N identification with an honest "unknown" (the threshold, the runner-up margin, "is not"
corrections ruling persons out, the climb to dlib for unsure probes), and search back through every face seen."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError
from frugalsense.faces._base import SECOND_MODEL, GalleryBase, check_threshold, pick_face
from frugalsense.faces.clusters import nearest_cluster
from frugalsense.faces.results import UNKNOWN, Candidate, FaceMatch, IdentifiedFace, IdentifyResult, SearchResult
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame, Source
from frugalsense.results import Face
from frugalsense.store.sqlite import new_id

__all__ = ["ApproximateFaces", "Identification", "decide"]


@runtime_checkable
class ApproximateFaces(Protocol):
    """A store that finds a face's nearest persons itself (PostgreSQL: the HNSW index, candidates re-ranked
    exactly), so a large gallery is identified without each server holding its faces in a matrix."""

    def face_count(self, tenant_id: str) -> int: ...

    def nearest_persons(
        self, tenant_id: str, model: str, vector: npt.ArrayLike, *, collection_id: str, limit: int
    ) -> list[tuple[str, float]]: ...


class _PersonScores(Protocol):
    def __call__(
        self, vector: npt.NDArray[np.float32], *, collection_id: str, limit: int
    ) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class _Matcher:
    """Where one identification's scores come from: the exact matrix, or the store's nearest persons."""

    person_scores: _PersonScores
    #: face id -> persons that face was corrected as not being
    negatives: dict[str, set[str]]
    face_similarity: Callable[[npt.NDArray[np.float32], Iterable[str]], dict[str, float]]
    #: collection id -> how many faces are enrolled in it (the gallery size the threshold is chosen for: a
    #: stranger is compared with every one of them)
    gallery_size: Callable[[str], int]


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


class Identification(GalleryBase):
    """`FaceGallery.identify`, `identify_faces` and `search_faces`."""

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
        return check_threshold(threshold, self.profile.identify_threshold)

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
            matcher = self._matcher(tenant_id)
            if threshold is None:  # the profile's, for a gallery of this size (FPIR grows with it)
                limit = self.profile.identify_threshold_for(matcher.gallery_size(collection_id))
            scored = [self._scores(matcher, face, collection_id, limit, top_k) for face in faces]
        # The ladder: only faces whose best score SFace is unsure of climb to dlib (not with a caller's threshold).
        climbed = [
            self._climb(tenant_id, frame, face, kept, top_k, limit, meter) if threshold is None else (kept, False)
            for face, (kept, _) in zip(faces, scored, strict=True)
        ]
        with meter.stage("match", items=max(1, len(faces)), note="decide"):
            decisions = [
                self._decide(tenant_id, kept, excluded, limit, top_k, up)
                for (kept, up), (_, excluded) in zip(climbed, scored, strict=True)
            ]
        if keep and faces:
            with meter.stage("store", items=len(faces)), self._lock(tenant_id):
                used_clusters: list[str] = []
                for face, (decision, candidates, excluded, up) in zip(faces, decisions, strict=True):
                    assert face.embedding is not None
                    cluster = None
                    if decision is None:
                        # strangers still join clusters through the matrix (loaded here only when one is seen)
                        cluster = nearest_cluster(
                            self._index(tenant_id),
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

    def _matcher(self, tenant_id: str) -> _Matcher:
        """The exact matrix, or (a store that finds nearest persons itself, for a tenant of at least
        ``pg_ann_min_faces`` faces, when that is set) the store: then no server holds the tenant's faces to
        decide."""
        store, least = self.store, self.settings.pg_ann_min_faces
        if least is not None and isinstance(store, ApproximateFaces) and store.face_count(tenant_id) >= least:
            ruled: dict[str, set[str]] = {}
            for correction in self.store.list_corrections(tenant_id, "is_not"):
                ruled.setdefault(correction.face_id, set()).add(correction.person_id)
            records = self.store.get_faces(tenant_id, list(ruled))

            def persons(
                vector: npt.NDArray[np.float32], *, collection_id: str, limit: int
            ) -> list[tuple[str, float]]:
                return store.nearest_persons(
                    tenant_id, self.model, vector, collection_id=collection_id, limit=limit
                )

            def similarity(vector: npt.NDArray[np.float32], face_ids: Iterable[str]) -> dict[str, float]:
                return {f: float(records[f].embedding @ vector) for f in face_ids if f in records}

            def gallery_size(collection_id: str) -> int:
                return sum(p.face_count for p in self.store.list_persons(tenant_id, collection_id))

            return _Matcher(persons, ruled, similarity, gallery_size)
        index = self._index(tenant_id)
        return _Matcher(index.person_scores, index.negatives, index.face_similarity, index.enrolled_faces)

    def _scores(
        self, matcher: _Matcher, face: Face, collection_id: str, threshold: float, top_k: int
    ) -> tuple[list[tuple[str, float]], list[str]]:
        """Score persons for one face (best first) and drop those its corrections rule out."""
        assert face.embedding is not None
        vector = face.embedding
        # Only the best few persons matter (top_k, and the runner-up for the margin), plus room for persons
        # that "is not" corrections may strike out; scoring every person would cost O(persons) Python.
        ruled_out_persons = {p for persons in matcher.negatives.values() for p in persons}
        limit = max(top_k, 2) + len(ruled_out_persons)
        scores = matcher.person_scores(vector, collection_id=collection_id, limit=limit)
        excluded = set(self._ruled_out(matcher, vector, dict(scores), threshold))
        kept = [(p, s) for p, s in scores if p not in excluded]
        return kept, sorted(excluded)

    def _climb(
        self,
        tenant_id: str,
        frame: Frame,
        face: Face,
        kept: list[tuple[str, float]],
        top_k: int,
        limit: float,
        meter: Meter,
    ) -> tuple[list[tuple[str, float]], bool]:
        """Re-score the top persons with the fused SFace + dlib score when the best SFace score is in the band.

        A person's dlib similarity is the best over their faces that have a stored dlib embedding (enrolled
        since the ladder was shipped); a person without one keeps the SFace score.
        """
        ladder = self.identify_ladder
        # The band sits around the per-pair threshold; a bigger gallery's threshold moves it along.
        shift = limit - self.profile.identify_threshold
        if ladder is None or not kept or not ladder.climbs(kept[0][1] - shift):
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

    def _ruled_out(
        self, matcher: _Matcher, vector: npt.NDArray[np.float32], scores: dict[str, float], threshold: float
    ) -> list[str]:
        """Persons a face must not be called, from "is not" corrections on faces like it.

        A person X is ruled out when the probe is a near-duplicate of a face corrected as "not X", or when it
        resembles such a face (above the identify threshold) at least as much as it resembles X's own faces:
        the same stranger seen again looks more like themself than like the person they were mistaken for.
        """
        if not matcher.negatives:
            return []
        sims = matcher.face_similarity(vector, matcher.negatives)
        strongest: dict[str, float] = {}
        for face_id, similarity in sims.items():
            for person in matcher.negatives[face_id]:
                strongest[person] = max(strongest.get(person, -1.0), similarity)
        return [
            person
            for person, similarity in strongest.items()
            if similarity >= self.profile.near_duplicate
            or (similarity >= threshold and similarity >= scores.get(person, -1.0))
        ]

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
        face = pick_face(faces, face_index, decoded_name, largest=face_index is None)
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
