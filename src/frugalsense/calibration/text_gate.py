"""Calibrating the text ladder's gate on photos, with full PP-OCR as the judge.

Photos rarely come with text labels, so the strongest rung decides (the issue's rule where labels are missing):
a photo *has text* when full PP-OCR (``ppocr-v4``) reads at least ``MIN_CHARS`` letters or digits in lines whose
confidence reaches the text profile's ``line_confidence``. The gate stops a photo when its confidence, 1 - the
gate's score, reaches the threshold.

The guarantee is conditional on the photos with text: at least ``target`` of them still reach OCR, with
probability at least 1 - ``risk`` over the draw of the calibration photos. Learn-then-Test
(:func:`frugalsense.calibration.ltt.calibrate`) runs on the text-bearing photos only, rungs [gate, ocr], with
quality 1 when a photo climbs and 0 when the gate stops it, so the ladder's mean quality is their recall. Photos
without text cannot break the promise; they decide what it saves, measured on the held-out part. Scans and
screenshots never reach the gate (the ladder sends them to the document rungs), so they are left out.

    frugalsense calibrate text-gate --data PHOTOS --target 0.8 --holdout 0.5

needs no labels: any folder of the user's own photos will do, and the result is a copy of the text profile with
the gate's threshold and its record replaced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.ltt import NEVER, Calibration, CalibrationTable, Method, calibrate, simulate
from frugalsense.calibration.record import Progress, _cache_path, _save
from frugalsense.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    InvalidRequestError,
    UnsupportedFormatError,
)
from frugalsense.ledger import Meter
from frugalsense.profiles import Profile, load_profile
from frugalsense.settings import Settings

__all__ = [
    "MIN_CHARS",
    "GateMeasured",
    "GateRecords",
    "calibrate_text_gate",
    "confident_chars",
    "gate_profile",
    "gate_record",
    "gate_table",
    "measure_gate",
    "photo_files",
    "record_gate",
    "record_photo",
    "shipped_threshold",
]

#: a photo has text when PP-OCR reads at least this many letters or digits in confident lines
MIN_CHARS = 3
#: photos with text the calibration needs at the least (Learn-then-Test's own minimum)
MIN_TEXT_PHOTOS = 10
#: shipped thresholds are at least this: a gate reporting confidence 0 never stops a photo
FLOOR = 1e-6
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
Floats = npt.NDArray[np.float64]


def photo_files(data: Path | Sequence[Path]) -> list[Path]:
    """Every picture under the folders `data` (recursively, sorted), or the files themselves."""
    folders = [data] if isinstance(data, Path) else list(data)
    found: list[Path] = []
    for folder in folders:
        if folder.is_file():
            found.append(folder)
        elif folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        else:
            raise InvalidRequestError(f"{folder} is neither a folder nor a file: pass folders of photos")
    if not found:
        raise InvalidRequestError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) under {[str(f) for f in folders]}")
    return found


@dataclass
class GateRecords:
    """Per photo: the route check and the gate (score, CPU), and what full PP-OCR read and cost."""

    files: list[str]
    scan: npt.NDArray[np.bool_]  # routed to the document rungs: never reaches the gate
    route_cpu: Floats
    score: Floats
    gate_cpu: Floats
    ocr_cpu: Floats
    lines: list[str]  # JSON [[text, confidence], ...] per photo

    def subset(self, rows: npt.NDArray[np.intp]) -> GateRecords:
        return GateRecords(
            [self.files[i] for i in rows],
            self.scan[rows],
            self.route_cpu[rows],
            self.score[rows],
            self.gate_cpu[rows],
            self.ocr_cpu[rows],
            [self.lines[i] for i in rows],
        )

    def has_text(self, line_confidence: float, min_chars: int = MIN_CHARS) -> npt.NDArray[np.bool_]:
        return confident_chars(self.lines, line_confidence) >= min_chars


def confident_chars(lines: Sequence[str], line_confidence: float) -> npt.NDArray[np.int64]:
    """Letters and digits in the lines of at least `line_confidence`, per photo (JSON [[text, conf], ...]).

    >>> confident_chars(['[["EXIT 12", 0.9], ["zz", 0.2]]', '[]'], 0.5).tolist()
    [6, 0]
    """
    counts = [
        sum(
            sum(ch.isalnum() for ch in str(text))
            for text, conf in json.loads(raw)
            if float(conf) >= line_confidence
        )
        for raw in lines
    ]
    return np.array(counts, dtype=np.int64)


def _stage_cpu(meter: Meter, stage: str) -> float:
    return sum(s.cpu_s for s in meter.receipt.stages if s.stage == stage)


def record_photo(zoo: Any, path: Path, *, ocr: bool = True) -> dict[str, Any]:
    """One photo through the gate rung's own steps and (with `ocr`) through full PP-OCR, each on its own meter.

    `zoo` is a :class:`frugalsense.models.registry.ModelZoo`; the route check is metered as the ladder meters it.
    """
    from frugalsense.ladder.text import TextPage
    from frugalsense.media import load

    settings = zoo.settings
    frame = load(path, settings).frames[0]
    gate_meter = Meter(settings.price_per_cpu_hour)
    scan = TextPage(frame, "image").is_document(gate_meter)
    gate = zoo.get("text-gate")
    (score,) = gate.predict([frame], gate_meter)
    row: dict[str, Any] = {
        "scan": scan,
        "route_cpu": _stage_cpu(gate_meter, "route"),
        "score": float(score),
        "gate_cpu": _stage_cpu(gate_meter, gate.card.task),
    }
    if ocr:
        ocr_meter = Meter(settings.price_per_cpu_hour)
        ppocr = zoo.get("ppocr-v4")
        (lines,) = ppocr.predict([frame], ocr_meter)
        row["ocr_cpu"] = _stage_cpu(ocr_meter, ppocr.card.task)
        row["lines"] = json.dumps([[ln.text, round(ln.confidence, 5)] for ln in lines])
    return row


def record_gate(
    settings: Settings,
    files: Sequence[Path],
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> GateRecords:
    """The gate and full PP-OCR once on every photo of `files`, or the cached recording of exactly that. Files
    that cannot be read as pictures are left out (``records.files`` holds the ones kept)."""
    from frugalsense.models.ocr import TextGate
    from frugalsense.models.registry import ModelZoo

    key = [TextGate.score_kind, "ppocr-v4", *(f"{p.name}:{p.stat().st_size}" for p in files)]
    cache = _cache_path(cache_dir, "text-gate", files[0].parent, key) if files else None
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            return GateRecords(
                [str(f) for f in saved["files"]],
                saved["scan"].astype(bool),
                saved["route_cpu"],
                saved["score"],
                saved["gate_cpu"],
                saved["ocr_cpu"],
                [str(s) for s in saved["lines"]],
            )
    zoo = ModelZoo(settings)
    for name in ("text-gate", "ppocr-v4"):  # loading is not part of any photo's bill
        zoo.get(name).load()
    rows, kept = [], []
    for i, path in enumerate(files):
        try:
            rows.append(record_photo(zoo, path))
            kept.append(path)
        except (EmptyInputError, UnsupportedFormatError, CorruptInputError, InputTooLargeError):
            pass  # a file that is not a picture we can read: the calibration counts what it skipped
        if progress:
            progress(i + 1, len(files))

    def column(key: str) -> Floats:
        return np.array([r[key] for r in rows], np.float64)

    records = GateRecords(
        [str(p) for p in kept],
        np.array([r["scan"] for r in rows], bool),
        column("route_cpu"),
        column("score"),
        column("gate_cpu"),
        column("ocr_cpu"),
        [str(r["lines"]) for r in rows],
    )
    if cache is not None:
        _save(
            cache,
            {
                "files": np.array(records.files, dtype=str),
                "scan": records.scan,
                "route_cpu": records.route_cpu,
                "score": records.score,
                "gate_cpu": records.gate_cpu,
                "ocr_cpu": records.ocr_cpu,
                "lines": np.array(records.lines, dtype=str),
            },
        )
    return records


def gate_table(records: GateRecords, has_text: npt.NDArray[np.bool_]) -> CalibrationTable:
    """Rungs [text-gate, ocr]: stopping a photo with text loses it (quality 0); anything else is right.

    Scans report confidence 0 at the gate (they skip it and always climb) and cost only the route check there.
    """
    n = len(records.files)
    gate_conf: Floats = np.where(records.scan, 0.0, np.clip(1.0 - records.score, 0.0, 1.0))
    confidence = np.column_stack([gate_conf, np.ones(n)])
    quality = np.column_stack([np.where(has_text, 0.0, 1.0), np.ones(n)])
    cpu = np.column_stack([records.route_cpu + np.where(records.scan, 0.0, records.gate_cpu), records.ocr_cpu])
    return CalibrationTable(["text-gate", "ocr"], confidence, quality, cpu)


@dataclass(frozen=True)
class GateMeasured:
    """What the gate at `threshold` does on some photos (scans excluded by the caller)."""

    threshold: float
    text_photos: int
    recall: float  # share of text-bearing photos that still reach OCR
    no_text_photos: int
    stopped: float  # share of photos without text stopped at the gate
    gate_share: float  # CPU of a photo stopped at the gate, as a share of a full OCR pass (same photos)
    no_text_share: float  # mean CPU of a photo without text (stopped or not) against a full OCR pass of it
    ladder_share: float  # CPU of the gated ladder against OCR on every photo

    def as_dict(self, photos: int) -> dict[str, Any]:
        def num(value: float) -> float | None:
            return None if np.isnan(value) else round(value, 6)

        return {
            "photos": photos,
            "photos_with_text": self.text_photos,
            "recall": num(self.recall),
            "no_text_stopped": num(self.stopped),
            "gate_only_cpu_vs_ocr_pass": num(self.gate_share),
            "no_text_cpu_vs_ocr_pass": num(self.no_text_share),
            "ladder_cpu_vs_ocr_every_photo": num(self.ladder_share),
        }


def measure_gate(table: CalibrationTable, has_text: npt.NDArray[np.bool_], threshold: float) -> GateMeasured:
    """The gate at `threshold` on the photos of `table` (rows of :func:`gate_table`).

    >>> t = CalibrationTable(["g", "o"], [[0.9, 1], [0.2, 1], [0.95, 1]], [[1, 1], [0, 1], [1, 1]],
    ...                      [[0.01, 0.1], [0.01, 0.1], [0.01, 0.1]])
    >>> m = measure_gate(t, np.array([False, True, False]), 0.5)
    >>> m.recall, m.stopped, round(m.gate_share, 3)
    (1.0, 1.0, 0.1)
    """
    run = simulate(table, [threshold])
    stopped = run.stop_rung == 0
    text = has_text
    gate_only = stopped & ~text  # photos without text that cost only the gate
    gate_cpu = float(table.cpu[gate_only, 0].sum())
    ocr_cpu = float(table.cpu[gate_only, 1].sum())
    none_ocr = float(table.cpu[~text, 1].sum())
    return GateMeasured(
        threshold=threshold,
        text_photos=int(text.sum()),
        recall=float((~stopped[text]).mean()) if text.any() else float("nan"),
        no_text_photos=int((~text).sum()),
        stopped=float(stopped[~text].mean()) if (~text).any() else float("nan"),
        gate_share=gate_cpu / ocr_cpu if ocr_cpu > 0 else float("nan"),
        no_text_share=float(run.item_cpu[~text].sum()) / none_ocr if none_ocr > 0 else float("nan"),
        ladder_share=float(run.item_cpu.sum() / table.cpu[:, 1].sum()) if len(table) else float("nan"),
    )


def shipped_threshold(result: Calibration) -> float:
    """The gate's threshold to ship: LTT's, at least FLOOR; "never stop" when nothing was certified."""
    return NEVER if result.fallback else max(FLOOR, float(result.thresholds[0]))


def gate_profile(base: Profile, result: Calibration, record: dict[str, Any]) -> Profile:
    """`base` (a text profile) with the gate's threshold from `result` and `record` as ``calibration.gate``."""
    if not base.rungs or base.rungs[0] != "text-gate":
        raise InvalidRequestError(f"the text profile's first rung is {base.rungs[:1]}, not the text-gate")
    return Profile(
        task=base.task,
        rungs=list(base.rungs),
        thresholds=[round(shipped_threshold(result), 6), *base.thresholds[1:]],
        target=base.target,
        risk=base.risk,
        params=dict(base.params),
        calibration={**base.calibration, "gate": record},
        version=base.version,
    )


def gate_record(
    result: Calibration, *, line_confidence: float, calibration_photos: int, held_out: dict[str, Any]
) -> dict[str, Any]:
    """What ``calibration.gate`` says: method, guarantee, the threshold and the held-out check."""
    threshold = shipped_threshold(result)
    today = datetime.now(UTC).date().isoformat()
    return {
        "calibrated": None if result.fallback else today,
        "date": today,
        "method": f"{result.method}, conditional on photos with text (quality: the photo reaches OCR)",
        "guarantee": f"at least {result.target:g} of the photos with text still reach OCR, with probability "
        f">= {1 - result.risk:g} over the calibration draw",
        "target": result.target,
        "risk": result.risk,
        "n": result.n,
        "calibration_photos": calibration_photos,
        "certified": not result.fallback,
        "p_value": result.p_value,
        "threshold": round(threshold, 6),
        "stops_when": "never (nothing certified)"
        if result.fallback
        else f"gate score <= {1 - threshold:.6f} (GateRung confidence = 1 - score)",
        "recall_on_calibration": round(result.quality, 6),
        "held_out": held_out,
        "has_text": f"full PP-OCR (ppocr-v4) reads >= {MIN_CHARS} letters or digits in lines of confidence "
        f">= {line_confidence:g} (the profile's line_confidence)",
        **({"future_items": result.extra["future_items"]} if "future_items" in result.extra else {}),
    }


def calibrate_text_gate(
    settings: Settings,
    data: Path | Sequence[Path],
    *,
    target: float,
    risk: float,
    cache_dir: Path | None = None,
    holdout: float = 0.0,
    seed: int = 0,
    method: Method = "wsr",
    command: str = "",
    future_items: int | None = None,
    progress: Progress | None = None,
) -> tuple[Calibration, Profile, dict[str, Any]]:
    """Record (or reuse) the gate and full PP-OCR on the photos under `data`, certify the gate's threshold, and
    return the calibration, the user's text profile with the gate replaced, and the held-out check."""
    files = photo_files(data)
    records = record_gate(settings, files, cache_dir=cache_dir, progress=progress)
    base = load_profile("text", settings.profile_dir)
    line_confidence = float(base.params.get("line_confidence", 0.9))
    photos = np.flatnonzero(~records.scan)
    if len(photos) == 0:
        raise InvalidRequestError("every picture looks like a scan or a screenshot: the gate only sees photos")
    order = np.random.default_rng(seed).permutation(photos)
    cut = len(order) - round(holdout * len(order))
    calib, check = np.sort(order[:cut]), np.sort(order[cut:])
    has_text = records.has_text(line_confidence)
    text_calib = calib[has_text[calib]]
    if len(text_calib) < MIN_TEXT_PHOTOS:
        raise InvalidRequestError(
            f"full OCR reads text in {len(text_calib)} of the {len(calib)} calibration photos; the gate needs at "
            f"least {MIN_TEXT_PHOTOS} photos with text to be checked against: add photos that carry text"
        )
    table = gate_table(records, has_text)
    result = calibrate(
        table.subset(text_calib), target=target, risk=risk, method=method, seed=seed, future_items=future_items
    )
    held_out: dict[str, Any] = {}
    if len(check):
        held_out = measure_gate(table.subset(check), has_text[check], shipped_threshold(result)).as_dict(
            len(check)
        )
    record = gate_record(result, line_confidence=line_confidence, calibration_photos=len(calib), held_out=held_out)
    record.update(
        {
            "data": ", ".join(sorted({Path(f).parent.name for f in records.files})),
            "photos_skipped": len(files) - len(records.files),
            "split": f"seed {seed}: {len(calib)} photos calibrate, {len(check)} held out; "
            f"{int(records.scan.sum())} scans left out",
            "command": command,
        }
    )
    return result, gate_profile(base, result, record), held_out
