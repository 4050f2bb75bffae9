"""Near-duplicate pictures: a 64-bit difference hash per picture and groups of hashes a few bits apart.

The labels-based semantic vector cannot tell two photos of two different dogs apart, so "the same picture,
resized or recompressed" needs a signal of its own: dHash (brightness gradients on a 9x8 grey thumbnail) survives
resizing, JPEG recompression and small colour changes, and costs well under a millisecond.

Grouping is exact without comparing every pair: split the 64 bits into ``max_distance + 1`` bands; two hashes at
most ``max_distance`` bits apart agree on at least one whole band (pigeonhole), so only hashes sharing a band
value are compared.

    >>> import numpy as np
    >>> hashes = np.array([0b1011, 0b1001, 0xFFFF_0000], np.uint64)
    >>> near_duplicate_groups(hashes, max_distance=2)
    [[0, 1]]
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_MAX_DISTANCE", "dhash", "hamming", "near_duplicate_groups"]

#: bits two hashes may differ by and still be the same picture (resize + JPEG recompression stay within ~4)
DEFAULT_MAX_DISTANCE = 6


def dhash(pixels: npt.NDArray[np.uint8]) -> int:
    """The difference hash of an RGB picture as a signed 64-bit int (SQLite's INTEGER)."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return int(np.array(value, np.uint64).view(np.int64))


def hamming(hashes: npt.NDArray[np.uint64], probe: int) -> npt.NDArray[np.int64]:
    """Bits by which each of ``hashes`` differs from ``probe`` (a signed or unsigned 64-bit value)."""
    target = np.array(probe, np.int64).view(np.uint64)
    return np.bitwise_count(np.bitwise_xor(hashes, target)).astype(np.int64)


def near_duplicate_groups(
    hashes: npt.NDArray[np.uint64], max_distance: int = DEFAULT_MAX_DISTANCE
) -> list[list[int]]:
    """Groups (positions into ``hashes``, each sorted, groups by first member) of pictures within
    ``max_distance`` bits of another member; singletons are left out."""
    n = len(hashes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bands = max_distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    values = hashes.astype(np.uint64)
    for lo, hi in itertools.pairwise(edges):
        width = int(hi - lo)
        if width == 0:
            continue
        mask = np.uint64((1 << width) - 1)
        keys = (values >> np.uint64(lo)) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], n]
        for start, end in zip(starts, ends, strict=True):
            if end - start < 2:
                continue
            members = order[start:end]
            block = values[members]
            distance = np.bitwise_count(block[:, None] ^ block[None, :])
            close_a, close_b = np.nonzero(np.triu(distance <= max_distance, k=1))
            for a, b in zip(close_a, close_b, strict=True):
                ra, rb = find(int(members[a])), find(int(members[b]))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
