"""Hybrid search: meaning (the shared vector space) and words (SQLite FTS5, BM25), fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) adds ``1 / (k + rank)`` over the ranked lists
an item appears in. It needs no score calibration between a cosine similarity and a BM25 score, and an item
found by both lists rises above one found by either alone. Every hit carries its reasons: the part whose vector
matched and how closely, the words found and in which field, the face of the person asked for.

    >>> rrf([[1, 2, 3], [3, 1]], k=60)[:2]
    [(1, 0.03252247488101534), (3, 0.03200204813108039)]
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from frugalsense.errors import InvalidRequestError
from frugalsense.ladder.ledger import CostReceipt
from frugalsense.search.encoders import ImageEncoder
from frugalsense.search.index import IndexCache
from frugalsense.search.storage import FaceLink, Filters, Item, SearchStore

__all__ = ["Mode", "Reason", "SearchHit", "SearchResults", "Searcher", "fts_query", "inside_words", "rrf"]

Mode = Literal["hybrid", "semantic", "keyword"]
MODES = ("hybrid", "semantic", "keyword")
#: the constant of reciprocal rank fusion; 60 is the published default and not sensitive
RRF_K = 60
#: candidates each ranked list contributes before fusion
DEPTH = 200
_TOKEN = re.compile(r"\w+", re.UNICODE)
_MARKED = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class Reason:
    """Why an item matched: ``kind`` is "meaning", "words", "face", "label" or "look"."""

    kind: str
    field: str
    detail: str
    score: float | None = None
    words: list[str] = dataclasses.field(default_factory=list)
    face_id: str | None = None
    person_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "field": self.field, "detail": self.detail}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.words:
            out["words"] = self.words
        if self.face_id:
            out["face_id"] = self.face_id
        if self.person_id:
            out["person_id"] = self.person_id
        return out


@dataclass(frozen=True)
class SearchHit:
    item: Item
    score: float
    reasons: list[Reason]
    faces: list[FaceLink]

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item.to_dict(),
            "url": f"/v1/items/{self.item.id}",
            "score": round(self.score, 6),
            "reasons": [r.to_dict() for r in self.reasons],
            "persons": sorted({f.person_name or f.person_id for f in self.faces if f.person_id}),
        }


@dataclass(frozen=True)
class SearchResults:
    query: str
    mode: str
    hits: list[SearchHit]
    took_ms: float
    receipt: CostReceipt | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query": self.query,
            "mode": self.mode,
            "took_ms": round(self.took_ms, 2),
            "hits": [h.to_dict() for h in self.hits],
        }
        if self.receipt is not None:
            out["receipt"] = self.receipt.to_dict()
        return out


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids: each id scores the sum of ``1 / (k + rank)`` (rank from 1), best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def inside_words(text: str, limit: int = 16) -> list[str]:
    """Query words worth looking for inside OCR text that lost its spaces: four characters or more (shorter
    ones, "the", "and", "of", match inside too many runs to mean anything).

    >>> inside_words("Soon Huat to the machinery")
    ['soon', 'huat', 'machinery']
    """
    return list(dict.fromkeys(w.lower() for w in _TOKEN.findall(text) if len(w) >= 4))[:limit]


def fts_query(text: str, limit: int = 32) -> str | None:
    """An FTS5 MATCH expression: any of the query's words, each quoted (so no word is read as an operator).

    >>> fts_query('Total "due" NEAR(now)')
    '"total" OR "due" OR "near" OR "now"'
    """
    words = list(dict.fromkeys(w.lower() for w in _TOKEN.findall(text)))[:limit]
    return " OR ".join(f'"{w}"' for w in words) or None


class Searcher:
    """Ranks a tenant's items for a text query, a picture, or filters alone."""

    def __init__(self, store: SearchStore, cache: IndexCache, encoder: ImageEncoder) -> None:
        self.store, self.cache, self.encoder = store, cache, encoder

    def search(
        self,
        tenant_id: str,
        text: str = "",
        *,
        filters: Filters | None = None,
        top_k: int = 20,
        mode: str = "hybrid",
    ) -> SearchResults:
        """Items for ``text`` (hybrid by default), restricted by ``filters``; with no text, the newest items that
        meet the filters."""
        started = time.perf_counter()
        filters = filters or Filters()
        _check(top_k, mode)
        allowed = self.store.filter_rowids(tenant_id, filters) if filters.active else None
        match = fts_query(text)
        semantic: list[tuple[int, float, str]] = []
        keyword: list[tuple[int, float]] = []
        joined: list[tuple[int, float]] = []
        phrases: list[list[int]] = []
        if text.strip():
            pending: Future[list[tuple[int, float, str]]] | None = None
            if mode != "keyword":
                # The text model and the matrix product release the GIL: on a second core they overlap the
                # full-text queries below, which roughly halves a hybrid query's latency.
                pending = _pool().submit(self._semantic, tenant_id, text, allowed)
            if mode != "semantic" and match:
                # A filter can leave few of the best keyword matches: look deeper before filtering.
                limit = DEPTH if allowed is None else 20 * DEPTH
                found = self.store.keyword(tenant_id, match, limit)
                keyword = [(r, s) for r, s in found if _ok(r, allowed)][:DEPTH]
                inside = inside_words(text)
                if inside:
                    grams = " OR ".join(f'"{w}"' for w in inside)
                    found = self.store.keyword_inside(tenant_id, grams, limit)
                    joined = [(r, s) for r, s in found if _ok(r, allowed)][:DEPTH]
                phrases = self._phrases(tenant_id, text, limit, allowed)
            if pending is not None:
                semantic = pending.result()
            lists = [[r for r, _, _ in semantic], [r for r, _ in keyword], [r for r, _ in joined], *phrases]
            fused = rrf(lists)
        elif filters.active:
            fused = [(r, 0.0) for r in self.store.recent_rowids(tenant_id, allowed, top_k)]
        else:
            raise InvalidRequestError("give a query, a picture or at least one filter (person, label, ...)")
        top = fused[:top_k]
        hits = self._hits(tenant_id, top, semantic, keyword, match, filters, [])
        self._explain_inside(tenant_id, hits, {r for r, _ in joined} - {r for r, _ in keyword}, text)
        return SearchResults(text, mode if text.strip() else "filter", hits, (time.perf_counter() - started) * 1e3)

    def _phrases(self, tenant_id: str, text: str, limit: int, allowed: set[int] | None) -> list[list[int]]:
        """Items holding the query's words as one phrase, with spaces and run together: the whole of a name or
        a question, found verbatim, is stronger evidence than its words found apart."""
        words = [w.lower() for w in _TOKEN.findall(text)][:32]
        if len(words) < 2:
            return []
        spaced = self.store.keyword(tenant_id, '"' + " ".join(words) + '"', limit)
        joined = self.store.keyword_inside(tenant_id, '"' + "".join(words) + '"', limit)
        return [[r for r, _ in found if _ok(r, allowed)][:DEPTH] for found in (spaced, joined)]

    def _semantic(self, tenant_id: str, text: str, allowed: set[int] | None) -> list[tuple[int, float, str]]:
        query = self.encoder.encode_texts([text])[0]
        return self.cache.get(tenant_id, self.encoder.name).search(query, DEPTH, allowed)

    def rank_by_example(
        self,
        tenant_id: str,
        vector: Any,
        near: list[tuple[int, int]],
        *,
        filters: Filters | None = None,
        top_k: int = 20,
    ) -> list[SearchHit]:
        """Items like a picture: its vector's neighbours fused with its near-duplicates (rowid, bits apart)."""
        filters = filters or Filters()
        _check(top_k, "hybrid")
        allowed = self.store.filter_rowids(tenant_id, filters) if filters.active else None
        semantic = (
            self.cache.get(tenant_id, self.encoder.name).search(vector, DEPTH, allowed)
            if vector is not None
            else []
        )
        near = [(r, d) for r, d in near if _ok(r, allowed)]
        fused = rrf([[r for r, _ in near], [r for r, _, _ in semantic]])[:top_k]
        return self._hits(tenant_id, fused, semantic, [], None, filters, near)

    # -- explanations ---------------------------------------------------------------------------------------

    def _explain_inside(self, tenant_id: str, hits: list[SearchHit], rowids: set[int], text: str) -> None:
        """Hits found only inside run-together text say which query words were found there."""
        chosen = [h.item.rowid for h in hits if h.item.rowid in rowids]
        found = self.store.words_inside(tenant_id, inside_words(text), chosen)
        for hit in hits:
            words = found.get(hit.item.rowid)
            if words:
                detail = "found inside the text read (written without spaces): " + ", ".join(words)
                hit.reasons.append(Reason("words", "text", detail, words=words))

    def _hits(
        self,
        tenant_id: str,
        top: list[tuple[int, float]],
        semantic: list[tuple[int, float, str]],
        keyword: list[tuple[int, float]],
        match: str | None,
        filters: Filters,
        near: list[tuple[int, int]],
    ) -> list[SearchHit]:
        rowids = [r for r, _ in top]
        items = self.store.items_by_rowid(tenant_id, rowids)
        faces = self.store.faces_of(tenant_id, [i.id for i in items.values()])
        meaning = {r: (s, part) for r, s, part in semantic}
        worded = {r for r, _ in keyword}
        snippets = self.store.snippets(tenant_id, match, [r for r in rowids if r in worded]) if match else {}
        bits = dict(near)
        wanted = set(filters.person_ids)
        hits = []
        for rowid, score in top:
            item = items.get(rowid)
            if item is None:
                continue  # deleted since it was ranked
            reasons: list[Reason] = []
            if rowid in bits:
                reasons.append(
                    Reason("look", "picture", f"near-duplicate picture ({bits[rowid]} of 64 bits differ)")
                )
            if rowid in meaning:
                similarity, part = meaning[rowid]
                reasons.append(Reason("meaning", part, _meaning_detail(item, part, similarity), similarity))
            for column, passage in snippets.get(rowid, {}).items():
                words = sorted({w.lower() for w in _MARKED.findall(passage)})
                reasons.append(Reason("words", column, passage, words=words))
            shown = faces.get(item.id, [])
            for face in shown:
                if wanted and (face.person_id in wanted or face.cluster_id in wanted):
                    who = face.person_name or face.person_id or f"unknown face cluster {face.cluster_id}"
                    reasons.append(
                        Reason(
                            "face",
                            f"page {face.page}",
                            f"shows {who}",
                            face_id=face.face_id,
                            person_id=face.person_id or face.cluster_id,
                        )
                    )
            for label in filters.labels:
                reasons.append(Reason("label", "labels", f"labelled {label!r}"))
            hits.append(SearchHit(item, score, reasons, shown))
        return hits


def _meaning_detail(item: Item, part: str, similarity: float) -> str:
    """Say what the matched part is: a picture's top labels and text, or the words spoken."""
    page = _page_of(item, part)
    bits = []
    if page is not None:
        labels = [f"{lab['name']} {lab['score']:.2f}" for lab in page.get("labels") or []][:3]
        if labels:
            bits.append("looks like " + ", ".join(labels))
        text = " ".join(line["text"] for line in page.get("text") or [])
        if text.strip():
            bits.append(f"reads {text[:80]!r}")
    elif part.startswith("speech"):
        transcript = (item.result.get("transcript") or {}).get("text", "")
        if transcript:
            bits.append(f"says {transcript[:80]!r}")
    suffix = f": {'; '.join(bits)}" if bits else ""
    return f"{part} is close in meaning (cosine {similarity:.2f}){suffix}"


def _page_of(item: Item, part: str) -> dict[str, Any] | None:
    pages = item.result.get("pages") or []
    if not pages:
        return None
    if part == "image":
        return dict(pages[0])
    if part.startswith("page "):
        number = int(part.split()[1])
        return next((dict(p) for p in pages if p.get("page") == number), None)
    if part.startswith("frame "):
        when = float(part.split()[1].rstrip("s"))
        return min((dict(p) for p in pages), key=lambda p: abs(float(p.get("time_s") or 0.0) - when))
    return None


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(2, thread_name_prefix="search")
        return _POOL


def _ok(rowid: int, allowed: set[int] | None) -> bool:
    return allowed is None or rowid in allowed


def _check(top_k: int, mode: str) -> None:
    if not 1 <= top_k <= 1000:
        raise InvalidRequestError(f"top_k must be between 1 and 1000, got {top_k}")
    if mode not in MODES:
        raise InvalidRequestError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
