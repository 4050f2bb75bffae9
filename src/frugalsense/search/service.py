"""One object for the whole search feature: ingest, search, items. The CLI and the HTTP routes call this.

```python
from frugalsense.search import SearchService
from frugalsense.settings import Settings
service = SearchService.open(Settings())
tenant = service.store.create_tenant("home").id
service.index_paths(tenant, ["holiday/"]).counts["added"]
# 212
hit = service.search(tenant, "a dog on the beach").hits[0]
hit.item.source, [r.kind for r in hit.reasons]
# ('/home/ada/holiday/IMG_0042.jpg', ['meaning'])
```
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.analyze import Analyzer
from frugalsense.errors import FrugalsenseError, InvalidRequestError, ServiceError, error_for_code
from frugalsense.faces.gallery import FaceGallery
from frugalsense.ledger import Meter
from frugalsense.media.phash import NEAR_RADIUS, hamming, near_duplicate_groups, photo_hash
from frugalsense.media.types import Source
from frugalsense.search.encoders import ImageEncoder, load_encoder, page_vector
from frugalsense.search.index import IndexCache
from frugalsense.search.ingest import Indexer, IndexOutcome, IndexSummary
from frugalsense.search.query import Searcher, SearchResults
from frugalsense.settings import Settings
from frugalsense.store import Store, open_store
from frugalsense.store.items import Filters, Item

__all__ = ["MODALITIES", "SearchService", "check_date", "outcome_error"]

MODALITIES = ("image", "document", "audio", "video")


class SearchService:
    """Ingest and search over one data folder. Thread-safe."""

    def __init__(
        self,
        store: Store,
        analyzer: Analyzer,
        gallery: FaceGallery,
        encoder: ImageEncoder | None = None,
    ) -> None:
        self.settings: Settings = analyzer.settings
        self.store = store
        self.analyzer = analyzer
        self.gallery = gallery
        self.encoder = encoder or load_encoder(self.settings, analyzer)
        self.items = store.search_store()
        self.cache = IndexCache(self.items, self.settings.data_dir)
        self.indexer = Indexer(self.items, self.cache, analyzer, gallery, self.encoder)
        self.searcher = Searcher(self.items, self.cache, self.encoder)
        self._owns_store = False

    @classmethod
    def open(cls, settings: Settings, encoder: ImageEncoder | None = None) -> SearchService:
        """The service over ``DATA_DIR/frugalsense.db`` with its own analyzer and gallery; `close` when done."""
        store = open_store(settings)
        analyzer = Analyzer(settings)
        try:
            service = cls(store, analyzer, FaceGallery(store, analyzer), encoder)
        except BaseException:
            store.close()
            raise
        service._owns_store = True
        return service

    def close(self) -> None:
        self.cache.flush()
        self.items.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SearchService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest ---------------------------------------------------------------------------------------------

    def index(self, tenant_id: str, source: Source, **options: Any) -> IndexOutcome:
        """Index one file or upload (see `Indexer.index_source`)."""
        return self.indexer.index_source(tenant_id, source, **options)

    def index_paths(self, tenant_id: str, paths: list[str], **options: Any) -> IndexSummary:
        """Index files and folders (see `Indexer.index_paths`)."""
        return self.indexer.index_paths(tenant_id, paths, **options)

    # -- search ---------------------------------------------------------------------------------------------

    def filters(
        self,
        tenant_id: str,
        *,
        person: str | None = None,
        label: str | None = None,
        modality: str | None = None,
        since: str | None = None,
        until: str | None = None,
        max_nsfw: float | None = None,
        safe: bool = False,
        source_prefix: str | None = None,
    ) -> Filters:
        """Filters from the edges' plain values; ``person`` is a person id, a person's name or a cluster id,
        ``label`` and ``modality`` may list several values separated by commas."""
        modalities = _split(modality)
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown:
            raise InvalidRequestError(f"modality must be among {', '.join(MODALITIES)}; got {', '.join(unknown)}")
        if max_nsfw is not None and not 0.0 <= max_nsfw <= 1.0:
            raise InvalidRequestError(f"max_nsfw is a probability between 0 and 1, got {max_nsfw}")
        return Filters(
            person_ids=tuple(self.items.resolve_person(tenant_id, person.strip())) if person else (),
            labels=tuple(_split(label)),
            modalities=tuple(modalities),
            since=_date(since, "since"),
            until=_date(until, "until"),
            max_nsfw=max_nsfw,
            safe_only=safe,
            source_prefix=source_prefix or None,
        )

    def search(
        self,
        tenant_id: str,
        text: str = "",
        *,
        filters: Filters | None = None,
        top_k: int = 20,
        mode: str = "hybrid",
    ) -> SearchResults:
        """Hybrid search over the tenant's items (see `Searcher.search`)."""
        return self.searcher.search(tenant_id, text, filters=filters, top_k=top_k, mode=mode)

    def search_image(
        self,
        tenant_id: str,
        source: Source,
        *,
        name: str | None = None,
        filters: Filters | None = None,
        top_k: int = 20,
        max_distance: int = NEAR_RADIUS,
    ) -> SearchResults:
        """Items like a picture: near-duplicates first, then what is close in meaning. Nothing is stored."""
        from frugalsense.media import load

        meter = Meter(self.settings.price_per_cpu_hour)
        with meter.stage("decode"):
            # Only the first picture is used: only it is decoded (first_only), and no audio.
            decoded = load(source, self.settings, name=name, first_only=True)
            first = replace(decoded, frames=[decoded.frames[0]]) if decoded.frames else None
        if first is None:
            raise InvalidRequestError(f"{decoded.name} has no picture ({decoded.kind}); send a photo or a scan")
        features = list(dict.fromkeys([*self.encoder.features, "text"]))
        page = self.analyzer.analyze_decoded(first, features, meter).pages[0]
        frame = first.frames[0]
        with meter.stage("encode", self.encoder.name):
            vector = page_vector(self.encoder, frame, page, meter)
            rowids, hashes = self.items.phashes(tenant_id)
            bits = hamming(hashes, photo_hash(frame.pixels))
        # Nearest first; items equally near keep their rowid order.
        close = np.flatnonzero(bits <= max_distance)
        close = close[np.argsort(bits[close], kind="stable")]
        near = [(int(rowids[i]), int(bits[i])) for i in close]
        with meter.stage("search"):
            hits = self.searcher.rank_by_example(tenant_id, vector, near, filters=filters, top_k=top_k)
        took = sum(s.wall_ms for s in meter.receipt.stages)
        return SearchResults(f"picture:{decoded.name}", "image", hits, took, meter.receipt)

    def near_duplicates(self, tenant_id: str, max_distance: int = NEAR_RADIUS) -> list[list[Item]]:
        """Groups of items whose first pictures are the same picture, resized or recompressed."""
        if not 0 <= max_distance <= 16:
            raise InvalidRequestError(f"max_distance must be between 0 and 16 bits, got {max_distance}")
        rowids, hashes = self.items.phashes(tenant_id)
        groups = near_duplicate_groups(hashes, max_distance)
        items = self.items.items_by_rowid(tenant_id, [int(rowids[i]) for g in groups for i in g])
        return [[items[int(rowids[i])] for i in g if int(rowids[i]) in items] for g in groups]

    # -- items ----------------------------------------------------------------------------------------------

    def get_item(self, tenant_id: str, item_id: str) -> dict[str, Any]:
        """An item with its full analysis and its faces (person or cluster of each)."""
        item = self.items.get_item(tenant_id, item_id)
        faces = self.items.faces_of(tenant_id, [item_id]).get(item_id, [])
        return {**item.to_dict(with_result=True), "faces": [f.to_dict() for f in faces]}

    def list_items(
        self, tenant_id: str, *, source_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Item]:
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidRequestError("limit must be between 1 and 1000 and offset at least 0")
        return self.items.list_items(tenant_id, source_prefix=source_prefix, limit=limit, offset=offset)

    def delete_item(self, tenant_id: str, item_id: str) -> dict[str, Any]:
        """Delete an item and everything derived from it: its thumbnail, faces (and their crops), text, labels,
        vectors, down to the bytes of the database files and the vector snapshot."""
        faces = self.indexer.delete(tenant_id, item_id)
        return {"deleted": item_id, "faces": len(faces)}

    # -- tenants --------------------------------------------------------------------------------------------

    def erase_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Erase a tenant and everything it owns, and say how much went.

        Its items go with their thumbnails, text, labels, vectors and face links; through the gallery its faces,
        crops, persons, collections, corrections, API keys and the tenant itself; then its vector files. The
        full-text indexes are merged and the write-ahead log emptied, so the erased words and vectors leave the
        bytes of the database files, not only its tables. Cannot be undone.
        """
        tenant = self.store.get_tenant(tenant_id)
        counts = self.items.tenant_counts(tenant_id)
        keys = len(self.store.list_api_keys(tenant_id))
        files = self.cache.drop_tenant(tenant_id)
        self.indexer.thumbnails.drop_tenant(tenant_id)  # the files before their rows, as for crops
        # Items, then faces, a chunk per transaction: other tenants' work goes on between chunks.
        while self.items.delete_tenant_items(tenant_id, self.gallery.erase_chunk):
            time.sleep(0.001)
        faces = self.gallery.erase_tenant(tenant_id).to_dict()
        files += self.cache.drop_tenant(tenant_id)  # one its own searches saved meanwhile
        self.indexer.thumbnails.drop_tenant(tenant_id)  # one an indexing run wrote meanwhile
        self.items.purge_deleted_text()
        self.items.checkpoint()
        return {"erased": tenant.to_dict(), **counts, **faces, "keys": keys, "vector_files": files}

    def item_id_for(self, tenant_id: str, path: str | os.PathLike[str]) -> str:
        """The id of a file's item, by its path (the CLI's way to show or delete one)."""
        key = str(Path(os.fspath(path)).resolve())
        item = self.items.find_source(tenant_id, key) or self.items.find_source(tenant_id, os.fspath(path))
        if item is None:
            raise InvalidRequestError(f"{path} is not indexed; list items to see what is")
        return item.id


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _date(value: str | None, what: str) -> str | None:
    return check_date(value, what) if value else None


def check_date(value: str, what: str) -> str:
    """``value`` if it is an ISO date or time, else an error naming the parameter."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"'{what}' must be an ISO date such as 2024-05-31, got {value!r}") from None
    return value


def outcome_error(outcome: IndexOutcome) -> FrugalsenseError:
    """The library error a failed outcome stands for (the HTTP layer raises it for a single upload)."""
    cls = error_for_code(outcome.error_code or "")
    if cls is FrugalsenseError or issubclass(cls, ServiceError):
        cls = InvalidRequestError
    return cls(outcome.error or "the item could not be indexed")
