"""Search: one index across photos, scans, recordings and videos, searched by meaning, words, people and look.

    from frugalsense.search import SearchService
    from frugalsense.settings import Settings
    with SearchService.open(Settings()) as service:
        tenant = service.store.create_tenant("home").id
        service.index_paths(tenant, ["scans/"])
        [hit.item.source for hit in service.search(tenant, "electricity bill").hits][:1]
    # ['/home/ada/scans/2024-03-edf.pdf']

See docs/search.md for the design and the measured quality.
"""

from __future__ import annotations

from frugalsense.search.encoders import (
    ConseEncoder,
    ImageEncoder,
    OnnxClipEncoder,
    load_encoder,
    page_vector,
    register_encoder,
)
from frugalsense.search.index import IndexCache, SemanticIndex
from frugalsense.search.ingest import Indexer, IndexOutcome, IndexSummary
from frugalsense.search.query import Reason, Searcher, SearchHit, SearchResults, rrf
from frugalsense.search.service import SearchService
from frugalsense.search.thumbnails import Thumbnails
from frugalsense.store.base import SearchStore
from frugalsense.store.items import FaceLink, Filters, Item

__all__ = [
    "ConseEncoder",
    "FaceLink",
    "Filters",
    "ImageEncoder",
    "IndexCache",
    "IndexOutcome",
    "IndexSummary",
    "Indexer",
    "Item",
    "OnnxClipEncoder",
    "Reason",
    "SearchHit",
    "SearchResults",
    "SearchService",
    "SearchStore",
    "Searcher",
    "SemanticIndex",
    "Thumbnails",
    "load_encoder",
    "page_vector",
    "register_encoder",
    "rrf",
]
