"""Readers for the shared evaluation sets (`../shared/eval`, or FRUGALSENSE_EVAL_DIR). Used by the benches only."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

Quad = list[tuple[float, float]]


def eval_dir() -> Path:
    configured = os.environ.get("FRUGALSENSE_EVAL_DIR")
    path = Path(configured) if configured else ROOT.parent / "shared" / "eval"
    if not path.is_dir():
        raise SystemExit(f"evaluation data not found at {path}; set FRUGALSENSE_EVAL_DIR")
    return path


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool


def lfw_pairs(fold: str = "1") -> list[Pair]:
    base = eval_dir() / "faces-lfw"
    with open(base / "pairs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == fold]
    images = base / "images"
    return [Pair(images / r["file_x"], images / r["file_y"], r["same"] == "1") for r in rows]


def deepface_identities() -> dict[Path, str]:
    base = eval_dir() / "faces-deepface"
    with open(base / "identities.csv") as f:
        return {base / "images" / r["file"]: r["identity"] for r in csv.DictReader(f)}


def deepface_pairs() -> list[Pair]:
    base = eval_dir() / "faces-deepface"
    with open(base / "pairs_all.csv") as f:
        return [
            Pair(
                base / "images" / r["file_x"],
                base / "images" / r["file_y"],
                r["same"] in ("1", "True", "true", "Yes"),
            )
            for r in csv.DictReader(f)
        ]


def imagenet_sample() -> list[tuple[Path, int]]:
    base = eval_dir() / "zeroshot-imagenet"
    with open(base / "images.csv") as f:
        return [(base / "images" / r["file"], int(r["class_index"])) for r in csv.DictReader(f)]


def face_boxes() -> dict[Path, list[tuple[float, float, float, float]]]:
    base = eval_dir() / "faces-detect"
    out: dict[Path, list[tuple[float, float, float, float]]] = {}
    with open(base / "boxes.csv") as f:
        for r in csv.DictReader(f):
            out.setdefault(base / "images" / r["file"], []).append(
                (float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]))
            )
    return out


def sroie() -> Iterator[tuple[Path, list[tuple[str, Quad]], dict[str, str]]]:
    """Receipt image, its true lines with quads, and its key fields."""
    base = eval_dir() / "ocr-sroie"
    for image in sorted((base / "img").glob("*.jpg")):
        lines = []
        for raw in (base / "box" / f"{image.stem}.csv").read_text(encoding="utf-8", errors="replace").splitlines():
            parts = raw.split(",", 8)
            if len(parts) == 9:
                c = [float(v) for v in parts[:8]]
                lines.append((parts[8], [(c[0], c[1]), (c[2], c[3]), (c[4], c[5]), (c[6], c[7])]))
        key = json.loads((base / "key" / f"{image.stem}.json").read_text(encoding="utf-8"))
        yield image, lines, key


def funsd() -> Iterator[tuple[Path, list[tuple[str, Quad]], list[dict[str, object]]]]:
    """Form image, its true words with boxes (empty words dropped), and its entities."""
    base = eval_dir() / "ocr-funsd" / "training_data"
    for ann in sorted((base / "annotations").glob("*.json")):
        form = json.loads(ann.read_text(encoding="utf-8"))["form"]
        words = []
        for entity in form:
            for word in entity["words"]:
                text = word["text"].strip()
                if text:
                    x0, y0, x1, y1 = (float(v) for v in word["box"])
                    words.append((text, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
        yield base / "images" / f"{ann.stem}.png", words, form
