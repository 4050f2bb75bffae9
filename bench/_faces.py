"""Stored faces without pictures for the benches that fill a store fast: random unit SFace-sized embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np

from frugalsense.results import Box
from frugalsense.store import NewFace


def random_faces(rng: np.random.Generator, n: int, **fields: Any) -> list[NewFace]:
    """`n` faces from one camera with embeddings drawn from `rng`; `fields` go to every NewFace."""
    vectors = rng.standard_normal((n, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        NewFace(
            embedding=v,
            model="sface",
            box=Box(0, 0, 40, 40),
            landmarks=[(0.0, 0.0)] * 5,
            det_score=0.9,
            source_sha256="0" * 64,
            source_name="camera.jpg",
            **fields,
        )
        for v in vectors
    ]
