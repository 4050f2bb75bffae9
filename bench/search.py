"""Search quality and speed on ../shared/eval, printed as tables.

    python bench/search.py                 # everything (about 10 minutes on 2 cores)
    python bench/search.py --only scale    # the 100,000-item latency test alone

Quality: text-to-image (ImageNet class name -> the 500 sample photos), receipts (SROIE company name -> 94
receipts), forms (a FUNSD question's text -> 149 forms), people (a person -> faces-deepface photos). The ConSE
name template is chosen on the even-numbered ImageNet rows and checked on the odd ones; so are the hybrid
fusion's settings (`Fusion`: the semantic list's weight, the approximate-phrase similarity), on the even rows of
the ImageNet, receipt and form queries together. Speed: indexing throughput (items per CPU-second, i.e. per core)
and query latency over 100,000 synthetic items.

    python bench/search.py --only imagenet,receipts,forms   # the quality parts the fusion is chosen on
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import deepface_identities, eval_dir, funsd, imagenet_sample, sroie
from frugalsense.search import SearchService
from frugalsense.search.encoders import ConseEncoder, normalize
from frugalsense.search.ingest import IndexSummary
from frugalsense.search.query import Fusion
from frugalsense.settings import Settings
from frugalsense.store.items import NewItem

MODES = ("hybrid", "semantic", "keyword")
PARTS = ("imagenet", "receipts", "forms", "people", "audio")
#: fusion settings tried, in order of preference when they tie: plain RRF weights first, then no phrase list,
#: then the strictest similarity
FUSIONS = [Fusion(w, t) for w in (1.0, 0.5) for t in (None, 0.9, 0.8, 0.7)]
#: the sets whose mean hybrid R@1 on the calibration half chooses the fusion (forms: the headline relevance)
HEADLINE = ("imagenet", "receipts", "forms, any form asking it")

Queries = list[tuple[str, set[str]]]
#: a query set's name -> (tenant, queries), for the fusion table
QuerySets = dict[str, tuple[str, Queries]]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print(f"\n{title}")
    cells = [
        [str(c) for c in header],
        *[[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def ranks(service: SearchService, tenant: str, queries: Queries, mode: str) -> list[int | None]:
    """1-based rank of the first relevant item for each (query, relevant sources), None when not in the top 10."""
    out: list[int | None] = []
    for text, relevant in queries:
        hits = service.search(tenant, text, mode=mode, top_k=10).hits
        out.append(next((i for i, h in enumerate(hits, 1) if h.item.source in relevant), None))
    return out


def scores(found: list[int | None]) -> tuple[float, float, float]:
    r1 = sum(1 for r in found if r == 1) / len(found)
    r10 = sum(1 for r in found if r is not None) / len(found)
    mrr = sum(1.0 / r for r in found if r is not None) / len(found)
    return r1, r10, mrr


def index(service: SearchService, tenant: str, paths: list[Path]) -> IndexSummary:
    summary = service.index_paths(tenant, [str(p) for p in paths], workers=2)
    failed = summary.counts["failed"]
    if failed:
        print(f"  {failed} failed: {summary.to_dict()['failed'][:2]}", file=sys.stderr)
    return summary


def throughput_row(name: str, summary: IndexSummary, unit: Callable[[IndexSummary], float]) -> list[object]:
    done = [o for o in summary.outcomes if o.receipt is not None]
    cpu = [o.receipt.cpu_seconds for o in done if o.receipt is not None]
    amount = unit(summary)
    return [
        name,
        len(done),
        statistics.median(cpu) if cpu else 0.0,
        amount / max(sum(cpu), 1e-9),
        amount / max(summary.wall_s, 1e-9),
    ]


def bench_quality(service: SearchService, throughput: list[list[object]], parts: Sequence[str] = PARTS) -> None:
    sets: QuerySets = {}
    if "imagenet" in parts:
        bench_imagenet(service, throughput, sets)
    if "receipts" in parts:
        bench_receipts(service, throughput, sets)
    if "forms" in parts:
        bench_forms(service, throughput, sets)
    if sets:
        bench_fusion(service, sets)
    if "people" in parts:
        bench_people(service, throughput)
    if "audio" in parts:
        bench_audio(service, throughput)


def bench_imagenet(service: SearchService, throughput: list[list[object]], sets: QuerySets) -> None:
    tenant = service.store.create_tenant("imagenet").id
    sample = imagenet_sample()
    names = {}
    for line in (eval_dir() / "zeroshot-imagenet" / "images.csv").read_text().splitlines()[1:]:
        parts = line.split(",")
        names[int(parts[1])] = parts[-1]
    summary = index(service, tenant, [p for p, _ in sample])
    throughput.append(throughput_row("photos (ImageNet)", summary, lambda s: float(s.counts["added"])))
    queries = [(names[c], {str(p.resolve())}) for p, c in sample]
    rows = [["all 500", mode, *scores(ranks(service, tenant, queries, mode))] for mode in MODES]
    rows += template_rows(service, tenant, queries)
    sets["imagenet"] = (tenant, queries)
    table(
        "Text to image: query = ImageNet class name, corpus = 500 photos",
        ["set", "mode", "R@1", "R@10", "MRR"],
        rows,
    )


def bench_receipts(service: SearchService, throughput: list[list[object]], sets: QuerySets) -> None:
    tenant = service.store.create_tenant("sroie").id
    receipts = list(sroie())
    summary = index(service, tenant, [p for p, _, _ in receipts])
    throughput.append(throughput_row("receipts (SROIE)", summary, lambda s: float(s.counts["added"])))
    companies: dict[str, set[str]] = {}
    for path, _, key in receipts:
        companies.setdefault(key["company"], set()).add(str(path.resolve()))
    queries = [(key["company"], companies[key["company"]]) for _, _, key in receipts]
    sets["receipts"] = (tenant, queries)
    rows = [[mode, *scores(ranks(service, tenant, queries, mode))] for mode in MODES]
    table("Receipts: query = company name (SROIE key), corpus = 94 receipts", ["mode", "R@1", "R@10", "MRR"], rows)


def bench_forms(service: SearchService, throughput: list[list[object]], sets: QuerySets) -> None:
    tenant = service.store.create_tenant("funsd").id
    forms = list(funsd())
    summary = index(service, tenant, [p for p, _, _ in forms])
    throughput.append(throughput_row("forms (FUNSD)", summary, lambda s: float(s.counts["added"])))
    queries: Queries = []
    shared: Queries = []
    having: dict[str, set[str]] = {}  # question text -> forms that ask it (templates repeat questions)
    for path, _, entities in forms:
        for e in entities:
            if e.get("label") == "question":
                having.setdefault(" ".join(str(e["text"]).lower().split()), set()).add(str(path.resolve()))
    for path, _, entities in forms:
        questions = [str(e["text"]).strip() for e in entities if e.get("label") == "question"]
        questions = [q for q in questions if len(q.split()) >= 2] or questions
        if questions:
            question = max(questions, key=len)
            queries.append((question, {str(path.resolve())}))
            shared.append((question, having[" ".join(question.lower().split())]))
    sets["forms, this form"] = (tenant, queries)
    sets["forms, any form asking it"] = (tenant, shared)
    rows = [["this form", mode, *scores(ranks(service, tenant, queries, mode))] for mode in MODES]
    rows += [["any form asking it", mode, *scores(ranks(service, tenant, shared, mode))] for mode in MODES]
    table(
        f"Forms: query = the longest question of a FUNSD form ({len(queries)} forms), corpus = 149 forms",
        ["relevant", "mode", "R@1", "R@10", "MRR"],
        rows,
    )


def bench_people(service: SearchService, throughput: list[list[object]]) -> None:
    tenant = service.store.create_tenant("people").id
    identities = deepface_identities()
    by_person: dict[str, list[Path]] = {}
    for path, who in sorted(identities.items()):
        by_person.setdefault(who, []).append(path)
    people = service.gallery.create_collection(tenant, "people")
    persons = {}
    for who, paths in by_person.items():
        persons[who] = service.gallery.create_person(tenant, people.id, who)
        service.gallery.enrol(tenant, persons[who].id, paths[0], face_index=None)
    rest = [p for paths in by_person.values() for p in paths[1:]]
    summary = index(service, tenant, rest)
    throughput.append(throughput_row("photos with faces (deepface)", summary, lambda s: float(s.counts["added"])))
    rows = []
    tp = fp = fn = 0
    for who, paths in by_person.items():
        want = {str(p.resolve()) for p in paths[1:]}
        hits = service.search(tenant, "", filters=service.filters(tenant, person=persons[who].id), top_k=100).hits
        got = {h.item.source for h in hits}
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        rows.append(
            [who, len(want), len(got), len(got & want) / max(1, len(got)), len(got & want) / max(1, len(want))]
        )
    rows.append(["all (micro)", tp + fn, tp + fp, tp / max(1, tp + fp), tp / max(1, tp + fn)])
    table(
        "People: query = a person (one enrolled photo each), corpus = the other faces-deepface photos",
        ["person", "photos", "returned", "precision", "recall"],
        rows,
    )


def bench_audio(service: SearchService, throughput: list[list[object]]) -> None:
    tenant = service.store.create_tenant("audio").id
    voice = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "voice-note.ogg"
    with tempfile.TemporaryDirectory() as folder:
        long = Path(folder) / "long.wav"
        write_repeated(voice, long, service.settings, times=20)
        summary = index(service, tenant, [voice, long])
    throughput.append(
        throughput_row("audio (minutes)", summary, lambda s: sum(o.duration_s or 0.0 for o in s.outcomes) / 60.0)
    )


def bench_fusion(service: SearchService, sets: QuerySets) -> None:
    """Hybrid R@1 of each fusion setting on the calibration (even) and check (odd) queries of every set; the
    setting with the best mean R@1 over the headline sets on the calibration half is chosen."""
    names = list(sets)
    rows: list[list[object]] = []
    chosen: tuple[float, Fusion] | None = None
    default = service.searcher.fusion
    try:
        for fusion in FUSIONS:
            service.searcher.fusion = fusion
            for half, label in ((0, "calibrate (even)"), (1, "check (odd)")):
                found: dict[str, tuple[float, float, float]] = {}
                started, count = time.perf_counter(), 0
                for name in names:
                    tenant, queries = sets[name]
                    found[name] = scores(ranks(service, tenant, queries[half::2], "hybrid"))
                    count += len(queries[half::2])
                ms = (time.perf_counter() - started) * 1e3 / max(1, count)
                headline = [found[n][0] for n in HEADLINE if n in found] or [found[n][0] for n in names]
                mean = sum(headline) / len(headline)
                similarity = "none" if fusion.phrase_similarity is None else f"{fusion.phrase_similarity:.1f}"
                rows.append(
                    [
                        label,
                        f"{fusion.semantic_weight:.1f}",
                        similarity,
                        *[_pair(found[n]) for n in names],
                        mean,
                        ms,
                    ]
                )
                if half == 0 and (chosen is None or mean > chosen[0]):
                    chosen = (mean, fusion)
    finally:
        service.searcher.fusion = default
    table(
        "Hybrid fusion settings: R@1 / R@10 per query set, chosen on the even rows, checked on the odd rows",
        ["half", "semantic weight", "phrase similarity", *names, "mean R@1 (headline sets)", "ms/query"],
        rows,
    )
    if chosen is not None:
        print(f"chosen on the calibration half: {chosen[1]} (mean R@1 {chosen[0]:.3f}); the default is {default}")


def _pair(found: tuple[float, float, float]) -> str:
    return f"{found[0]:.3f} / {found[1]:.3f}"


def template_rows(service: SearchService, tenant: str, queries: Queries) -> list[list[object]]:
    """Semantic-only scores with other ConSE name templates, on the calibration (even) and check (odd) rows,
    re-encoding the stored labels in memory."""
    items = service.list_items(tenant, limit=1000)
    rows: list[list[object]] = []
    for template in ("{}", "a photo of a {}."):
        encoder = ConseEncoder(service.analyzer, template=template)
        names = encoder.label_matrix()
        sources = [i.source for i in items]
        vectors = []
        for item in items:
            labels = item.result["pages"][0].get("labels") or []
            weights = np.array([lab["score"] for lab in labels], np.float32)
            vectors.append(normalize(weights @ names[[lab["index"] for lab in labels]]))
        matrix = np.stack(vectors)
        query_vectors = encoder.encode_texts([q for q, _ in queries])
        for half, name in ((0, "calibrate (even)"), (1, "check (odd)")):
            found: list[int | None] = []
            for n in range(half, len(queries), 2):
                order = np.argsort(-(matrix @ query_vectors[n]))[:10]
                found.append(next((r + 1 for r, i in enumerate(order) if sources[i] in queries[n][1]), None))
            rows.append([name, f"semantic, template {template!r}", *scores(found)])
    return rows


def write_repeated(source: Path, target: Path, settings: Settings, times: int) -> None:
    import wave

    from frugalsense.media import load

    clip = load(source, settings).audio
    assert clip is not None
    samples = np.tile(clip.samples, times)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(clip.sample_rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def bench_scale(service: SearchService, n: int = 100_000, queries: int = 200) -> None:
    """Latency over ``n`` synthetic items: random unit vectors and text drawn from a 5,000-word vocabulary."""
    rng = np.random.default_rng(7)
    tenant = service.store.create_tenant("scale").id
    vocabulary = [f"w{i}" for i in range(5000)]
    encoder = service.encoder.name
    started = time.perf_counter()
    for start in range(0, n, 5000):
        batch = []
        for i in range(start, min(n, start + 5000)):
            words = " ".join(rng.choice(vocabulary, 12))
            vector = normalize(rng.standard_normal(384).astype(np.float32))
            batch.append(
                NewItem(
                    source=f"synthetic/{i}",
                    sha256=f"{i:064x}",
                    modality=("image", "document", "audio", "video")[i % 4],
                    mime="image/jpeg",
                    byte_size=1,
                    pages=1,
                    duration_s=None,
                    captured_at=f"20{10 + i % 15:02d}-01-01T00:00:00",
                    nsfw=float(rng.random()) * 0.1,
                    flagged=False,
                    phash=int(rng.integers(-(2**63), 2**63 - 1)),
                    encoder=encoder,
                    result={"pages": []},
                    text=words,
                    transcript="",
                    labels={},
                    faces=[],
                    vectors=[("image", vector)],
                )
            )
        service.items.put_items(tenant, batch)
    load_s = time.perf_counter() - started
    t0 = time.perf_counter()
    service.cache.get(tenant, encoder)  # first use: rebuilds from the database and writes the file
    from_db = time.perf_counter() - t0
    service.cache.evict(tenant)  # the restart path: read the file
    t0 = time.perf_counter()
    service.cache.get(tenant, encoder)
    from_file = time.perf_counter() - t0
    texts = [" ".join(rng.choice(vocabulary, 3)) for _ in range(queries)]
    service.search(tenant, texts[0])  # warm the text model
    rows = []
    for label, kwargs in (
        ("hybrid", {"mode": "hybrid"}),
        ("semantic", {"mode": "semantic"}),
        ("keyword", {"mode": "keyword"}),
        ("hybrid + modality filter", {"filters": service.filters(tenant, modality="image")}),
    ):
        times = []
        for text in texts:
            t0 = time.perf_counter()
            service.search(tenant, text, top_k=20, **kwargs)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        rows.append([label, statistics.median(times), times[int(0.95 * len(times)) - 1], times[-1]])
    table(
        f"Query latency over {n:,} items ({queries} queries each, ms; text embedding included)",
        ["query", "p50", "p95", "max"],
        rows,
    )
    table(
        "Loading the vector index",
        ["path", "seconds"],
        [
            ["bulk insert of the synthetic items", load_s],
            ["rebuild from the database", from_db],
            ["read the file", from_file],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help=f"comma-separated parts: quality, scale, {', '.join(PARTS)}")
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), model_cache=Settings().model_dir)
        with SearchService.open(settings) as service:
            throughput: list[list[object]] = []
            only = set((args.only or "quality,scale").split(","))
            parts = PARTS if "quality" in only else [p for p in PARTS if p in only]
            if parts:
                bench_quality(service, throughput, parts)
                table(
                    "Indexing throughput (2 workers; per core = per CPU-second of the receipts)",
                    ["input", "items", "median CPU-s / item", "items (or minutes) per core-s", "per wall-s"],
                    throughput,
                )
            if "scale" in only:
                bench_scale(service, args.items)


if __name__ == "__main__":
    main()
