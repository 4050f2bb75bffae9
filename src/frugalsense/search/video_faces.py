"""A video's faces as one sighting per person: the faces found in its sampled frames are grouped into tracks,
and each track is kept as its best face with the spans of time it is seen.

    >>> seen_spans([0.0, 2.0, 10.0], 3.0)
    [(0.0, 2.0), (10.0, 10.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.faces.results import IdentifiedFace
from frugalsense.results import Face

__all__ = ["SPAN_GAP_INTERVALS", "FaceSighting", "TrackedFace", "face_rank", "face_tracks", "seen_spans"]

#: a person unseen for longer than this many frame-sampling intervals is out of the picture: a new span begins
SPAN_GAP_INTERVALS = 1.5


@dataclass(frozen=True)
class FaceSighting:
    """A face stored for an item (a person or an unknown-face cluster) and, in a video, when that face is seen:
    ``spans`` of (first, last) seconds over the sampled frames, ``frames`` how many of them show it."""

    face: IdentifiedFace
    spans: list[tuple[float, float]] = field(default_factory=list)
    frames: int = 1

    def to_dict(self) -> dict[str, Any]:
        out = self.face.to_dict()
        if self.spans:
            out["first_seen_s"] = self.spans[0][0]
            out["last_seen_s"] = self.spans[-1][1]
            out["spans"] = [[start, end] for start, end in self.spans]
            out["frames"] = self.frames
        return out


@dataclass(frozen=True)
class TrackedFace:
    """One face detected in one sampled frame of a video."""

    frame: int  # index among the sampled frames
    time_s: float
    face: Face


def face_tracks(seen: Sequence[tuple[int, float, list[Face]]], threshold: float) -> list[list[TrackedFace]]:
    """Group the faces found in a video's sampled frames, (frame index, seconds, faces) in order, into one track
    per person.

    Each face joins the track holding the face most like it (cosine similarity of identity embeddings at or
    above ``threshold``, best pairs first), unless that track already has a face in the same frame: two faces in
    one picture are two people. A face like no track starts a new one.

        >>> from frugalsense.results import Box
        >>> def face(x: float, y: float) -> Face:
        ...     return Face(Box(0, 0, 10, 10), [(0.0, 0.0)] * 5, 0.9, np.array([x, y], np.float32))
        >>> tracks = face_tracks([(0, 0.0, [face(1, 0)]), (1, 2.0, [face(0.9, 0.44), face(0, 1)])], 0.5)
        >>> [[t.frame for t in track] for track in tracks]
        [[0, 1], [1]]
    """
    tracks: list[list[TrackedFace]] = []
    members: list[list[npt.NDArray[np.float32]]] = []
    for frame, time_s, faces in seen:
        found = [f for f in faces if f.embedding is not None]
        pairs: list[tuple[float, int, int]] = []
        for i, face in enumerate(found):
            assert face.embedding is not None
            for k, vectors in enumerate(members):
                similarity = float(np.max(np.stack(vectors) @ face.embedding))
                if similarity >= threshold:
                    pairs.append((similarity, i, k))
        chosen: dict[int, int] = {}
        for _, i, k in sorted(pairs, reverse=True):
            if i not in chosen and k not in chosen.values():
                chosen[i] = k
        for i, face in enumerate(found):
            assert face.embedding is not None
            k = chosen.get(i, len(tracks))
            if k == len(tracks):
                tracks.append([])
                members.append([])
            tracks[k].append(TrackedFace(frame, time_s, face))
            members[k].append(face.embedding)
    return tracks


def seen_spans(times: Sequence[float], gap_s: float) -> list[tuple[float, float]]:
    """(first, last) seconds of each run of sightings no more than ``gap_s`` apart.

    >>> seen_spans([0.0, 2.0, 4.0, 10.0], 3.0)
    [(0.0, 4.0), (10.0, 10.0)]
    """
    spans: list[tuple[float, float]] = []
    for time_s in sorted(times):
        if spans and time_s - spans[-1][1] <= gap_s:
            spans[-1] = (spans[-1][0], time_s)
        else:
            spans.append((time_s, time_s))
    return spans


def face_rank(tracked: TrackedFace) -> tuple[float, float]:
    """The face a track is stored as: the surest detection, then the largest (scores tie near 1)."""
    return round(tracked.face.score, 2), tracked.face.box.w * tracked.face.box.h
