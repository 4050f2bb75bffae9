"""The command line: thin commands over the library. Exit codes: 0 ok, 2 bad input, 3 model or setup problem."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from frugalsense.cli.fields import add_extract_command, calibrate_fields
from frugalsense.cli.jobs import add_jobs_command, add_ray_options, run_on_ray
from frugalsense.errors import FrugalsenseError, InputError, InvalidRequestError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Any:
    from frugalsense.settings import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "model_cache", None):
        overrides["model_cache"] = Path(args.model_cache)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "price", None) is not None:
        overrides["price_per_cpu_hour"] = args.price
    return Settings(**overrides)


def _cmd_analyze(args: argparse.Namespace) -> int:
    if args.ray is not None:
        return run_on_ray(args, _settings(args), "analyze")
    from tqdm import tqdm

    from frugalsense.analyze import Analyzer
    from frugalsense.formatting import format_result

    analyzer = Analyzer(_settings(args))
    features = args.features.split(",") if args.features else None
    failures = 0
    records: list[dict[str, Any]] = []
    paths: list[str] = list(args.paths)
    bar = tqdm(paths, unit="file", disable=len(paths) < 2 or args.quiet, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(Path(path).name[:30])
        try:
            result = analyzer.analyze(path, features)
        except InputError as exc:
            failures += 1
            records.append({"name": path, "error": {"code": exc.code, "message": str(exc)}})
            if not args.json:
                tqdm.write(f"{path}: error: {exc}", file=sys.stderr)
            continue
        if args.json:
            records.append(result.to_dict(with_embeddings=args.embeddings))
        else:
            tqdm.write(format_result(result))
    if args.json:
        json.dump(records if len(paths) > 1 else records[0], sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 2 if failures else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from frugalsense.analyze import Analyzer
    from frugalsense.faces import FaceComparer
    from frugalsense.formatting import format_comparison

    comparer = FaceComparer.open(Analyzer(_settings(args)))
    result = comparer.compare(args.source, args.target, threshold=args.threshold, source_face=args.source_face)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_comparison(result))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from frugalsense.models.registry import registry

    if args.action == "prepare":
        from frugalsense.convert import prepare_models

        for line in prepare_models(_settings(args)):
            print(line)
        return 0
    cards = [card.to_dict() for card in registry.cards()]
    if args.json:
        json.dump(cards, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for card in cards:
            version = card["package_version"] or "NOT INSTALLED"
            print(f"{card['name']:<26} {card['task']:<16} {card['runtime']:<12} {card['package']} {version}")
    return 0


#: calibrated ladders: task -> "module:function", each with the signature of
#: frugalsense.calibration.labels.calibrate_labels
CALIBRATORS = {
    "labels": "frugalsense.calibration.labels:calibrate_labels",
    "faces-verify": "frugalsense.calibration.faces:calibrate_faces",
    "text-gate": "frugalsense.calibration.text_gate:calibrate_text_gate",
}


def _recording_bar(desc: str, quiet: bool) -> tuple[Any, Callable[[int, int], None]]:
    """A progress bar on stderr and the ``progress(done, total)`` callback the recorders call."""
    from tqdm import tqdm

    bar = tqdm(unit="item", desc=desc, disable=quiet, file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()

    return bar, progress


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import importlib

    settings = _settings(args)
    out = Path(args.out) if args.out else (settings.profile_dir or settings.data_dir / "profiles")
    if args.task == "fields":  # the receipt field scorer: trained, then its threshold certified (cli/fields.py)
        return calibrate_fields(args, settings, out)
    if not args.data:
        raise InvalidRequestError(f"calibrate {args.task} needs --data FOLDER (labelled data)")
    if args.task not in CALIBRATORS:
        raise InvalidRequestError(f"no ladder called {args.task!r}; choose from {', '.join(sorted(CALIBRATORS))}")
    module, function = CALIBRATORS[args.task].split(":")
    data = [Path(d) for d in args.data]
    # Recording runs every model once on every item (minutes on a big set); a cached recording shows no bar.
    bar, progress = _recording_bar("recording", args.quiet)
    result, profile, held_out = getattr(importlib.import_module(module), function)(
        settings,
        data[0] if len(data) == 1 else data,
        target=args.target,
        risk=args.risk,
        cache_dir=settings.data_dir / "calibration",
        holdout=args.holdout,
        seed=args.seed,
        command="frugalsense " + " ".join(args.argv),
        future_items=args.future_items,
        progress=progress,
    )
    bar.close()
    path = profile.save(out / f"{profile.task}.json" if out.suffix != ".json" else out)
    print(f"{'rung':<28} {'threshold':>9} {'answers':>8}")
    for rung, threshold, share in zip(
        result.rungs, [*result.thresholds, None], result.share_per_rung, strict=True
    ):
        shown = "-" if threshold is None else f"{threshold:.4f}"
        print(f"{rung:<28} {shown:>9} {share:>8.3f}")
    print(
        f"quality {result.quality:.4f} vs {result.reference_quality:.4f} always-strongest "
        f"({result.relative_quality:.4f}, target {args.target}, risk {args.risk}, {result.method}, n={result.n})"
    )
    print(f"CPU {result.cpu * 1000:.1f} ms/item vs {result.reference_cpu * 1000:.1f} ({result.relative_cpu:.3f})")
    if result.fallback:
        print("nothing certified at this target and risk: the ladder always climbs to the strongest rung")
    if held_out:
        print(f"held out: {json.dumps(held_out)}")
    print(f"wrote {path}")
    return 0


def _cmd_samples(args: argparse.Namespace) -> int:
    from frugalsense.samples import write_samples

    for path in write_samples(Path(args.folder)):
        print(path)
    return 0


def _store(args: argparse.Namespace) -> Any:
    from frugalsense.store import open_store

    return open_store(_settings(args))


def _cmd_db(args: argparse.Namespace) -> int:
    """``db migrate``: bring the configured database to the current schema; ``db copy --to URL``: copy the data
    folder's SQLite database into PostgreSQL and verify it."""
    if args.action == "migrate":
        store = _store(args)
        store.close()
        print("applied: " + (", ".join(store.migrated) or "nothing (up to date)"))
        return 0
    if not args.to:
        raise InvalidRequestError("db copy needs --to postgresql://...")
    from frugalsense.store import DB_FILENAME
    from frugalsense.store.postgres_copy import copy_to_postgres

    report = copy_to_postgres(_settings(args).data_dir / DB_FILENAME, args.to)
    for table, (a, b) in report.counts.items():
        print(f"{table:16} {a:>10} {b:>10}{'' if a == b else '  MISMATCH'}")
    for table, (mine, theirs) in report.digests.items():
        print(f"{table:16} embeddings {'identical' if mine == theirs else 'DIFFER'} (sha256 {theirs[:16]})")
    print("copy verified" if report.ok else "copy does NOT match", flush=True)
    return 0 if report.ok else 1


def first_admin_key(store: Any) -> str | None:
    """On a store with no keys at all: make tenant "default" and an admin key, and return it (shown once)."""
    tenants = store.list_tenants()
    if any(store.list_api_keys(t.id) for t in tenants):
        return None
    tenant = next((t for t in tenants if t.name == "default"), None) or store.create_tenant("default")
    return str(store.create_api_key(tenant.id, "first admin key", "admin").key)


def _cmd_serve(args: argparse.Namespace) -> int:
    from frugalsense.api.server import serve

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers)) if v}
    settings = _settings(args).model_copy(update=overrides)
    store = _store(args)
    try:
        key = first_admin_key(store)
    finally:
        store.close()
    print(f"frugalsense {__import__('frugalsense').__version__}: data in {settings.data_dir}")
    if key:
        print("First start: an admin key for tenant 'default' was created. It is shown once; keep it safe:")
        print(f"    {key}")
    else:
        print("Make an API key with: frugalsense keys create NAME [--tenant TENANT] [--admin]")
    print(f"Listening on http://{settings.host}:{settings.port}  (API docs at /docs)", flush=True)
    serve(settings)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from frugalsense.calibration.report import report

    settings = _settings(args)
    tables = Path(args.tables)
    if args.record:
        from frugalsense.calibration.tables import record_tables

        def progress(task: str) -> Callable[[int, int], None]:
            return _recording_bar(f"recording {task}", args.quiet)[1]

        tasks = args.tasks.split(",") if args.tasks else None
        kwargs = {"tasks": tasks} if tasks else {}
        for path in record_tables(settings, Path(args.eval_dir), tables, progress=progress, **kwargs):
            print(f"recorded {path}", file=sys.stderr)
    plot_path = Path(args.plot) if args.plot else None
    print(report(tables, price_per_cpu_hour=settings.price_per_cpu_hour, plot_path=plot_path))
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        tenants = {t.name: t for t in store.list_tenants()}
        if args.action == "create":
            tenant = tenants.get(args.tenant) or store.create_tenant(args.tenant)
            new = store.create_api_key(tenant.id, args.name or "key", "admin" if args.admin else "user")
            print(json.dumps(new.to_dict(), indent=2) if args.json else new.key)
        elif args.action == "list":
            rows = [k.to_dict() | {"tenant": t.name} for t in tenants.values() for k in store.list_api_keys(t.id)]
            if args.json:
                print(json.dumps(rows, indent=2))
            for row in [] if args.json else rows:
                state = "revoked" if row.get("revoked_at") else "active"
                print(f"{row['id']:<24} {row['tenant']:<16} {row['role']:<6} {state:<8} {row['name']}")
        else:
            if not args.name:
                raise InvalidRequestError("say which key: frugalsense keys revoke KEY_ID")
            for tenant in tenants.values():
                if any(k.id == args.name for k in store.list_api_keys(tenant.id)):
                    store.revoke_api_key(tenant.id, args.name)
                    print(f"revoked {args.name}")
                    break
            else:
                raise InvalidRequestError(f"no key with id {args.name}; see frugalsense keys list")
    finally:
        store.close()
    return 0


def _cmd_tenants(args: argparse.Namespace) -> int:
    if args.action == "list":
        store = _store(args)
        try:
            rows = [t.to_dict() | {"keys": len(store.list_api_keys(t.id))} for t in store.list_tenants()]
        finally:
            store.close()
        if args.json:
            print(json.dumps(rows, indent=2))
        for row in [] if args.json else rows:
            print(f"{row['id']:<18} {row['created_at']:<30} {row['keys']:>3} keys  {row['name']}")
        return 0
    if not args.name:
        raise InvalidRequestError("say which tenant: frugalsense tenants erase NAME_OR_ID --yes")
    if not args.yes:
        raise InvalidRequestError(
            f"erasing tenant {args.name!r} deletes its items, faces, persons, collections, keys and files for"
            " good; add --yes to confirm"
        )
    with _search_service(args) as service:
        tenants = service.store.list_tenants()
        found = [t for t in tenants if t.id == args.name] or [t for t in tenants if t.name == args.name]
        if not found:
            raise InvalidRequestError(f"no tenant named {args.name!r}; see frugalsense tenants list")
        if len(found) > 1:
            ids = ", ".join(t.id for t in found)
            raise InvalidRequestError(f"{len(found)} tenants are named {args.name!r} ({ids}); erase one by its id")
        erased = service.erase_tenant(found[0].id)
    if args.json:
        print(json.dumps(erased, indent=2))
    else:
        counts = ", ".join(f"{n} {what}" for what, n in erased.items() if isinstance(n, int))
        print(f"erased tenant {erased['erased']['name']} ({erased['erased']['id']}): {counts}")
    return 0


# -- search: index, search, items ---------------------------------------------------------------------------


def _search_service(args: argparse.Namespace) -> Any:
    from frugalsense.search import SearchService

    return SearchService.open(_settings(args))


def _tenant_id(service: Any, name: str, *, create: bool) -> str:
    found = next((t for t in service.store.list_tenants() if t.name == name), None)
    if found is None:
        if not create:
            raise InvalidRequestError(f"no tenant {name!r} has indexed anything; run frugalsense index first")
        found = service.store.create_tenant(name)
    return str(found.id)


def _collection_id(service: Any, tenant_id: str, name: str | None) -> str | None:
    if not name:
        return None
    found = next((c for c in service.gallery.list_collections(tenant_id) if c.name == name), None)
    return str((found or service.gallery.create_collection(tenant_id, name)).id)


def _cmd_index(args: argparse.Namespace) -> int:
    if args.ray is not None:
        return run_on_ray(args, _settings(args), "index")
    from tqdm import tqdm

    from frugalsense.search.sources import walk

    with _search_service(args) as service:
        tenant = _tenant_id(service, args.tenant, create=True)
        total = sum(1 for _ in walk(args.paths))
        bar = tqdm(total=total, unit="file", disable=args.quiet or args.json, file=sys.stderr)

        def progress(outcome: Any) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{outcome.status}: {Path(outcome.source).name[:30]}")
            if outcome.status == "failed" and not args.json:
                tqdm.write(f"{outcome.source}: error: {outcome.error}", file=sys.stderr)

        summary = service.index_paths(
            tenant,
            list(args.paths),
            workers=args.workers,
            prune=args.prune,
            force=args.force,
            collection_id=_collection_id(service, tenant, args.collection),
            progress=progress,
        )
        bar.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in summary.counts.items() if n)
        rate = summary.cpu_seconds / max(1, summary.counts["added"] + summary.counts["updated"])
        cpu = f"{summary.cpu_seconds:.1f} CPU-s, {rate:.2f} per file"
        print(f"{counts or 'nothing to index'} in {summary.wall_s:.1f} s ({cpu})")
    return 2 if summary.counts["failed"] else 0


def _cmd_search(args: argparse.Namespace) -> int:
    with _search_service(args) as service:
        tenant = _tenant_id(service, args.tenant, create=False)
        filters = service.filters(
            tenant,
            person=args.person,
            label=args.label,
            modality=args.modality,
            since=args.since,
            until=args.until,
            max_nsfw=args.max_nsfw,
            safe=args.safe,
        )
        if args.image:
            results = service.search_image(tenant, args.image, filters=filters, top_k=args.top_k)
        else:
            results = service.search(tenant, args.query or "", filters=filters, top_k=args.top_k, mode=args.mode)
    if args.json:
        print(json.dumps(results.to_dict(), indent=2))
        return 0
    for rank, hit in enumerate(results.hits, start=1):
        print(f"{rank:>3}. {hit.item.source}  [{hit.item.modality}, {hit.item.id}]")
        for reason in hit.reasons:
            print(f"       {reason.kind} ({reason.field}): {reason.detail}")
    if not results.hits:
        print("no match")
    return 0


def _cmd_items(args: argparse.Namespace) -> int:
    with _search_service(args) as service:
        tenant = _tenant_id(service, args.tenant, create=False)
        out: Any
        if args.action == "list":
            out = [i.to_dict() for i in service.list_items(tenant, limit=args.limit)]
            lines = [f"{i['id']}  {i['modality']:<8} {i['captured_at']}  {i['source']}" for i in out]
        elif args.action == "duplicates":
            out = [[i.to_dict() for i in g] for g in service.near_duplicates(tenant)]
            lines = ["  ".join(i["source"] for i in group) for group in out]
        else:
            if not args.target:
                raise InvalidRequestError(f"say which item: frugalsense items {args.action} ITEM_ID_OR_PATH")
            is_id = args.target.startswith("item_") and not Path(args.target).exists()
            item_id = args.target if is_id else service.item_id_for(tenant, args.target)
            if args.action == "show":
                out = service.get_item(tenant, item_id)
                lines = [json.dumps(out, indent=2)]
            else:
                out = service.delete_item(tenant, item_id)
                lines = [f"deleted {out['deleted']} ({out['faces']} faces)"]
    print(json.dumps(out, indent=2) if args.json else "\n".join(lines))
    return 0


def _add_search_commands(sub: Any) -> None:
    p = sub.add_parser("index", help="index files and folders for search (incremental, resumable)")
    p.add_argument("paths", nargs="+", help="files and folders (walked recursively)")
    p.add_argument("--tenant", default="default", help="tenant name (created if new)")
    p.add_argument("--workers", type=int, help="files analysed at once (FRUGALSENSE_INDEX_WORKERS)")
    p.add_argument("--collection", help="collection to identify faces against (default: 'people')")
    p.add_argument("--prune", action="store_true", help="delete items of files gone from these folders")
    p.add_argument("--force", action="store_true", help="re-analyse files even when unchanged")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_ray_options(p, analyze=False)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("search", help="search indexed items by meaning, words, people and look")
    p.add_argument("query", nargs="?", help="what to look for (may be empty with a filter or --image)")
    p.add_argument("--image", help="search by an example picture instead")
    p.add_argument("--tenant", default="default")
    p.add_argument("--person", help="person id, person name or cluster id")
    p.add_argument("--label", help="comma-separated labels")
    p.add_argument("--modality", help="comma-separated: image, document, audio, video")
    p.add_argument("--since", help="ISO date: captured at or after")
    p.add_argument("--until", help="ISO date: captured at or before")
    p.add_argument("--max-nsfw", type=float, help="leave out items with a higher moderation score")
    p.add_argument("--safe", action="store_true", help="leave out flagged items")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--mode", default="hybrid", choices=["hybrid", "semantic", "keyword"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("items", help="list, show or delete indexed items; list near-duplicate groups")
    p.add_argument("action", choices=["list", "show", "delete", "duplicates"])
    p.add_argument("target", nargs="?", help="item id or file path (show, delete)")
    p.add_argument("--tenant", default="default")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_items)


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations at the top: "--data" after a command is that command's option, never a guess between
    # --data-dir and --database-url.
    parser = argparse.ArgumentParser(prog="frugalsense", description=__doc__, allow_abbrev=False)
    parser.add_argument("--data-dir", help="data folder (FRUGALSENSE_DATA_DIR)")
    parser.add_argument("--model-cache", help="converted-model folder (FRUGALSENSE_MODEL_CACHE)")
    parser.add_argument("--database-url", help="postgresql://... instead of SQLite (FRUGALSENSE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="analyse photos, scans, PDFs, audio and video")
    p.add_argument("paths", nargs="+", help="files to analyse")
    p.add_argument("--features", help="comma-separated faces,labels,moderation,text,speech,fields (default: kind)")
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.add_argument("--embeddings", action="store_true", help="include face embeddings in JSON")
    p.add_argument("--price", type=float, help="USD per CPU-hour for the receipt (FRUGALSENSE_PRICE_PER_CPU_HOUR)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_ray_options(p, analyze=True)
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("compare", help="is the face of SOURCE among the faces of TARGET? (nothing stored)")
    p.add_argument("source", help="picture of the person (its largest face, unless --source-face)")
    p.add_argument("target", help="picture to look in: every face is compared")
    p.add_argument("--source-face", type=int, help="the source's face N instead, counted as analyze lists them")
    p.add_argument("--threshold", type=float, help="own SFace similarity threshold (no climb to dlib)")
    p.add_argument("--json", action="store_true", help="print the JSON the API answers")
    p.set_defaults(func=_cmd_compare)

    add_extract_command(sub, _settings)

    p = sub.add_parser("models", help="list the model zoo or prepare (convert) the models")
    p.add_argument("action", nargs="?", choices=["list", "prepare"], default="list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("serve", help="run the HTTP API (FastAPI on uvicorn)")
    p.add_argument("--host", help="address (FRUGALSENSE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (FRUGALSENSE_PORT, default 8000)")
    p.add_argument("--workers", type=int, help="inference threads (FRUGALSENSE_WORKERS)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("keys", help="create, list or revoke API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?", help="key name (create) or key id (revoke)")
    p.add_argument("--tenant", default="default", help="tenant name (created if new)")
    p.add_argument("--admin", action="store_true", help="an admin key (can manage the tenant's keys)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_keys)

    p = sub.add_parser("tenants", help="list tenants, or erase one with everything it owns")
    p.add_argument("action", choices=["list", "erase"])
    p.add_argument("name", nargs="?", help="tenant name or id (erase)")
    p.add_argument("--yes", action="store_true", help="confirm the erasure (it cannot be undone)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_tenants)

    p = sub.add_parser("calibrate", help="choose a ladder's thresholds on labelled data, with a guarantee")
    p.add_argument("task", help=f"the ladder: {', '.join(CALIBRATORS)}, fields")
    p.add_argument(
        "--data",
        action="append",
        help="data folder (repeat to pool); text-gate: any photos, no labels; fields: receipts as SROIE's",
    )
    p.add_argument("--ocr-cache", help="fields: folder of cached OCR results (default: DATA_DIR/calibration)")
    p.add_argument("--target", type=float, default=0.99, help="quality as a share of the strongest rung's")
    p.add_argument("--risk", type=float, default=0.1, help="allowed probability of missing the target")
    p.add_argument("--holdout", type=float, default=0.0, help="share of items kept out to check the result")
    p.add_argument(
        "--future-items",
        type=int,
        help="promise the target on the mean over this many next items, not only in expectation (stricter)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar while recording")
    p.add_argument("--out", help="profile file or folder (default: FRUGALSENSE_PROFILE_DIR or DATA_DIR/profiles)")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("bench", help="cost-quality tables (and a plot) from recorded ladder tables")
    p.add_argument("--tables", default="bench/out/tables", help="folder of recorded tables (.npz)")
    p.add_argument(
        "--record",
        action="store_true",
        help="first record the labels, face-verification and text-gate tables from --eval-dir into --tables",
    )
    p.add_argument(
        "--eval-dir",
        default=os.environ.get("FRUGALSENSE_EVAL_DIR", "../shared/eval"),
        help="evaluation data laid out as ../shared/eval (default: FRUGALSENSE_EVAL_DIR or ../shared/eval)",
    )
    p.add_argument("--tasks", help="with --record: comma-separated labels, faces-lfw, faces-deepface, text-gate")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars while recording")
    p.add_argument("--plot", help="write the cost-quality plot (PNG) here")
    p.add_argument("--price", type=float, help="USD per CPU-hour (default: FRUGALSENSE_PRICE_PER_CPU_HOUR)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("db", help="migrate the database, or copy a data folder's SQLite database to PostgreSQL")
    p.add_argument("action", choices=["migrate", "copy"])
    p.add_argument("--to", help="copy: the postgresql:// database to copy into (empty)")
    p.set_defaults(func=_cmd_db)

    p = sub.add_parser("samples", help="write sample inputs (a photo, a receipt, a PDF, a voice note)")
    p.add_argument("folder", nargs="?", default="samples")
    p.set_defaults(func=_cmd_samples)
    _add_search_commands(sub)
    add_jobs_command(sub, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what the user typed, for records
    try:
        code: int = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FrugalsenseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return code
