"""Run every text rung once on every labelled page and photo; cache what each one read and what it cost.

    python bench/_record_text.py                # all parts, resumes from bench/out/text_raw/*.json
    python bench/_record_text.py --part sroie   # one part: sroie, funsd, scene, photos
    python bench/_record_text.py --parts        # SROIE + FUNSD: PP-OCR's detector (3 sizes) and recogniser apart
    python bench/_record_text.py --widths       # SROIE + FUNSD: the recogniser at each padding

The raw records (lines, confidences, CPU-seconds; with --parts and --widths every detector box's reading and
CPU) are kept so that the ladder's parameters (detector size, recogniser padding, line confidence) can be swept
without running OCR again: `lite_table` turns them into the `CalibrationTable` the document rungs of the text
ladder are calibrated on (the gate's own recording and table: bench/text_gate.py), and `hybrid_reading`
replays the Tesseract-then-PP-OCR hybrid that was measured, not shipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

import _data
from frugalsense.analyze import Analyzer, looks_like_scan
from frugalsense.calibration.ltt import CalibrationTable
from frugalsense.ladder.text import page_confidence
from frugalsense.media import load
from frugalsense.quality import located_cer
from frugalsense.settings import Settings

OUT = Path(__file__).resolve().parent / "out" / "text_raw"
PARTS = ("sroie", "funsd", "scene", "photos", "funsd-reverse", "sroie-reverse")

Quad = list[tuple[float, float]]
Item = tuple[str, Path, list[tuple[str, Quad]] | None]  # id, image, true text items (None: a photo, no labels)


def _icdar() -> Iterator[Item]:
    base = _data.eval_dir() / "ocr-icdar2015"
    for gt in sorted((base / "det_gt").glob("gt_img_*.txt")):
        truth = []
        for raw in gt.read_text(encoding="utf-8-sig").splitlines():
            parts = raw.split(",", 8)
            if len(parts) == 9 and parts[8].strip() != "###":
                c = [float(v) for v in parts[:8]]
                truth.append((parts[8].strip(), [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])]))
        yield f"icdar/{gt.stem}", base / "det_images" / f"{gt.stem[3:]}.jpg", truth
    folder = base / "receipts_wildreceipt"
    for raw in (folder / "data.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(raw)
        name = Path(record["file_name"]).name
        truth = []
        for ann in record["annotations"]:
            c = ann["box"]
            truth.append((ann["text"], [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])]))
        yield f"wildreceipt/{name}", folder / name, truth


def _photos() -> Iterator[Item]:
    """Photos that are not documents: portraits, ImageNet objects, COCO scenes (some show a little text)."""
    seen: set[Path] = set()
    for pair in _data.lfw_pairs()[::6]:
        if pair.a not in seen:
            seen.add(pair.a)
            yield f"lfw/{pair.a.name}", pair.a, None
    for path, _ in _data.imagenet_sample()[::5]:
        yield f"imagenet/{path.name}", path, None
    for path in sorted((_data.eval_dir() / "detect-coco-tiny").rglob("*.jpg")):
        yield f"coco/{path.name}", path, None


def items(part: str) -> Iterator[Item]:
    if part == "sroie":
        for image, lines, _ in _data.sroie():
            yield f"sroie/{image.stem}", image, [(t, list(q)) for t, q in lines]
    elif part == "funsd":
        for image, words, _ in _data.funsd():
            yield f"funsd/{image.stem}", image, [(t, list(q)) for t, q in words]
    elif part in ("funsd-reverse", "sroie-reverse"):  # a second worker from the other end, merged by load_raw
        yield from reversed(list(items(part.removesuffix("-reverse"))))
    elif part == "scene":
        yield from _icdar()
    elif part == "photos":
        yield from _photos()
    else:
        raise SystemExit(f"unknown part {part!r}; choose from {', '.join(PARTS)}")


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.thread_time()
    out = fn(*args)
    return out, time.thread_time() - start


def record_one(analyzer: Analyzer, image: Path, truth: list[tuple[str, Quad]] | None) -> dict[str, Any]:
    zoo = analyzer.zoo
    frame = load(image, analyzer.settings).frames[0]
    scan, scan_cpu = _timed(looks_like_scan, frame)
    (gate,), gate_cpu = _timed(zoo.get("text-gate").predict, [frame])
    (pp_lines,), pp_cpu = _timed(zoo.get("ppocr-v4").predict, [frame])
    record: dict[str, Any] = {
        "width": frame.width,
        "height": frame.height,
        "scan": scan,
        "scan_cpu": scan_cpu,
        "gate": gate,
        "gate_cpu": gate_cpu,
        "ppocr": [[ln.text, [list(p) for p in ln.quad], ln.confidence] for ln in pp_lines],
        "ppocr_cpu": pp_cpu,
        "truth": truth,
    }
    if truth is None:
        return record
    (tess_lines,), tess_cpu = _timed(zoo.get("tesseract-eng").predict, [frame])
    # Every Tesseract line re-read by PP-OCR's recogniser alone, one at a time, so that any line threshold can
    # be replayed later with the exact CPU it would cost.
    engine = zoo.get("ppocr-v4")
    rereads = []
    bgr = frame.bgr()
    for line in tess_lines:
        start = time.thread_time()
        ((text, score),) = engine.reread(bgr, [line.quad])
        rereads.append([text, score, time.thread_time() - start])
    record["tesseract"] = [[ln.text, [list(p) for p in ln.quad], ln.confidence] for ln in tess_lines]
    record["tesseract_cpu"] = tess_cpu
    record["rereads"] = rereads
    return record


def _resume(path: Path, part: str, label: str, one: Callable[[Path, Any], dict[str, Any]]) -> None:
    """`one(image, truth)` on every item of `part` not yet in the JSON file `path`, saved every 10 items."""
    done: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    todo = [it for it in items(part) if it[0] not in done]
    for i, (key, image, truth) in enumerate(todo):
        done[key] = one(image, truth)
        if i % 10 == 9 or i == len(todo) - 1:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(done))
            print(f"{label}: {len(done)} recorded", file=sys.stderr)


def record(parts: list[str]) -> None:
    analyzer = Analyzer(Settings())
    # The first item of a part also pays for model loading: load everything before measuring.
    for name in ("text-gate", "ppocr-v4", "tesseract-eng"):
        analyzer.zoo.get(name).load()
    for part in parts:
        _resume(OUT / f"{part}.json", part, part, lambda image, truth: record_one(analyzer, image, truth))


#: detector input sizes recorded for the lite and hybrid rungs: RapidOCR's default (shorter side at least
#: 736 px, "default") and copies whose longer side is at most 1280 or 960 px
DET_SIDES: tuple[int | None, ...] = (None, 1280, 960)


def _side_key(side: int | None) -> str:
    return "default" if side is None else str(side)


def record_parts(analyzer: Analyzer, image: Path) -> dict[str, Any]:
    """PP-OCR in parts: the detector at each size, then the recogniser on every box alone, each with its CPU;
    the full pipeline and Tesseract again in the same process, so that ratios compare like with like."""
    zoo = analyzer.zoo
    frame = load(image, analyzer.settings).frames[0]
    pp = zoo.get("ppocr-v4")
    _, full_cpu = _timed(pp.predict, [frame])
    _, tess_cpu = _timed(zoo.get("tesseract-eng").predict, [frame])
    out: dict[str, Any] = {"ppocr_cpu": full_cpu, "tesseract_cpu": tess_cpu, "det": {}}
    for side in DET_SIDES:
        start = time.thread_time()
        det = pp.detect_lines(frame.bgr(), side)  # the BGR copy belongs to the detector's bill
        det_cpu = time.thread_time() - start
        rec = []
        for crop in det.crops:
            (reading,), cpu = _timed(pp.recognise, [crop])
            rec.append([reading[0], reading[1], cpu])
        out["det"][_side_key(side)] = {
            "cpu": det_cpu,
            "quads": [[list(p) for p in q] for q in det.quads],
            "rec": rec,
        }
    return out


def record_hybrid(parts: list[str]) -> None:
    analyzer = Analyzer(Settings())
    for name in ("ppocr-v4", "tesseract-eng"):
        analyzer.zoo.get(name).load()
    for part in parts:
        _resume(OUT / f"parts-{part}.json", part, f"parts {part}", lambda image, _: record_parts(analyzer, image))


#: recogniser paddings recorded for the lite rung (RapidOCR pads every line to 320 px), on the boxes of
#: the detector at WIDTHS_SIDE
MIN_WIDTHS = (320, 160, 48)
WIDTHS_SIDE = 1280


def record_widths(analyzer: Analyzer, image: Path) -> dict[str, Any]:
    """The recogniser at each padding on the same boxes, box by box in turn, each reading with its CPU."""
    frame = load(image, analyzer.settings).frames[0]
    pp = analyzer.zoo.get("ppocr-v4")
    out: dict[str, Any] = {str(w): [] for w in MIN_WIDTHS}
    found = pp.detect_lines(frame.bgr(), WIDTHS_SIDE)
    for crop in found.crops:
        for width in MIN_WIDTHS:
            (reading,), cpu = _timed(pp.recognise, [crop], width)
            out[str(width)].append([reading[0], reading[1], cpu])
    out["quads"] = [[list(p) for p in q] for q in found.quads]
    return out


def record_all_widths(parts: list[str]) -> None:
    analyzer = Analyzer(Settings())
    analyzer.zoo.get("ppocr-v4").load()
    for part in parts:
        _resume(
            OUT / f"widths-{part}.json", part, f"widths {part}", lambda image, _: record_widths(analyzer, image)
        )


def load_parts(part: str) -> dict[str, Any]:
    """The `record_parts` records of a part (both workers' files merged), keyed like `load_raw`."""
    data: dict[str, Any] = {}
    for name in (part, f"{part}-reverse"):
        path = OUT / f"parts-{name}.json"
        if path.is_file():
            data.update(json.loads(path.read_text()))
    widths: dict[str, Any] = {}
    for name in (part, f"{part}-reverse"):
        path = OUT / f"widths-{name}.json"
        if path.is_file():
            widths.update(json.loads(path.read_text()))
    for key, rec in data.items():
        if key in widths:
            rec["widths"] = widths[key]
    return data


def load_raw(part: str) -> dict[str, Any]:
    path = OUT / f"{part}.json"
    if not path.is_file():
        raise SystemExit(f"{path} missing: run python bench/_record_text.py --part {part}")
    data: dict[str, Any] = json.loads(path.read_text())
    extra = OUT / f"{part}-reverse.json"
    if extra.is_file():
        data.update(json.loads(extra.read_text()))
    order = [key for key, _, _ in items(part)]  # the data set's own order, whichever worker recorded an item
    return {key: data[key] for key in order if key in data}


# -- from raw records to calibration tables -----------------------------------------------------------------


def _quality(lines: list[tuple[str, Any]], truth: list[tuple[str, Quad]]) -> float:
    """1 - located CER, clipped to [0, 1]."""
    errors, chars = located_cer(lines, truth)
    return float(np.clip(1.0 - errors / max(1, chars), 0.0, 1.0))


def corrected_lines(rec: dict[str, Any], line_confidence: float) -> tuple[list[tuple[str, Any]], float]:
    """Tesseract's lines with those below `line_confidence` replaced by PP-OCR's reading (when it is surer)."""
    lines: list[tuple[str, Any]] = []
    cpu = 0.0
    for (text, quad, conf), (pp_text, pp_score, pp_cpu) in zip(rec["tesseract"], rec["rereads"], strict=True):
        if conf < line_confidence:
            cpu += pp_cpu
            if pp_text and pp_score > conf:
                text = pp_text
        lines.append((text, quad))
    return lines, cpu


def document_table(records: list[dict[str, Any]], line_confidence: float) -> CalibrationTable:
    """Rungs tesseract -> tesseract + re-read lines -> PP-OCR, on labelled pages (the text behind the gate)."""
    conf, qual, cpu = [], [], []
    for rec in records:
        tess = [(t, q) for t, q, _ in rec["tesseract"]]
        fixed, fix_cpu = corrected_lines(rec, line_confidence)
        pp = [(t, q) for t, q, _ in rec["ppocr"]]
        lines = [(t, c) for t, _, c in rec["tesseract"]]
        fixed_conf = page_confidence(
            [
                (t, max(c, r[1]) if c < line_confidence else c)
                for (t, _, c), r in zip(rec["tesseract"], rec["rereads"], strict=True)
            ],
            line_confidence,
        )
        conf.append([page_confidence(lines, line_confidence), fixed_conf, 1.0])
        truth = rec["truth"]
        qual.append([_quality(tess, truth), _quality(fixed, truth), _quality(pp, truth)])
        cpu.append([rec["scan_cpu"] + rec["tesseract_cpu"], fix_cpu, rec["ppocr_cpu"]])
    return CalibrationTable(
        ["tesseract-eng", "reread-lines", "ppocr-v4"], np.array(conf), np.array(qual), np.array(cpu)
    )


#: RapidOCR's text_score: the full pipeline (and the lite rung) drop readings below it
TEXT_SCORE = 0.5


def _readings(parts: dict[str, Any], side: int | None, min_width: int) -> tuple[list[Any], list[Any], float]:
    """Detector boxes, the recogniser's reading of each ([text, score, CPU]) and the detector's CPU. Paddings
    other than RapidOCR's 320 px come from `record_widths`."""
    det = parts["det"][_side_key(side)]
    if min_width == 320:
        return det["quads"], det["rec"], det["cpu"]
    if side != WIDTHS_SIDE or "widths" not in parts:
        raise SystemExit(f"padding {min_width} recorded only at side {WIDTHS_SIDE}: run --widths")
    return parts["widths"]["quads"], parts["widths"][str(min_width)], det["cpu"]


def lite_reading(
    parts: dict[str, Any], side: int | None, min_width: int = 320
) -> tuple[list[tuple[str, Any, float]], float]:
    """What the ppocr-lite rung reads with the detector at `side` and the recogniser's padding `min_width`
    (lines with their scores), and its CPU."""
    quads, readings, det_cpu = _readings(parts, side, min_width)
    lines = [(t, q, s) for (t, s, _), q in zip(readings, quads, strict=True) if t and s >= TEXT_SCORE]
    return lines, det_cpu + sum(c for _, _, c in readings)


def _bounds(quad: Any) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return min(xs), min(ys), max(xs), max(ys)


def _covered(box: tuple[float, float, float, float], sure: list[tuple[float, float, float, float]]) -> float:
    """Share of a detector box's width under Tesseract lines on the same text row."""
    x0, y0, x1, y1 = box
    spans = sorted(
        (max(x0, b[0]), min(x1, b[2]))
        for b in sure
        if min(y1, b[3]) - max(y0, b[1]) > 0.5 * min(y1 - y0, b[3] - b[1]) and min(x1, b[2]) > max(x0, b[0])
    )
    covered, end = 0.0, x0
    for a, b in spans:
        covered += max(0.0, b - max(a, end))
        end = max(end, b)
    return covered / max(1.0, x1 - x0)


def hybrid_reading(
    rec: dict[str, Any], side: int | None, line_confidence: float, coverage: float, min_width: int = 320
) -> tuple[list[tuple[str, Any]], float, float]:
    """The hybrid idea, replayed (measured, not shipped): Tesseract first, then PP-OCR's detector; only boxes
    not covered (`coverage` of their width) by Tesseract lines of at least `line_confidence` are recognised.
    Returns the lines, the CPU on top of Tesseract's, and the share of boxes recognised."""
    quads, readings, cpu = _readings(rec["parts"], side, min_width)
    sure = [_bounds(q) for _, q, c in rec["tesseract"] if c >= line_confidence]
    lines: list[tuple[str, Any]] = []
    read: list[tuple[float, float, float, float]] = []
    for (text, score, rec_cpu), quad in zip(readings, quads, strict=True):
        box = _bounds(quad)
        if _covered(box, sure) >= coverage:
            continue
        cpu += rec_cpu
        read.append(box)
        if text and score >= TEXT_SCORE:
            lines.append((text, quad))
    for text, quad, _ in rec["tesseract"]:
        # Tesseract's line is kept unless most of it lies in boxes PP-OCR read instead.
        x0, y0, x1, y1 = _bounds(quad)
        inside = sum(
            max(0.0, min(x1, b[2]) - max(x0, b[0])) * max(0.0, min(y1, b[3]) - max(y0, b[1])) for b in read
        )
        if inside < 0.5 * max(1.0, (x1 - x0) * (y1 - y0)):
            lines.append((text, quad))
    return lines, cpu, len(read) / max(1, len(quads))


def with_parts(part: str) -> list[dict[str, Any]]:
    """The labelled records of a part that also have `record_parts` measurements (under "parts")."""
    parts = load_parts(part)
    return [{**rec, "parts": parts[key]} for key, rec in load_raw(part).items() if key in parts]


def lite_table(
    records: list[dict[str, Any]], side: int | None, line_confidence: float, min_width: int = 320
) -> CalibrationTable:
    """Rungs ppocr-lite -> ppocr-v4 on document pages; CPU as measured side by side by `record_parts`."""
    conf, qual, cpu = [], [], []
    for rec in records:
        lines, lite_cpu = lite_reading(rec["parts"], side, min_width)
        truth = rec["truth"]
        conf.append([page_confidence([(t, s) for t, _, s in lines], line_confidence), 1.0])
        full = [(t, q) for t, q, _ in rec["ppocr"]]
        qual.append([_quality([(t, q) for t, q, _ in lines], truth), _quality(full, truth)])
        cpu.append([rec["scan_cpu"] + lite_cpu, rec["parts"]["ppocr_cpu"]])
    return CalibrationTable(["ppocr-lite", "ppocr-v4"], np.array(conf), np.array(qual), np.array(cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS, help="record only these parts")
    parser.add_argument("--parts", action="store_true", help="record PP-OCR's detector and recogniser apart")
    parser.add_argument("--widths", action="store_true", help="record the recogniser at each padding")
    args = parser.parse_args()
    if args.parts:
        record_hybrid(args.part or ["sroie", "funsd"])
        return
    if args.widths:
        record_all_widths(args.part or ["sroie", "funsd"])
        return
    record(args.part or [p for p in PARTS if not p.endswith("-reverse")])


if __name__ == "__main__":
    main()
