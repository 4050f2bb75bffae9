"""Hybrid search: meaning (the shared vector space) and words (SQLite FTS5, BM25), fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009) adds ``1 / (k + rank)`` over the ranked lists
an item appears in. It needs no score calibration between a cosine similarity and a BM25 score, and an item
found by both lists rises above one found by either alone. Every hit carries its reasons: the part whose vector
matched and how closely, the words found and in which field, the face of the person asked for.

    >>> rrf([[1, 2, 3], [3, 1]], k=60)[:2]
    [(1, 0.03252247488101534), (3, 0.032266458495966696)]

Words are looked for four ways: any of the query's words (BM25), the words inside text whose spaces were lost,
the exact phrase, and -- for the best fused candidates -- the query as an approximate phrase: its letters, in
order, in a stretch of the text read that differs from them by at most a fifth of the letters (an edit distance
that skips spaces and punctuation), so a question or a company name that OCR misread by a letter or two
("Prt.or Recommended Suppller") still counts as found whole. The items with the closest such stretch form one
more ranked list in the fusion. The semantic list's weight and that similarity are `Fusion` settings, chosen on
one half of the benchmark's queries and checked on the other.
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

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import CostReceipt
from frugalsense.search.encoders import ImageEncoder
from frugalsense.search.index import IndexCache
from frugalsense.store.base import SearchStore
from frugalsense.store.items import FaceLink, Filters, Item

__all__ = [
    "Fusion",
    "Mode",
    "PhraseMatch",
    "Reason",
    "SearchHit",
    "SearchResults",
    "Searcher",
    "find_phrase",
    "inside_words",
    "letters",
    "phrase_start",
    "query_words",
    "rrf",
]

Mode = Literal["hybrid", "semantic", "keyword"]
MODES = ("hybrid", "semantic", "keyword")
#: the constant of reciprocal rank fusion; 60 is the published default and not sensitive
RRF_K = 60
#: candidates each ranked list contributes before fusion
DEPTH = 200
#: the least similarity (1 - edits / the query's letters) at which the query counts as found as a phrase in the
#: text read; chosen on the even-numbered queries of ``bench/search.py`` (0.7, 0.8, 0.9 tried; the strictest of
#: the best), checked on the odd ones
PHRASE_SIMILARITY = 0.8
#: fused candidates searched for the query as an approximate phrase: the list only reorders these
PHRASE_DEPTH = 30
#: shorter queries are left to the other lists: three or four letters turn up inside too many longer words
#: ("eel" in "steel", "tent" in "content") to mean anything
PHRASE_MIN_LETTERS = 5
#: a longer query is looked for by its first letters (the cost grows with the query's letters times the text's)
PHRASE_MAX_LETTERS = 96
_TOKEN = re.compile(r"\w+", re.UNICODE)
_MARKED = re.compile(r"\[([^\]]+)\]")
_NOT_LETTERS = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Fusion:
    """How a text query's ranked lists are fused: the semantic list's weight (every word list weighs 1) and the
    similarity the approximate-phrase list asks for (None leaves that list out)."""

    semantic_weight: float = 1.0
    phrase_similarity: float | None = PHRASE_SIMILARITY


@dataclass(frozen=True)
class PhraseMatch:
    """The query found as an approximate phrase: ``edits`` of its ``size`` letters differ, and the stretch ends
    at ``end`` in the item's letters (see `letters`)."""

    edits: int
    size: int
    end: int

    @property
    def similarity(self) -> float:
        return 1.0 - self.edits / self.size


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


def rrf(
    rankings: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids: each id scores the sum of ``weight / (k + rank)`` (rank from 1) over the lists it
    is in, best first; every weight is 1 unless ``weights`` (one per list) says otherwise.

    >>> [key for key, _ in rrf([[1, 2], [2, 1]], weights=[2.0, 1.0])]
    [1, 2]
    """
    if weights is not None and len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} ranked lists")
    scores: dict[int, float] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def letters(text: str) -> str:
    """The text in lower case with everything but letters and digits removed: how a query is compared with OCR
    text that lost or gained spaces and punctuation.

    >>> letters("Prt.or Recommended  Suppller:")
    'prtorrecommendedsuppller'
    """
    return _NOT_LETTERS.sub("", text.lower())


def find_phrase(pattern: str, text: str, max_edits: int) -> tuple[int, int] | None:
    """The fewest edits (a character changed, dropped or added) that turn ``pattern`` into some stretch of
    ``text``, and where the best such stretch ends (exclusive); None when every stretch needs more than
    ``max_edits``. Approximate string matching (Sellers 1980), one numpy pass per character of the pattern,
    over only the part of the text that the trigram count allows to hold a match.

    >>> find_phrase("recommended", "prtorrecomendedsuppller", 2)
    (1, 15)
    >>> find_phrase("recommended", "prtorrecomendedsuppller", 0) is None
    True
    """
    size = len(pattern)
    if not size or not text:
        return None
    codes, haystack = _codes(pattern), _codes(text)
    offset = 0
    # Each edit spoils at most three of the pattern's trigrams, so a match keeps at least `need` of them, all
    # within a stretch of at most size + max_edits characters (the q-gram lemma; Ukkonen 1992).
    need = size - 2 - 3 * max_edits
    if need >= 1:
        span = _possible_span(codes, haystack, size + max_edits, need)
        if span is None:
            return None
        offset, stop = span
        haystack = haystack[offset:stop]
    row = _edits_ending(codes, haystack)
    end = int(np.argmin(row))
    edits = int(row[end])
    return (edits, offset + end) if edits <= max_edits else None


def phrase_start(pattern: str, text: str, edits: int, end: int) -> int:
    """Where the stretch that `find_phrase` found ending at ``end`` begins: the same alignment, read backwards.

    >>> phrase_start("recommended", "prtorrecomendedsuppller", 1, 15)
    5
    """
    first = max(0, end - len(pattern) - edits)
    row = _edits_ending(_codes(pattern[::-1]), _codes(text[first:end][::-1]))
    return end - int(np.argmin(row))


def _codes(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _edits_ending(pattern: npt.NDArray[np.uint32], text: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    """For each end j (0 to len(text)), the fewest edits turning ``pattern`` into some stretch ``text[i:j]``.

    Row by row of the usual edit-distance table, with a free start anywhere in the text; the one dependency
    inside a row (a character of the text skipped: left neighbour + 1) is a running minimum of ``cell - j``."""
    steps = np.arange(len(text) + 1, dtype=np.int64)
    row = np.zeros(len(text) + 1, np.int64)
    for i, code in enumerate(pattern, start=1):
        best = np.empty_like(row)
        best[0] = i
        np.minimum(row[:-1] + (text != code), row[1:] + 1, out=best[1:])
        row = np.minimum.accumulate(best - steps) + steps
    return row


def _trigrams(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64]:
    wide = codes.astype(np.uint64)
    if len(wide) < 3:
        return np.zeros(0, np.uint64)
    shifted: npt.NDArray[np.uint64] = (wide[:-2] << np.uint64(42)) | (wide[1:-1] << np.uint64(21)) | wide[2:]
    return shifted


def _possible_span(
    pattern: npt.NDArray[np.uint32], text: npt.NDArray[np.uint32], width: int, need: int
) -> tuple[int, int] | None:
    """The stretch of ``text`` from the first to the last window of ``width`` characters holding at least
    ``need`` of the pattern's trigrams, or None when no window does."""
    hits = np.isin(_trigrams(text), _trigrams(pattern))
    window = width - 2  # trigrams that start inside a stretch of `width` characters
    counts = np.concatenate((np.zeros(1, np.int64), np.cumsum(hits, dtype=np.int64)))
    sums = counts[-1:] if len(hits) <= window else counts[window:] - counts[:-window]
    starts = np.flatnonzero(sums >= need)
    if not len(starts):
        return None
    return int(starts[0]), min(len(text), int(starts[-1]) + width)


def inside_words(text: str, limit: int = 16) -> list[str]:
    """Query words worth looking for inside OCR text that lost its spaces: four characters or more (shorter
    ones, "the", "and", "of", match inside too many runs to mean anything).

    >>> inside_words("Soon Huat to the machinery")
    ['soon', 'huat', 'machinery']
    """
    return list(dict.fromkeys(w.lower() for w in _TOKEN.findall(text) if len(w) >= 4))[:limit]


def query_words(text: str, limit: int = 32) -> list[str]:
    """The query's words, lower case, each once (the store matches any of them; operators are plain words).

    >>> query_words('Total "due" NEAR(now) total')
    ['total', 'due', 'near', 'now']
    """
    return list(dict.fromkeys(w.lower() for w in _TOKEN.findall(text)))[:limit]


class Searcher:
    """Ranks a tenant's items for a text query, a picture, or filters alone."""

    def __init__(
        self, store: SearchStore, cache: IndexCache, encoder: ImageEncoder, fusion: Fusion | None = None
    ) -> None:
        self.store, self.cache, self.encoder = store, cache, encoder
        self.fusion = fusion or Fusion()

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
        words = query_words(text)
        semantic: list[tuple[int, float, str]] = []
        keyword: list[tuple[int, float]] = []
        joined: list[tuple[int, float]] = []
        phrases: list[list[int]] = []
        approximate: dict[int, PhraseMatch] = {}
        known: dict[int, Item] = {}
        if text.strip():
            pending: Future[list[tuple[int, float, str]]] | None = None
            if mode != "keyword":
                # The text model and the matrix product release the GIL: on a second core they overlap the
                # full-text queries below, which roughly halves a hybrid query's latency.
                pending = _pool().submit(self._semantic, tenant_id, text, allowed)
            if mode != "semantic" and words:
                # A filter can leave few of the best keyword matches: look deeper before filtering.
                limit = DEPTH if allowed is None else 20 * DEPTH
                found = self.store.keyword(tenant_id, words, limit)
                keyword = [(r, s) for r, s in found if _ok(r, allowed)][:DEPTH]
                inside = inside_words(text)
                if inside:
                    found = self.store.keyword_inside(tenant_id, inside, limit)
                    joined = [(r, s) for r, s in found if _ok(r, allowed)][:DEPTH]
                phrases = self._phrases(tenant_id, text, limit, allowed)
            if pending is not None:
                semantic = pending.result()
            lists = [[r for r, _, _ in semantic], [r for r, _ in keyword], [r for r, _ in joined], *phrases]
            weights = [self.fusion.semantic_weight] + [1.0] * (len(lists) - 1)
            fused = rrf(lists, weights=weights)
            if mode != "semantic":
                approximate = self._approximate(tenant_id, text, fused[:PHRASE_DEPTH], known)
            if approximate:
                fused = rrf([*lists, list(approximate)], weights=[*weights, 1.0])
        elif filters.active:
            fused = [(r, 0.0) for r in self.store.recent_rowids(tenant_id, allowed, top_k)]
        else:
            raise InvalidRequestError("give a query, a picture or at least one filter (person, label, ...)")
        top = fused[:top_k]
        hits = self._hits(tenant_id, top, semantic, keyword, words, filters, [], known)
        self._explain_inside(tenant_id, hits, {r for r, _ in joined} - {r for r, _ in keyword}, text)
        self._explain_phrase(hits, approximate, text)
        return SearchResults(text, mode if text.strip() else "filter", hits, (time.perf_counter() - started) * 1e3)

    def _phrases(self, tenant_id: str, text: str, limit: int, allowed: set[int] | None) -> list[list[int]]:
        """Items holding the query's words as one phrase, with spaces and run together: the whole of a name or
        a question, found verbatim, is stronger evidence than its words found apart."""
        words = [w.lower() for w in _TOKEN.findall(text)][:32]
        if len(words) < 2:
            return []
        spaced = self.store.keyword(tenant_id, [" ".join(words)], limit)
        joined = self.store.keyword_inside(tenant_id, ["".join(words)], limit)
        return [[r for r, _ in found if _ok(r, allowed)][:DEPTH] for found in (spaced, joined)]

    def _approximate(
        self, tenant_id: str, text: str, candidates: list[tuple[int, float]], known: dict[int, Item]
    ) -> dict[int, PhraseMatch]:
        """The candidates (in fused order) whose text read or transcript holds the query as an approximate
        phrase with the fewest edits found among them, if that is within `Fusion.phrase_similarity`: only the
        best match votes (an item whose letters merely come close by running unrelated words together, e.g.
        "samples More recommendations" for "storage recommendations", is left out). Fills ``known``."""
        least = self.fusion.phrase_similarity
        pattern = letters(text)[:PHRASE_MAX_LETTERS]
        if least is None or len(pattern) < PHRASE_MIN_LETTERS or not candidates:
            return {}
        most = int((1.0 - least) * len(pattern) + 1e-9)
        known.update(self.store.items_by_rowid(tenant_id, [r for r, _ in candidates]))
        found: dict[int, PhraseMatch] = {}
        for rowid, _ in candidates:
            item = known.get(rowid)
            if item is None:
                continue
            match = find_phrase(pattern, letters("\n".join(line for _, line in _read(item))), most)
            if match is not None:
                found[rowid] = PhraseMatch(match[0], len(pattern), match[1])
                most = min(most, match[0])  # nothing worse than the best so far can be kept
        return {r: m for r, m in found.items() if m.edits == most}

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
        return self._hits(tenant_id, fused, semantic, [], [], filters, near)

    # -- explanations ---------------------------------------------------------------------------------------

    def _explain_phrase(self, hits: list[SearchHit], found: dict[int, PhraseMatch], text: str) -> None:
        """Hits holding the query as an approximate phrase quote the stretch read and say how close it is."""
        pattern = letters(text)[:PHRASE_MAX_LETTERS]
        for hit in hits:
            match = found.get(hit.item.rowid)
            if match is None:
                continue
            lines = _read(hit.item)
            start = phrase_start(pattern, letters("\n".join(line for _, line in lines)), match.edits, match.end)
            field, quoted = _quote(lines, start, match.end)
            how = "exactly" if not match.edits else f"{match.edits} of its {match.size} letters differ"
            detail = f"reads {quoted!r}: the query as one phrase ({how}; spaces and punctuation ignored)"
            hit.reasons.append(Reason("words", field, detail, match.similarity))

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
        words: list[str],
        filters: Filters,
        near: list[tuple[int, int]],
        known: dict[int, Item] | None = None,
    ) -> list[SearchHit]:
        rowids = [r for r, _ in top]
        items = {r: known[r] for r in rowids if known and r in known}
        items.update(self.store.items_by_rowid(tenant_id, [r for r in rowids if r not in items]))
        faces = self.store.faces_of(tenant_id, [i.id for i in items.values()])
        meaning = {r: (s, part) for r, s, part in semantic}
        worded = {r for r, _ in keyword}
        snippets = self.store.snippets(tenant_id, words, [r for r in rowids if r in worded]) if words else {}
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


def _read(item: Item) -> list[tuple[str, str]]:
    """The lines of text an item holds, as (field, line): the text read on each picture, then the transcript."""
    lines = [
        ("text", str(line.get("text") or ""))
        for page in item.result.get("pages") or []
        for line in page.get("text") or []
    ]
    transcript = (item.result.get("transcript") or {}).get("text") or ""
    if transcript:
        lines.append(("transcript", str(transcript)))
    return lines


def _quote(lines: list[tuple[str, str]], start: int, end: int, limit: int = 120) -> tuple[str, str]:
    """The field and the words of ``lines`` that hold letters ``start`` to ``end`` (counted as by `letters` over
    the lines joined)."""
    field, words, seen = "", [], 0
    for where, line in lines:
        for word in line.split():
            size = len(letters(word))
            if size and seen < end and seen + size > start:
                field = field or where
                words.append(word)
            seen += size
            if seen >= end:
                break
        if seen >= end:
            break
    quoted = " ".join(words)
    return field or "text", quoted if len(quoted) <= limit else quoted[: limit - 1] + "…"


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
