"""The console's two heavy search calls give the answers a straightforward reference gives: filter-only search
(newest items meeting the filters) and near-duplicate groups (connected components of "within the distance"),
on a few thousand random items in a real SQLite file, beside a second tenant whose items must never show."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from frugalsense.media.phash import near_duplicate_groups
from frugalsense.search import SearchService
from frugalsense.settings import Settings
from frugalsense.store.items import NewItem

MODALITIES = ("image", "document", "audio", "video")
LABELS = ("hen", "receipt", "dog")
COUNT = 3000


@dataclass(frozen=True)
class Written:
    rowid: int
    modality: str
    captured_at: str
    nsfw: float
    flagged: bool
    source: str
    labels: tuple[str, ...]
    phash: int | None


def _flip(value: int, bits: int, rng: np.random.Generator) -> int:
    """``value`` with ``bits`` of its 64 bits flipped (as a signed 64-bit number, as SQLite stores it)."""
    unsigned = value & (2**64 - 1)
    for bit in rng.choice(64, bits, replace=False):
        unsigned ^= 1 << int(bit)
    return unsigned - 2**64 if unsigned >= 2**63 else unsigned


def _hashes(rng: np.random.Generator, n: int) -> list[int | None]:
    """Random hashes with planted copies: at exactly 0, 1, 6 (the default distance) and 7 bits from an original,
    several copies equally far from one original (ties), chains whose ends are further apart than the distance,
    and items without a picture hash."""
    out: list[int | None] = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)]
    for k in range(0, n - 40, 37):
        base = out[k]
        assert base is not None
        out[k + 1] = _flip(base, int(rng.choice([0, 1, 3, 6, 7, 8])), rng)
        out[k + 2] = _flip(base, 6, rng)
        out[k + 3] = _flip(base, 6, rng)  # ties: two copies six bits from the same original
        out[k + 4] = _flip(out[k + 2] or 0, 5, rng)  # a chain: near k + 2, maybe not near k
    for k in range(13, n, 101):
        out[k] = None
    return out


def _items(rng: np.random.Generator, encoder: str, prefix: str) -> tuple[list[NewItem], list[Written]]:
    hashes = _hashes(rng, COUNT)
    new, facts = [], []
    for i in range(COUNT):
        # Few distinct dates, so many items share one and the rowid breaks the tie.
        captured = f"20{10 + int(rng.integers(0, 12)):02d}-0{1 + int(rng.integers(0, 3))}-01T00:00:00"
        labels = tuple(sorted(str(x) for x in rng.choice(LABELS, int(rng.integers(0, 3)), replace=False)))
        modality = MODALITIES[int(rng.integers(0, 4))]
        nsfw, flagged = float(rng.random()), bool(rng.random() < 0.1)
        source = f"{prefix}/{'a' if i % 3 else 'b'}/{i}.jpg"
        new.append(
            NewItem(
                source=source,
                sha256=f"{i:064x}",
                modality=modality,
                mime="image/jpeg",
                byte_size=1,
                pages=1,
                duration_s=None,
                captured_at=captured,
                nsfw=nsfw,
                flagged=flagged,
                phash=hashes[i],
                encoder=encoder,
                result={"pages": []},
                text="",
                transcript="",
                labels={name: 0.9 for name in labels},
                faces=[],
                vectors=[],
            )
        )
        facts.append(Written(0, modality, captured, nsfw, flagged, source, labels, hashes[i]))
    return new, facts


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[tuple[SearchService, str, list[Written]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fast-paths"), model_cache=model_dir)
    rng = np.random.default_rng(7)
    with SearchService.open(settings) as service:
        tenants = [service.store.create_tenant(name).id for name in ("shop", "neighbour")]
        written: list[Written] = []
        for n, tenant in enumerate(tenants):
            new, facts = _items(rng, service.encoder.name, f"t{n}")
            outcomes = service.items.put_items(tenant, new)
            if n == 0:
                written = [
                    replace(f, rowid=o.item.rowid)
                    for o, f in zip(outcomes, facts, strict=True)
                    if o.item is not None
                ]
        assert len(written) == COUNT
        yield service, tenants[0], written


def _meets(item: Written, f: dict[str, str | float | bool]) -> bool:
    if "modality" in f and item.modality not in str(f["modality"]).split(","):
        return False
    if "since" in f and item.captured_at < str(f["since"]):
        return False
    if "until" in f and item.captured_at[:10] > str(f["until"]):
        return False
    if "label" in f and not set(str(f["label"]).split(",")) <= set(item.labels):
        return False
    if "max_nsfw" in f and item.nsfw > float(f["max_nsfw"]):
        return False
    if f.get("safe") and item.flagged:
        return False
    return "source_prefix" not in f or item.source.startswith(str(f["source_prefix"]))


@pytest.mark.parametrize(
    "filters",
    [
        {"modality": "document", "since": "2016-01-01"},
        {"modality": "image"},
        {"since": "2021-02-01"},
        {"until": "2010-01-01"},
        {"until": "2011-03-01", "modality": "audio,video"},
        {"label": "hen"},
        {"label": "hen,dog", "safe": True},
        {"max_nsfw": 0.01},
        {"source_prefix": "t0/b/"},
        {"modality": "video", "since": "2030-01-01"},  # nothing
    ],
)
@pytest.mark.parametrize("top_k", [1, 20, 1000])
def test_filter_only_search_lists_the_newest_items_that_meet_the_filters(
    world: tuple[SearchService, str, list[Written]], filters: dict[str, str | float | bool], top_k: int
) -> None:
    service, tenant, written = world
    expected = sorted(
        (w for w in written if _meets(w, filters)), key=lambda w: (w.captured_at, w.rowid), reverse=True
    )[:top_k]
    found = service.search(tenant, filters=service.filters(tenant, **filters), top_k=top_k)  # type: ignore[arg-type]
    assert [h.item.rowid for h in found.hits] == [w.rowid for w in expected]
    assert all(h.item.source.startswith("t0/") for h in found.hits)  # never the other tenant's


def _reference_groups(hashes: list[int], distance: int) -> list[list[int]]:
    """Groups by comparing every pair, joined by a plain union-find."""
    values = np.array(hashes, np.int64).view(np.uint64)
    parent = list(range(len(values)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for start in range(0, len(values), 500):
        near = np.bitwise_count(values[start : start + 500, None] ^ values[None, :]) <= distance
        for a, b in zip(*np.nonzero(near), strict=True):
            ra, rb = root(start + int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(len(values)):
        groups.setdefault(root(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@pytest.mark.parametrize("distance", [0, 1, 5, 6, 7, 12])
def test_near_duplicate_groups_of_a_tenant_equal_comparing_every_pair(
    world: tuple[SearchService, str, list[Written]], distance: int
) -> None:
    service, tenant, written = world
    hashed = sorted((w for w in written if w.phash is not None), key=lambda w: w.rowid)
    expected = [[hashed[i].rowid for i in g] for g in _reference_groups([w.phash or 0 for w in hashed], distance)]
    found = service.near_duplicates(tenant, distance)
    assert [[i.rowid for i in g] for g in found] == expected
    assert expected  # the planted copies make groups at every distance tried, 0 included
    if distance == 6:
        sizes = {len(g) for g in expected}
        assert 2 in sizes and max(sizes) >= 4  # pairs, and ties and chains joined into bigger groups


def test_twenty_thousand_hashes_group_as_comparing_every_pair() -> None:
    """Twenty thousand hashes: enough that the grouping agrees on two of eight bands, not one of seven."""
    rng = np.random.default_rng(3)
    hashes = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)]
    for k in range(0, 19_000, 50):
        hashes[k + 1] = _flip(hashes[k], int(rng.integers(0, 9)), rng)
        hashes[k + 2] = _flip(hashes[k + 1], 6, rng)
    values = np.array(hashes, np.int64).view(np.uint64)
    expected = _reference_groups(hashes, 6)
    assert near_duplicate_groups(values, 6) == expected
    assert len(expected) > 200
