"""How a text query's ranked lists are fused: weighted reciprocal rank, and the query found as an approximate
phrase in text that OCR or speech recognition got slightly wrong. Real SQLite, real MiniLM vectors; the items are
written directly (their text as if read), so no OCR runs and every misreading is the one the test means."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugalsense.search import SearchService
from frugalsense.search.query import (
    PHRASE_DEPTH,
    Fusion,
    SearchHit,
    find_phrase,
    letters,
    phrase_start,
    rrf,
)
from frugalsense.settings import Settings
from frugalsense.store.items import NewItem

#: (source, modality, lines read on the page, transcript)
DOCUMENTS = [
    # The question as OCR read it: the first two letters lost, the second word whole.
    (
        "storage-form.png",
        "document",
        [
            "COMPOUND PHYSICAL DATA A30",
            "ORAGE RECOMMENDATIONS:",
            "Refrigerate in amber bottle at no more than 8 C.",
        ],
        "",
    ),
    # Both words, many times, but never together: the better bag of words.
    (
        "committee-memo.png",
        "document",
        [
            "Recommendations of the storage committee",
            "Storage of old records and storage of samples",
            "More recommendations below",
        ],
        "",
    ),
    ("receipt.jpg", "document", ["SOON HUAT MACHINERY ENTERPRISE", "TOTAL 12.00"], ""),
    ("steel.jpg", "image", ["STEEL WHEEL CO."], ""),
    # Speech recognition misheard two words of the phrase.
    ("meeting.ogg", "audio", [], "hello everyone the quartely budget reveiw meeting moves to monday"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[SearchService]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fusion"), model_cache=model_dir)
    with SearchService.open(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def tenant(service: SearchService) -> str:
    tenant_id = service.store.create_tenant("fusion").id
    texts = ["\n".join(lines) or transcript for _, _, lines, transcript in DOCUMENTS]
    vectors = service.encoder.encode_texts(texts)
    items = []
    for (source, modality, lines, transcript), vector in zip(DOCUMENTS, vectors, strict=True):
        result: dict[str, object] = {"pages": [{"page": 1, "text": [{"text": line} for line in lines]}]}
        if transcript:
            result = {"pages": [], "transcript": {"text": transcript}}
        items.append(
            NewItem(
                source=source,
                sha256=hashlib.sha256(source.encode()).hexdigest(),
                modality=modality,
                mime="application/octet-stream",
                byte_size=1,
                pages=1,
                duration_s=None,
                captured_at="2024-01-01T00:00:00",
                nsfw=None,
                flagged=False,
                phash=None,
                encoder=service.encoder.name,
                result=result,
                text="\n".join(lines),
                transcript=transcript,
                labels={},
                faces=[],
                vectors=[("speech 0s" if transcript else "page 1", vector)],
            )
        )
    service.items.put_items(tenant_id, items)
    return tenant_id


def _sources(hits: list[SearchHit]) -> list[str]:
    return [h.item.source for h in hits]


def _phrase_reasons(hit: SearchHit) -> list[str]:
    return [r.detail for r in hit.reasons if r.kind == "words" and "the query as one phrase" in r.detail]


@pytest.fixture()
def without_phrases(service: SearchService) -> Iterator[None]:
    service.searcher.fusion = Fusion(phrase_similarity=None)
    try:
        yield
    finally:
        service.searcher.fusion = Fusion()


def test_weights_scale_each_lists_votes() -> None:
    assert [k for k, _ in rrf([[1, 2], [2, 1]])] == [1, 2]  # a tie, broken by id
    assert [k for k, _ in rrf([[1, 2], [2, 1]], weights=[1.0, 3.0])] == [2, 1]
    scores = dict(rrf([[7], [7, 8]], k=60, weights=[0.5, 2.0]))
    assert scores[7] == pytest.approx(0.5 / 61 + 2.0 / 61) and scores[8] == pytest.approx(2.0 / 62)
    with pytest.raises(ValueError, match="2 weights for 3"):
        rrf([[1], [2], [3]], weights=[1.0, 1.0])


def test_a_phrase_is_found_through_ocr_errors_and_its_edits_counted() -> None:
    query = letters("Prev. or Recommended Supplier")
    text = letters("VENDOR | Prt.or Recommended Suppller | TERMS 15 Net")
    found = find_phrase(query, text, 5)
    assert found is not None
    edits, end = found
    assert edits == 3  # "ev" read as "t" (two edits), the "i" of "Supplier" lost
    assert text[phrase_start(query, text, edits, end) : end] == "prtorrecommendedsuppller"
    assert find_phrase(query, text, 2) is None
    assert find_phrase(query, letters("Recommended by: the supplier, or previous one"), 5) is None


def _distance(a: str, b: str) -> int:
    """Plain Levenshtein distance, the textbook table."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def test_the_trigram_filter_never_loses_a_match_and_the_stretch_reported_is_right() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(400):
        pattern = "".join(rng.choice("abc") for _ in range(rng.randint(5, 12)))
        noise = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 40)))
        cut = rng.randint(0, len(noise))
        copy = list(pattern)
        for _ in range(rng.randint(0, 3)):  # plant the pattern, slightly damaged
            copy[rng.randrange(len(copy))] = rng.choice("abcd")
        text = noise[:cut] + "".join(copy) + noise[cut:]
        most = rng.randint(0, 3)
        best = min(_distance(pattern, text[i:j]) for i in range(len(text) + 1) for j in range(i, len(text) + 1))
        found = find_phrase(pattern, text, most)
        if best > most:
            assert found is None, (pattern, text, most)
            continue
        assert found is not None and found[0] == best, (pattern, text, most, found, best)
        start = phrase_start(pattern, text, found[0], found[1])
        assert _distance(pattern, text[start : found[1]]) == best
        checked += 1
    assert checked > 100


def test_a_misread_question_beats_its_words_found_apart(service: SearchService, tenant: str) -> None:
    hits = service.search(tenant, "STORAGE RECOMMENDATIONS", top_k=5).hits
    assert _sources(hits)[0] == "storage-form.png"
    [reason] = _phrase_reasons(hits[0])
    assert "'ORAGE RECOMMENDATIONS:'" in reason and "2 of its 22 letters differ" in reason
    scored = next(r for r in hits[0].reasons if r.detail == reason)
    assert scored.field == "text" and scored.score == pytest.approx(1 - 2 / 22)
    memo = next(h for h in hits if h.item.source == "committee-memo.png")
    assert not _phrase_reasons(memo)  # its words are there, but not as the phrase
    assert any(r.kind == "words" and "recommendations" in r.words for r in memo.reasons)


def test_without_the_phrase_list_the_bag_of_words_wins(
    service: SearchService, tenant: str, without_phrases: None
) -> None:
    hits = service.search(tenant, "STORAGE RECOMMENDATIONS", top_k=5).hits
    assert _sources(hits)[0] == "committee-memo.png"
    assert not any(_phrase_reasons(h) for h in hits)


def test_keyword_mode_uses_the_phrase_list_and_semantic_mode_does_not(service: SearchService, tenant: str) -> None:
    words = service.search(tenant, "STORAGE RECOMMENDATIONS", mode="keyword", top_k=5).hits
    assert _sources(words)[0] == "storage-form.png" and _phrase_reasons(words[0])
    meaning = service.search(tenant, "STORAGE RECOMMENDATIONS", mode="semantic", top_k=5).hits
    assert not any(_phrase_reasons(h) for h in meaning)


def test_a_misheard_phrase_is_quoted_from_the_transcript(service: SearchService, tenant: str) -> None:
    hits = service.search(tenant, "quarterly budget review meeting", top_k=3).hits
    assert _sources(hits)[0] == "meeting.ogg"
    [reason] = [r for r in hits[0].reasons if "the query as one phrase" in r.detail]
    assert reason.field == "transcript"
    assert "'quartely budget reveiw meeting'" in reason.detail and "3 of its 28 letters differ" in reason.detail


def test_short_queries_and_filtered_out_items_get_no_phrase_match(service: SearchService, tenant: str) -> None:
    hits = service.search(tenant, "eel", top_k=5).hits  # inside "steel" and "wheel", but means neither
    assert not any(_phrase_reasons(h) for h in hits)
    images = service.filters(tenant, modality="image")
    hits = service.search(tenant, "STORAGE RECOMMENDATIONS", filters=images, top_k=5).hits
    assert _sources(hits) == ["steel.jpg"]
    assert PHRASE_DEPTH >= 20  # deep enough to lift a candidate into the first page of hits
