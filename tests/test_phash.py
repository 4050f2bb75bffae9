"""The one perceptual hash on real photos: copies within the radius, other photos beyond it; and the pigeonhole
grouping against comparing every pair."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalsense.media.phash import NEAR_RADIUS, hamming, near_duplicate_groups, photo_hash, window_hashes


def _photos(eval_dir: Path, n: int) -> list[np.ndarray]:
    paths = sorted((eval_dir / "zeroshot-imagenet" / "images").glob("*.JPEG"))[:n]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _jpeg(pixels: np.ndarray, quality: int, scale: float = 1.0) -> np.ndarray:
    img = Image.fromarray(pixels)
    if scale != 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize(("quality", "scale"), [(60, 1.0), (90, 0.5), (75, 0.7)])
def test_a_recompressed_or_resized_copy_is_within_the_radius(eval_dir: Path, quality: int, scale: float) -> None:
    for pixels in _photos(eval_dir, 12):
        original, copy = photo_hash(pixels), photo_hash(_jpeg(pixels, quality, scale))
        assert int(hamming(np.array([original], np.uint64), copy)[0]) <= NEAR_RADIUS
        assert int(original) < 2**63  # stored as SQLite's signed INTEGER without a sign flip


def test_distinct_photos_are_beyond_the_radius_and_grouped_only_with_their_copies(eval_dir: Path) -> None:
    photos = _photos(eval_dir, 40)
    hashes = np.array([photo_hash(p) for p in photos] + [photo_hash(_jpeg(photos[5], 70, 0.6))], np.uint64)
    assert near_duplicate_groups(hashes) == [[5, 40]]
    assert window_hashes(photos[0])[0] == hashes[0]


@pytest.mark.parametrize("radius", [0, 3, 6, 10])
def test_pigeonhole_grouping_equals_comparing_every_pair(radius: int) -> None:
    rng = np.random.default_rng(radius)
    base = rng.integers(0, 2**63, 300, dtype=np.int64).view(np.uint64)
    near = base[:100] ^ np.array(
        [sum(1 << int(b) for b in rng.choice(63, rng.integers(0, 12), replace=False)) for _ in range(100)],
        np.uint64,
    )
    hashes = np.concatenate([base, near])
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    # Connected components of "within the radius", found the slow way.
    label = list(range(len(hashes)))
    for a, b in zip(*np.nonzero(distance <= radius), strict=True):
        la, lb = label[a], label[b]
        if la != lb:
            label = [min(la, lb) if x in (la, lb) else x for x in label]
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(label):
        groups.setdefault(x, []).append(i)
    expected = sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
    assert near_duplicate_groups(hashes, radius) == expected


def test_a_signed_stored_value_is_compared_as_its_64_bits() -> None:
    stored = np.array([2**63 + 5], np.uint64)
    assert hamming(stored, -(2**63) + 5).tolist() == [0]
    assert hamming(stored, np.uint64(2**63 + 6)).tolist() == [2]
