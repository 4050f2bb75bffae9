"""The command line's receipt, invoice and form commands, thin over `frugalsense.fields`: ``extract`` (fields, or
with ``--forms`` a form's question and answer pairs, to a CSV or JSON lines, with progress and a cost line) and
``calibrate fields`` (`calibration.fields_train`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from frugalsense.errors import InvalidRequestError

__all__ = ["add_extract_command", "calibrate_fields"]


def add_extract_command(sub: Any, settings: Callable[[argparse.Namespace], Any]) -> None:
    """``frugalsense extract DIR_OR_FILES [--forms] --csv out.csv --json out.jsonl``; `settings` reads the global
    options."""
    p = sub.add_parser(
        "extract", help="receipt and invoice fields (or forms' question and answer pairs) to a CSV or JSON lines"
    )
    p.add_argument("paths", nargs="+", help="files and folders (pictures and PDFs, walked recursively)")
    p.add_argument(
        "--forms",
        action="store_true",
        help="read forms: their question and answer pairs (priced against Textract AnalyzeDocument with forms)",
    )
    p.add_argument(
        "--csv",
        help="one row per page: the fields and a confidence per field; with --forms one row per pair: question, "
        "answer, confidence ('-': standard output)",
    )
    p.add_argument(
        "--json",
        help="one JSON line per page, with line items and checks (--forms: the pairs and their evidence; "
        "'-': standard output)",
    )
    p.add_argument(
        "--price", type=float, help="USD per CPU-hour in the cost line (FRUGALSENSE_PRICE_PER_CPU_HOUR)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line per file")
    p.set_defaults(func=lambda args: _extract(args, settings(args)))


def _extract(args: argparse.Namespace, settings: Any) -> int:
    from frugalsense.analyze import Analyzer
    from frugalsense.fields.batch import document_paths, extract_to
    from frugalsense.search.sources import walk

    if not (args.csv or args.json):
        raise InvalidRequestError("say where the fields go: --csv out.csv, --json out.jsonl, or both")
    files = document_paths(walk(args.paths), args.paths)
    with ExitStack() as stack:

        def output(target: str | None) -> TextIO | None:
            if not target or target == "-":
                return sys.stdout if target else None
            return stack.enter_context(open(target, "w", newline="", encoding="utf-8"))

        report = None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True)
        totals = extract_to(
            files,
            Analyzer(settings),
            csv_file=output(args.csv),
            json_file=output(args.json),
            progress=report,
            kind="form" if args.forms else "receipt",
        )
    print(totals.summary(settings.price_per_cpu_hour), file=sys.stderr)
    return 2 if totals.failed else 0


def calibrate_fields(args: argparse.Namespace, settings: Any, out: Path) -> int:
    """``calibrate fields``: train the receipt field scorer on receipts laid out as SROIE's (``img/*.jpg``,
    ``key/*.json``) and certify its threshold at ``--target`` precision; the model and its profile go to the
    profile folder, where they win over the shipped ones."""
    from frugalsense.atomic import atomic_path
    from frugalsense.calibration import fields_train
    from frugalsense.fields.receipts import PROFILE_TASK, USER_MODEL_FILE

    eval_dir = os.environ.get("FRUGALSENSE_EVAL_DIR", "../shared/eval")
    data = args.data[0] if args.data else str(Path(eval_dir) / "ocr-sroie")
    cache = args.ocr_cache or str(settings.data_dir / "calibration" / "fields-ocr")
    folder = out if out.suffix != ".json" else out.parent
    model, profile = folder / USER_MODEL_FILE, folder / f"{PROFILE_TASK}.json"
    argv = ["--sroie", data, "--ocr-cache", cache, "--target", str(args.target), "--risk", str(args.risk)]
    try:  # both files or neither: a new model beside the old profile would emit at another model's threshold
        with atomic_path(model) as new_model, atomic_path(profile) as new_profile:
            code = fields_train.main([*argv, "--model-out", str(new_model), "--profile-out", str(new_profile)])
    except ValueError as exc:  # the training data cannot teach a field (fields_train._logistic_fit)
        raise InvalidRequestError(
            f"cannot train the receipt fields on {data}: {exc}; give it more receipts, with their key files, "
            "read by OCR (--ocr-cache holds the text ladder's results)"
        ) from exc
    print(f"wrote {model} and {profile}")
    return code
