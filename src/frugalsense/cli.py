"""The command line: thin commands over the library. Exit codes: 0 ok, 2 bad input, 3 model or setup problem."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalsense.errors import FrugalsenseError, InputError, InvalidRequestError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Any:
    from frugalsense.settings import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "model_cache", None):
        overrides["model_cache"] = Path(args.model_cache)
    if getattr(args, "price", None) is not None:
        overrides["price_per_cpu_hour"] = args.price
    return Settings(**overrides)


def _cmd_analyze(args: argparse.Namespace) -> int:
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


def _cmd_samples(args: argparse.Namespace) -> int:
    from frugalsense.samples import write_samples

    for path in write_samples(Path(args.folder)):
        print(path)
    return 0


def _store(args: argparse.Namespace) -> Any:
    from frugalsense.store import DB_FILENAME, SQLiteStore

    return SQLiteStore(_settings(args).data_dir / DB_FILENAME)


def first_admin_key(store: Any) -> str | None:
    """On a store with no keys at all: make tenant "default" and an admin key, and return it (shown once)."""
    tenants = store.list_tenants()
    if any(store.list_api_keys(t.id) for t in tenants):
        return None
    tenant = next((t for t in tenants if t.name == "default"), None) or store.create_tenant("default")
    return str(store.create_api_key(tenant.id, "first admin key", "admin").key)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from frugalsense.api import create_app

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
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugalsense", description=__doc__)
    parser.add_argument("--data-dir", help="data folder (FRUGALSENSE_DATA_DIR)")
    parser.add_argument("--model-cache", help="converted-model folder (FRUGALSENSE_MODEL_CACHE)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="analyse photos, scans, PDFs, audio and video")
    p.add_argument("paths", nargs="+", help="files to analyse")
    p.add_argument("--features", help="comma-separated: faces,labels,moderation,text,speech (default: by kind)")
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.add_argument("--embeddings", action="store_true", help="include face embeddings in JSON")
    p.add_argument("--price", type=float, help="USD per CPU-hour for the receipt (FRUGALSENSE_PRICE_PER_CPU_HOUR)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_analyze)

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

    p = sub.add_parser("samples", help="write sample inputs (a photo, a receipt, a PDF, a voice note)")
    p.add_argument("folder", nargs="?", default="samples")
    p.set_defaults(func=_cmd_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FrugalsenseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
