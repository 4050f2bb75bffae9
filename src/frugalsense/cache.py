"""The result cache: the cheapest rung of every ladder is not running it again.

Two tiers, both in one in-memory LRU bounded by `Settings.cache_entries`:

- exact: the SHA-256 of the input's bytes, the requested features and a fingerprint of the pipeline and its
  profiles. Any input kind; a hit skips decoding when the caller hands over bytes.
- near-duplicate: for single photos and the features whose answer does not depend on reading fine detail
  (faces, labels, moderation), the 63-bit perceptual hash of `frugalsense.media.phash`. A cache entry keeps the
  hash of its whole picture and of 80 sub-windows (every side trimmed by 0, 5 or 10 %), so a re-encoded, resized
  or lightly cropped copy lands within a few bits of one of them. The match radius is data (`NEAR_RADIUS`,
  calibrated by bench/cache.py on one half of the evaluation photos and checked on the other). Text is never
  served from this tier: two receipts from the same till look alike to a perceptual hash and differ only in the
  digits.

Both tiers are kept apart per tenant: a tenant is only ever served its own answers, so neither a result nor
a receipt can tell one tenant what another uploaded.

A hit still returns a receipt: the lookup's own CPU time, with a note naming the tier and the original cost.

    >>> cache = ResultCache(capacity=100)
    >>> cache.near_radius, len(cache)
    (6, 0)
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt

from frugalsense.ledger import Meter
from frugalsense.media.phash import (
    NEAR_RADIUS,
    WINDOW_COUNT,
    Hashes,
    thumbnail,
    thumbnail_hash,
    thumbnail_windows,
)
from frugalsense.media.types import Decoded
from frugalsense.results import AnalysisResult, Box, Face, PageResult

if TYPE_CHECKING:
    from frugalsense.settings import Settings

__all__ = [
    "NEAR_RADIUS",
    "NEAR_SAFE_FEATURES",
    "CacheStats",
    "ResultCache",
    "pipeline_fingerprint",
]

#: Features a near-duplicate may answer: their answers survive re-encoding and small crops.
NEAR_SAFE_FEATURES = frozenset({"faces", "labels", "moderation"})

_T = TypeVar("_T")


def pipeline_fingerprint(pipeline: object, settings: Settings) -> str:
    """A digest that changes whenever a cached answer could: the pipeline, the package and every profile."""
    from frugalsense import __version__

    digest = hashlib.sha256(f"{__version__}|{pipeline!r}".encode())
    shipped = resources.files("frugalsense.data").joinpath("profiles")
    files = [(p.name, p.read_bytes()) for p in shipped.iterdir() if p.name.endswith(".json")]
    if settings.profile_dir is not None and Path(settings.profile_dir).is_dir():
        files += [(f"user/{p.name}", p.read_bytes()) for p in Path(settings.profile_dir).glob("*.json")]
    for name, data in sorted(files):
        digest.update(name.encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


@dataclass
class CacheStats:
    exact_hits: int = 0
    near_hits: int = 0
    misses: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.exact_hits + self.near_hits + self.misses
        return (self.exact_hits + self.near_hits) / total if total else 0.0


@dataclass
class _Entry:
    key: str
    namespace: str
    result: AnalysisResult
    cpu_s: float
    slot: int | None = None


class _NearIndex:
    """Window hashes of near-duplicate-eligible entries in one growing array, scanned with popcount."""

    def __init__(self) -> None:
        self.hashes = np.zeros((0, WINDOW_COUNT), np.uint64)
        self.namespaces: list[str | None] = []
        self.keys: list[str | None] = []
        self.free: list[int] = []

    def add(self, hashes: Hashes, namespace: str, key: str) -> int:
        if not self.free:
            grow = max(16, len(self.keys))
            self.hashes = np.concatenate([self.hashes, np.zeros((grow, WINDOW_COUNT), np.uint64)])
            self.free = list(range(len(self.keys) + grow - 1, len(self.keys) - 1, -1))
            self.namespaces += [None] * grow
            self.keys += [None] * grow
        slot = self.free.pop()
        self.hashes[slot] = hashes
        self.namespaces[slot], self.keys[slot] = namespace, key
        return slot

    def remove(self, slot: int) -> None:
        self.namespaces[slot] = self.keys[slot] = None
        self.free.append(slot)

    def nearest(self, query: np.uint64, namespace: str) -> tuple[str, int] | None:
        if not self.keys:
            return None
        distances = np.bitwise_count(self.hashes ^ query).min(axis=1)
        order = np.argsort(distances, kind="stable")
        for slot in order[:8].tolist():
            if self.namespaces[slot] == namespace and self.keys[slot] is not None:
                key = self.keys[slot]
                assert key is not None
                return key, int(distances[slot])
        # Rare: the closest slots belong to other feature sets; fall back to a filtered scan.
        mask = np.array([ns == namespace for ns in self.namespaces])
        if not mask.any():
            return None
        slot = int(np.flatnonzero(mask)[int(np.argmin(distances[mask]))])
        key = self.keys[slot]
        return (key, int(distances[slot])) if key is not None else None


class ResultCache:
    """Exact and near-duplicate answers for `Analyzer`, bounded LRU, thread-safe.

    >>> from frugalsense.settings import Settings
    >>> cache = ResultCache(capacity=2, near_duplicate=True)
    >>> cache.stats.hit_rate
    0.0
    """

    def __init__(self, capacity: int, *, near_duplicate: bool = True, near_radius: int = NEAR_RADIUS) -> None:
        if capacity <= 0:
            raise ValueError("a result cache needs room for at least one entry")
        self.capacity = capacity
        self.near_duplicate = near_duplicate
        self.near_radius = near_radius
        self.stats = CacheStats()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._near = _NearIndex()
        self._lock = threading.Lock()
        self._fingerprints: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultCache | None:
        """The cache the settings ask for, or None when `cache_entries` is 0."""
        if settings.cache_entries <= 0:
            return None
        return cls(settings.cache_entries, near_duplicate=settings.near_duplicate)

    def fingerprint(self, pipeline: object, settings: Settings) -> str:
        """`pipeline_fingerprint`, remembered per pipeline (profiles are read once, as the ladders read them)."""
        key = repr(pipeline)
        found = self._fingerprints.get(key)
        if found is None:
            found = self._fingerprints[key] = pipeline_fingerprint(pipeline, settings)
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._near = _NearIndex()

    # -- the request path --------------------------------------------------------------------------------

    def analyze(
        self,
        source: object,
        features: Sequence[str] | None,
        meter: Meter,
        *,
        fingerprint: str,
        decode: Callable[[], Decoded],
        run: Callable[[Decoded], AnalysisResult],
        name: str | None = None,
        tenant: str | None = None,
    ) -> AnalysisResult:
        """Serve from the cache, or `decode` and `run` and remember the answer. Every step is metered.

        Entries are kept apart per `tenant` (both tiers): one tenant's uploads are never served to, nor their
        cost told to, another. Callers without a tenant (library use) share one namespace of their own.
        """
        namespace = f"{_tenant_key(tenant)}|{fingerprint}|{','.join(features) if features else '*'}"
        if isinstance(source, bytes | bytearray | memoryview):
            with meter.stage("cache", note="exact lookup before decoding"):
                hit = self._exact(hashlib.sha256(source).hexdigest(), namespace)
            if hit is not None:
                return self._serve(hit, None, meter, name=name, tier="exact")
        with meter.stage("decode"):
            decoded = decode()
        thumb: npt.NDArray[np.float32] | None = None
        with meter.stage("cache", note="lookup"):
            hit = self._exact(decoded.sha256, namespace)
            near: tuple[_Entry, int] | None = None
            if hit is None and self._near_eligible(decoded, features):
                thumb = thumbnail(decoded.frames[0].pixels)
                near = self._nearest(thumbnail_hash(thumb), namespace)
        if hit is not None:
            return self._serve(hit, decoded, meter, name=name, tier="exact")
        if near is not None:
            return self._serve(near[0], decoded, meter, name=name, tier="near", distance=near[1])
        result = run(decoded)
        with meter.stage("cache", note="store"):
            window = None if thumb is None else thumbnail_windows(thumb)
            self._store(decoded.sha256, namespace, result, window, meter.receipt.cpu_seconds)
        with self._lock:
            self.stats.misses += 1
        return result

    def _near_eligible(self, decoded: Decoded, features: Sequence[str] | None) -> bool:
        if not self.near_duplicate or decoded.kind != "image" or len(decoded.frames) != 1:
            return False
        # Unnamed features mean the image defaults, which include text: exact tier only.
        return bool(features) and set(features or ()) <= NEAR_SAFE_FEATURES

    def _exact(self, sha256: str, namespace: str) -> _Entry | None:
        key = f"{namespace}|{sha256}"
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _nearest(self, query: np.uint64, namespace: str) -> tuple[_Entry, int] | None:
        with self._lock:
            found = self._near.nearest(query, namespace)
            if found is None or found[1] > self.near_radius:
                return None
            entry = self._entries.get(found[0])
            if entry is None:
                return None
            self._entries.move_to_end(entry.key)
            return entry, found[1]

    def _store(
        self, sha256: str, namespace: str, result: AnalysisResult, window: Hashes | None, cpu_s: float
    ) -> None:
        # A private copy: callers may change what they were given without changing what the cache serves.
        kept = replace(result, pages=copy.deepcopy(result.pages), transcript=result.transcript)
        key = f"{namespace}|{sha256}"
        entry = _Entry(key=key, namespace=namespace, result=kept, cpu_s=cpu_s)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and old.slot is not None:
                self._near.remove(old.slot)
            if window is not None:
                entry.slot = self._near.add(window, namespace, key)
            self._entries[key] = entry
            while len(self._entries) > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                if evicted.slot is not None:
                    self._near.remove(evicted.slot)
                self.stats.evictions += 1

    def _serve(
        self,
        entry: _Entry,
        decoded: Decoded | None,
        meter: Meter,
        *,
        name: str | None,
        tier: str,
        distance: int = 0,
    ) -> AnalysisResult:
        cached = entry.result
        what = "exact copy" if tier == "exact" else f"near-duplicate, {distance} of 63 bits apart"
        note = f"served from cache ({what}); first computed for {entry.cpu_s:.4f} CPU-s"
        models = ", ".join(cached.receipt.models)
        if models:
            note += f" by {models}"
        with meter.stage("cache", note=note):
            if decoded is not None and tier == "near":
                pages = [
                    _fit(page, frame.width, frame.height)
                    for page, frame in zip(cached.pages, decoded.frames, strict=True)
                ]
            else:
                pages = copy.deepcopy(cached.pages)
            result = replace(
                cached,
                name=name or (decoded.name if decoded is not None else "upload"),
                sha256=decoded.sha256 if decoded is not None else cached.sha256,
                pages=pages,
                receipt=meter.receipt,
            )
        with self._lock:
            if tier == "exact":
                self.stats.exact_hits += 1
            else:
                self.stats.near_hits += 1
        return result


def _tenant_key(tenant: str | None) -> str:
    """The cache namespace prefix of a tenant; no tenant id can spell the library's."""
    return "library" if tenant is None else f"tenant:{tenant}"


def _fit(page: PageResult, width: int, height: int) -> PageResult:
    """A cached page mapped onto a copy of another size: boxes and landmarks scale with the picture."""
    sx, sy = width / max(1, page.width), height / max(1, page.height)
    faces = None
    if page.faces is not None:
        faces = [
            Face(
                box=Box(f.box.x * sx, f.box.y * sy, f.box.w * sx, f.box.h * sy),
                landmarks=[(x * sx, y * sy) for x, y in f.landmarks],
                score=f.score,
                embedding=None if f.embedding is None else f.embedding.copy(),
                embedding_model=f.embedding_model,
            )
            for f in page.faces
        ]
    return replace(
        page, width=width, height=height, faces=faces, labels=_copy_list(page.labels), text=_copy_list(page.text)
    )


def _copy_list(items: Iterable[_T] | None) -> list[_T] | None:
    return None if items is None else list(items)
