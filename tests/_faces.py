"""Stored faces without pictures: random unit embeddings, for tests of storage and erasure at scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from frugalsense.results import Box
from frugalsense.store import NewFace


def random_faces(n: int, seed: int, **fields: Any) -> list[NewFace]:
    """`n` faces from one camera with random unit SFace-sized embeddings; `fields` go to every NewFace."""
    vectors = np.random.default_rng(seed).standard_normal((n, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewFace(
            embedding=v,
            model="sface",
            box=Box(0, 0, 40, 40),
            landmarks=[(0.0, 0.0)] * 5,
            det_score=0.9,
            source_sha256="0" * 64,
            source_name=f"camera-{seed}.jpg",
            **fields,
        )
        for v in vectors
    ]
