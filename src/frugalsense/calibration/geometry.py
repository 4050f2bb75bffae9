"""A Gaussian model of face embeddings, fitted to real ones: where people's faces centre and how one person's
photos spread around their centre. It draws synthetic distractor people for open-set identification
(`frugalsense.calibration.open_set`) and faces for the scale benches (``bench/scale.py``).

Fitted on a few hundred people it draws faces that resemble those people: measure strangers against a model
fitted on other people (`open_set.cross_fitted_trials` does).

    >>> rng = np.random.default_rng(0)
    >>> truth = Geometry(np.zeros(4), np.eye(4), 0.3 * np.eye(4))
    >>> centres = truth.centres(rng, 200)
    >>> photos = np.vstack([truth.photo(rng, centres) for _ in range(3)])
    >>> fitted = fit_geometry(photos, np.tile(np.arange(200), 3))
    >>> fitted.dim, bool(np.all(np.isfinite(fitted.people)))
    (4, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError

__all__ = ["Geometry", "fit_geometry"]

Floats = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float32]


def _unit(v: npt.NDArray[np.floating[Any]]) -> Matrix:
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True)
class Geometry:
    """A Gaussian model of face embeddings: a mean, how people spread around it, how one person's photos spread
    around theirs (Cholesky factors of the two covariances). Drawn faces are scaled to unit length."""

    mean: Floats
    people: Floats
    photos: Floats

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def centres(self, rng: np.random.Generator, n: int) -> Floats:
        """``n`` new people: where their photos centre."""
        return np.asarray(self.mean + rng.standard_normal((n, self.dim)) @ self.people.T)

    def photo(self, rng: np.random.Generator, centres: Floats) -> Matrix:
        """One photo (a unit embedding) of each person in ``centres``."""
        return _unit(centres + rng.standard_normal(centres.shape) @ self.photos.T)

    def distractors(self, rng: np.random.Generator, n: int, photos: int = 1) -> Matrix:
        """``photos`` faces each of ``n`` new people (person by person): a gallery's synthetic distractors."""
        return self.photo(rng, np.repeat(self.centres(rng, n), photos, axis=0))


def fit_geometry(vectors: npt.ArrayLike, names: npt.ArrayLike) -> Geometry:
    """The Gaussian model of ``vectors`` (one embedding a photo) whose identities are ``names``.

    The photos' spread is pooled from each person's deviations from their own mean (people with one photo
    add nothing), scaled up for the error of that mean; the people's spread is the rest of the total.
    """
    data = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(names)
    if data.ndim != 2 or len(labels) != len(data):
        raise InvalidRequestError(f"fit_geometry: {len(labels)} names for vectors of shape {data.shape}")
    dim = data.shape[1]
    mean = data.mean(axis=0)
    spread = np.cov((data - mean).T)
    deviations = []
    for name in np.unique(labels):  # a photo's deviation from its person's mean, scaled for the mean's own error
        own = data[labels == name]
        if len(own) > 1:
            deviations.append((own - own.mean(axis=0)) * np.sqrt(len(own) / (len(own) - 1)))
    if not deviations:
        raise InvalidRequestError("fit_geometry needs at least one person with two photos or more")
    stacked = np.vstack(deviations)
    photos = stacked.T @ stacked / len(stacked)
    values, axes = np.linalg.eigh(spread - photos)  # people's spread: all of it but the photos' own
    people = (axes * np.clip(values, 1e-6, None)) @ axes.T
    return Geometry(mean, np.linalg.cholesky(people), np.linalg.cholesky(photos + 1e-9 * np.eye(dim)))
