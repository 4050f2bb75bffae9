"""The command line: thin commands over the library. Exit codes: 0 ok, 2 bad input, 3 model or setup problem."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalsense.errors import FrugalsenseError, InputError

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
