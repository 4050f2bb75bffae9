"""One perceptual hash: "the same picture, resized, recompressed or lightly cropped" within a few bits.

The hash is 63 bits: a 96 px grey thumbnail, resized to 32 x 32 and transformed (DCT-II); the lowest 8 x 8
frequencies less the DC term, each above or below their median. It survives JPEG re-encoding, resizing and small
colour changes. The result cache also keeps the hashes of 80 sub-windows of a picture (every side trimmed by 0, 5
or 10 %), so a lightly cropped copy lands near one of them; search keeps the whole picture's hash per item.

Two pictures are copies when their hashes are at most `NEAR_RADIUS` bits apart (calibrated by bench/cache.py on
one half of the evaluation photos, checked on the other). Groups of copies are found without comparing every pair:
split the 64 bits into ``bands`` bands (more than ``radius``); two hashes at most ``radius`` bits apart agree on at
least ``bands - radius`` whole bands (pigeonhole), so only hashes sharing the values of that many bands are
compared. The number of bands is chosen for the number of hashes: one band more than the radius for a few thousand,
more and narrower bands (two of eight to agree on, at the default radius) for 100,000.

    >>> rng = np.random.default_rng(0)
    >>> photo = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    >>> bits = window_hashes(photo)
    >>> bits.shape, int(np.bitwise_count(bits[0] ^ photo_hash(photo)))
    ((81,), 0)
    >>> near_duplicate_groups(np.array([0b1011, 0b1001, 0xFFFF_0000], np.uint64), max_distance=2)
    [[0, 1]]
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "NEAR_RADIUS",
    "WINDOW_COUNT",
    "Hashes",
    "hamming",
    "near_duplicate_groups",
    "photo_hash",
    "thumbnail",
    "thumbnail_hash",
    "thumbnail_windows",
    "window_hashes",
]

#: Largest Hamming distance (of 63 bits) at which a photo counts as a copy of another. Chosen by bench/cache.py
#: on the calibration half of the evaluation photos: the largest radius at which at most 0.25 % of distinct photos
#: would be taken for a copy of one of the other 650; checked on the held-out half. False matches grow with the
#: number of pictures compared, so very large collections want a smaller radius.
NEAR_RADIUS = 6

Hashes = npt.NDArray[np.uint64]

_THUMB = 96  # side of the grey thumbnail every window is cut from
_HASH_SIDE = 32  # DCT input side
_LOW = 8  # the lowest 8x8 frequencies, less the DC term, make the 63 bits
_MARGINS = (0.0, 0.05, 0.1)
#: (left, top, right, bottom) trims; the first is the whole picture
_WINDOWS = tuple(itertools.product(_MARGINS, repeat=4))
#: hashes `window_hashes` gives a picture: the whole of it and 80 sub-windows
WINDOW_COUNT = len(_WINDOWS)
_MASK64 = (1 << 64) - 1


def thumbnail(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The grey thumbnail an RGB picture's hashes are computed from (made once when both are wanted)."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def _area_matrix(lo: int, hi: int) -> npt.NDArray[np.float64]:
    """Rows average [lo, hi) of a _THUMB-long axis down to _HASH_SIDE cells, as an area resize does."""
    out = np.zeros((_HASH_SIDE, _THUMB))
    step = (hi - lo) / _HASH_SIDE
    for j in range(_HASH_SIDE):
        a, b = lo + j * step, lo + (j + 1) * step
        for i in range(int(np.floor(a)), min(_THUMB, int(np.ceil(b)))):
            out[j, i] = (min(b, i + 1) - max(a, i)) / step
    return out


def _dct_rows() -> npt.NDArray[np.float64]:
    """The first _LOW rows of the orthonormal DCT-II matrix (what cv2.dct applies along each axis)."""
    n = np.arange(_HASH_SIDE)
    rows = np.cos(np.pi * (2 * n[None, :] + 1) * np.arange(_LOW)[:, None] / (2 * _HASH_SIDE))
    rows *= np.sqrt(2.0 / _HASH_SIDE)
    rows[0] /= np.sqrt(2.0)
    return rows


def _axis_bank() -> npt.NDArray[np.float64]:
    """For every (start trim, end trim) pair, resize-then-DCT along one axis as one (_LOW x _THUMB) matrix.

    Resizing a window and taking its low DCT frequencies are both linear, so all 81 windows' hashes come from
    two matrix products with these stacked banks instead of 81 resizes and transforms.
    """
    dct = _dct_rows()
    blocks = [
        dct @ _area_matrix(round(lo * _THUMB), _THUMB - round(hi * _THUMB)) for lo in _MARGINS for hi in _MARGINS
    ]
    return np.concatenate(blocks)  # (len(_MARGINS) ** 2 * _LOW, _THUMB)


_BANK = _axis_bank().astype(np.float32)
_WHOLE = np.ascontiguousarray(_BANK[:_LOW])  # no trim on either end: the first block
_WINDOW_ROWS = np.array([_MARGINS.index(t) * len(_MARGINS) + _MARGINS.index(b) for _, t, _, b in _WINDOWS])
_WINDOW_COLS = np.array([_MARGINS.index(left) * len(_MARGINS) + _MARGINS.index(r) for left, _, r, _ in _WINDOWS])


def _pack(low: npt.NDArray[np.float64]) -> Hashes:
    """63 bits per 8x8 block of low frequencies (n, 8, 8): above or below their median, DC left out."""
    values = low.reshape(len(low), -1)[:, 1:]
    bits = np.zeros((len(low), 64), np.bool_)
    bits[:, : values.shape[1]] = values > np.median(values, axis=1, keepdims=True)
    return np.packbits(bits, axis=1, bitorder="little").view("<u8").reshape(-1).astype(np.uint64)


def _sandwich(bank: npt.NDArray[np.float32], thumb: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """bank @ thumb @ bank.T through OpenCV: numpy's BLAS would hand this to its own threads, which spin on
    after the product and burn CPU that the calling thread's clock (and so the receipt) never sees."""
    import cv2

    gemm: Any = cv2.gemm  # the stubs do not allow the None that skips the added matrix
    half = gemm(bank, thumb, 1.0, None, 0.0)
    return np.asarray(gemm(half, bank, 1.0, None, 0.0, flags=cv2.GEMM_2_T), np.float64)


def thumbnail_hash(thumb: npt.NDArray[np.float32]) -> np.uint64:
    """The hash of a whole picture, from its `thumbnail`."""
    return np.uint64(_pack(_sandwich(_WHOLE, thumb)[None])[0])


def thumbnail_windows(thumb: npt.NDArray[np.float32]) -> Hashes:
    """The hashes of a whole picture (first) and of its 80 trimmed sub-windows, from its `thumbnail`."""
    grid = _sandwich(_BANK, thumb)
    pairs = len(_MARGINS) ** 2
    # (row pair, column pair) blocks of _LOW x _LOW; a window picks its (top, bottom) row, (left, right) column.
    blocks = grid.reshape(pairs, _LOW, pairs, _LOW).transpose(0, 2, 1, 3)
    return _pack(blocks[_WINDOW_ROWS, _WINDOW_COLS])


def photo_hash(pixels: npt.NDArray[np.uint8]) -> np.uint64:
    """The 63-bit perceptual hash of a whole RGB picture (below 2**63, so it fits SQLite's signed INTEGER)."""
    return thumbnail_hash(thumbnail(pixels))


def window_hashes(pixels: npt.NDArray[np.uint8]) -> Hashes:
    """Hashes of the whole picture (first) and of its 80 trimmed sub-windows, as the result cache keeps them."""
    return thumbnail_windows(thumbnail(pixels))


def hamming(hashes: Hashes, probe: int | np.integer[Any]) -> npt.NDArray[np.int64]:
    """Bits by which each of ``hashes`` differs from ``probe`` (a signed or unsigned 64-bit value)."""
    target = np.uint64(int(probe) & _MASK64)
    return np.bitwise_count(np.bitwise_xor(hashes.astype(np.uint64), target)).astype(np.int64)


def near_duplicate_groups(hashes: Hashes, max_distance: int = NEAR_RADIUS) -> list[list[int]]:
    """Groups (positions into ``hashes``, each sorted, groups by first member) of pictures within
    ``max_distance`` bits of another member; singletons are left out."""
    values = np.asarray(hashes).astype(np.uint64)
    if len(values) < 2 or max_distance < 0:
        return []
    # Equal hashes are one group whatever the radius: pairs are only looked for between distinct values.
    distinct, inverse = np.unique(values, return_inverse=True)
    first, second = _close_pairs(distinct, max_distance) if max_distance else (np.zeros(0, np.int64),) * 2
    component = _components(len(distinct), first, second)[inverse.reshape(-1)]
    sizes = np.bincount(component)
    members = np.flatnonzero(sizes[component] > 1)
    # A stable sort by component keeps each group's positions ascending.
    members = members[np.argsort(component[members], kind="stable")]
    if not len(members):
        return []
    cuts = np.flatnonzero(np.diff(component[members])) + 1
    groups = np.split(members, cuts)
    return [g.tolist() for g in sorted(groups, key=lambda g: int(g[0]))]


def _layout(count: int, radius: int) -> int:
    """How many bands to split the 64 bits into for ``count`` distinct hashes: the fewest comparisons overall.

    With ``bands`` bands, two hashes at most ``radius`` bits apart agree exactly on at least ``bands - radius``
    of them (pigeonhole). Each choice of that many bands is one sort; hashes that agree on its bands by chance
    are compared for nothing. One band more than the radius (one band to agree on) is cheapest for a few
    thousand hashes; at 100,000, 9-bit bands leave hundreds of hashes in each bucket, while agreeing on two of
    eight 8-bit bands (28 sorts of 16-bit keys) compares some 30 times fewer pairs."""
    best: tuple[float, int] | None = None
    for bands in range(radius + 1, 65):
        agree = bands - radius
        sorts = math.comb(bands, agree)
        if sorts > 1000:
            break
        key_bits = 64 * agree / bands
        # A sort costs about as much as comparing two pairs per hash (1 to 2 ms for 100,000 keys).
        cost = sorts * (2.0 * count + count * count / 2.0 ** (key_bits + 1))
        if best is None or cost < best[0]:
            best = (cost, bands)
    return radius + 1 if best is None else best[1]


def _close_pairs(values: Hashes, radius: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs of positions into ``values`` (distinct hashes) at most ``radius`` bits apart; a pair may repeat."""
    bands = _layout(len(values), radius)
    edges = np.linspace(0, 64, bands + 1).astype(np.int64).tolist()
    parts = [(values >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1) for lo, hi in itertools.pairwise(edges)]
    # Keys of 16 bits or fewer are built and sorted as uint16: numpy sorts those by radix, a quarter of the
    # memory to move; wider keys go to numpy's vectorised quicksort. Both beat a stable sort of 64-bit keys.
    narrow = [p.astype(np.uint16) for p in parts] if 64 // bands * (bands - radius) <= 16 else None
    found_a: list[npt.NDArray[np.int64]] = []
    found_b: list[npt.NDArray[np.int64]] = []
    for chosen in itertools.combinations(range(bands), bands - radius):
        widths = [edges[band + 1] - edges[band] for band in chosen]
        pieces = narrow if narrow is not None and sum(widths) <= 16 else parts
        keys, shift = np.zeros(len(values), pieces[0].dtype), 0
        for band, width in zip(chosen, widths, strict=True):
            keys |= pieces[band] << pieces[band].dtype.type(shift)
            shift += width
        order = np.argsort(keys, kind="stable") if keys.dtype == np.uint16 else np.argsort(keys)
        ordered, sorted_keys = values[order], keys[order]
        # Equal keys sit in runs: compare each hash with the one `step` places on, for growing steps, while
        # some run is still longer than the step.
        step = 1
        at = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        while len(at):
            close = np.bitwise_count(ordered[at] ^ ordered[at + step]) <= radius
            if close.any():
                found_a.append(order[at[close]])
                found_b.append(order[at[close] + step])
            step += 1
            at = at[at + step < len(values)]
            at = at[sorted_keys[at + step] == sorted_keys[at]]
    if not found_a:
        empty = np.zeros(0, np.int64)
        return empty, empty
    return np.concatenate(found_a), np.concatenate(found_b)


def _components(count: int, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A label per node of the graph with edges ``first[i] -- second[i]`` (connected components)."""
    if not len(first):
        return np.arange(count, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(first), np.int8), (first, second)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, np.int64)
