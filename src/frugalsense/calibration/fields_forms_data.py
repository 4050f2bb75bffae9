"""FUNSD forms for the form pair model: the annotation read (entities, their links, the words as OCR lines),
the split, and the pair metric (exact and lenient).

Offline only: the training script (calibration.fields_forms_train) and bench/fields.py --forms use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from frugalsense.calibration.fields_train import ocr_cached
from frugalsense.fields.forms import FormFields
from frugalsense.fields.forms_layout import FormPage, Segment
from frugalsense.fields.types import Evidence
from frugalsense.results import Box, TextLine

__all__ = [
    "LENIENT",
    "RULES",
    "Entity",
    "Form",
    "count_pairs",
    "entity_of",
    "load_forms",
    "normalise",
    "pair_matches",
    "prf",
    "split",
]

#: lenient rule: both texts at least this similar (difflib's ratio on the normalised texts)
LENIENT = 0.8
RULES = {
    "exact": "question and answer texts equal to an annotated pair's, case and white space ignored",
    "lenient": f"question and answer texts both at least {LENIENT} similar to an annotated pair's (difflib ratio, "
    "case and white space ignored)",
}


def normalise(text: str) -> str:
    """The exact rule's comparison: case and white space do not count (FUNSD's text spaces out punctuation,
    "9/ 3/ 92", where OCR reads "9/3/92").

    >>> normalise("Name / Phone Ext. :") == normalise("name/phone ext.:")
    True
    """
    return re.sub(r"\s+", "", text).casefold()


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def pair_matches(
    found: Sequence[tuple[str, str]], truth: Sequence[tuple[str, str]], *, lenient: bool = False
) -> list[bool]:
    """For each pair found, whether it matches a pair of the annotation, each annotated pair matched at most
    once: exactly (`normalise`d question and answer equal) or, `lenient`, both at least `LENIENT` similar.

    >>> pair_matches([("Date:", "9/3/92"), ("Date:", "9/3/92")], [("DATE :", "9/ 3/ 92")])
    [True, False]
    >>> pair_matches([("Dale:", "9/3/92")], [("Date:", "9/3/92")], lenient=True)
    [True]
    """
    wanted = [(normalise(q), normalise(a)) for q, a in truth]
    taken = [False] * len(wanted)
    out = [False] * len(found)
    keys = [(normalise(q), normalise(a)) for q, a in found]
    for i, key in enumerate(keys):  # exact matches first, so a lenient one never takes an exact one's partner
        j = next((j for j, w in enumerate(wanted) if not taken[j] and w == key), None)
        if j is not None:
            taken[j] = out[i] = True
    if lenient:
        options = []
        for i, (q, a) in enumerate(keys):
            if out[i]:
                continue
            for j, (wq, wa) in enumerate(wanted):
                if not taken[j]:
                    score = min(_similar(q, wq), _similar(a, wa))
                    if score >= LENIENT:
                        options.append((score, i, j))
        for _, i, j in sorted(options, reverse=True):
            if not out[i] and not taken[j]:
                taken[j] = out[i] = True
    return out


@dataclass(frozen=True)
class Entity:
    """One FUNSD entity: its id, role (question, answer, header, other), text, box and words (text, box)."""

    id: int
    label: str
    text: str
    box: tuple[float, float, float, float]
    words: tuple[tuple[str, tuple[float, float, float, float]], ...]


@dataclass(frozen=True)
class Form:
    """One form: its OCR lines (from the text ladder), what reading it cost, its entities and their links."""

    stem: str
    lines: list[TextLine]
    cpu_s: float
    entities: dict[int, Entity]
    links: frozenset[tuple[int, int]]  # (question id, answer id), both with text

    def truth(self) -> list[tuple[str, str]]:
        """The annotated (question, answer) texts, in the order of the question ids."""
        return [(self.entities[q].text, self.entities[a].text) for q, a in sorted(self.links)]

    def annotation_lines(self) -> list[TextLine]:
        """The annotation's words as OCR lines: words on one row joined while the gap is under a word's height
        (as PP-OCR's detector joins them). The upper bound that has no OCR errors."""
        words = [(t, b) for e in self.entities.values() for t, b in e.words if t.strip()]
        words.sort(key=lambda w: ((w[1][1] + w[1][3]) / 2, w[1][0]))
        rows: list[list[tuple[str, tuple[float, float, float, float]]]] = []
        for word in words:
            _, (_, y0, _, y1) = word
            if rows:
                top, bottom = rows[-1][0][1][1], rows[-1][0][1][3]
                if min(bottom, y1) - max(top, y0) > 0.5 * min(bottom - top, y1 - y0):
                    rows[-1].append(word)
                    continue
            rows.append([word])
        lines = []
        for row in rows:
            row.sort(key=lambda w: w[1][0])
            groups = [[row[0]]]
            for word in row[1:]:
                last = groups[-1][-1][1]
                gap = word[1][0] - last[2]
                if gap < max(1.0, last[3] - last[1]):
                    groups[-1].append(word)
                else:
                    groups.append([word])
            for group in groups:
                x0 = min(b[0] for _, b in group)
                y0 = min(b[1] for _, b in group)
                x1 = max(b[2] for _, b in group)
                y1 = max(b[3] for _, b in group)
                text = " ".join(t for t, _ in group)
                lines.append(TextLine(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 1.0, "annotation"))
        return lines

    def entity_page(self) -> FormPage:
        """The annotation's entities as segments: the upper bound of linking alone (no OCR, no segmentation)."""
        segments = []
        for e in self.entities.values():
            if e.text.strip():
                x0, y0, x1, y1 = e.box
                part = Evidence(e.id, Box(x0, y0, x1 - x0, y1 - y0), e.text)
                segments.append(Segment(0, e.text, x0, y0, x1, y1, (part,), 1.0))
        return FormPage.from_segments(segments)


def _box(values: Sequence[Any]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    return x0, y0, x1, y1


def load_forms(funsd: Path, cache: Path) -> list[Form]:
    """Every FUNSD form in `funsd` (``images/``, ``annotations/``), sorted by file name, with its cached OCR."""
    out = []
    for image in sorted((funsd / "images").glob("*.png")):
        data = json.loads((funsd / "annotations" / f"{image.stem}.json").read_text(encoding="utf-8"))
        entities = {
            int(e["id"]): Entity(
                int(e["id"]),
                str(e["label"]),
                str(e["text"]),
                _box(e["box"]),
                tuple((str(w["text"]), _box(w["box"])) for w in e["words"]),
            )
            for e in data["form"]
        }
        links = set()
        for e in data["form"]:
            for a, b in e["linking"]:
                if a not in entities or b not in entities:
                    continue
                q, ans = (a, b) if entities[a].label == "question" else (b, a)
                roles = (entities[q].label, entities[ans].label)
                if roles == ("question", "answer") and entities[q].text.strip() and entities[ans].text.strip():
                    links.add((q, ans))
        lines, cpu = ocr_cached(image, cache)
        out.append(Form(image.stem, lines, cpu, entities, frozenset(links)))
    return out


def split(forms: Sequence[Form]) -> tuple[list[Form], list[Form]]:
    """(even positions: train and calibrate, odd positions: report), in file-name order."""
    ordered = sorted(forms, key=lambda f: f.stem)
    return ordered[0::2], ordered[1::2]


def entity_of(segment: Segment, form: Form) -> int | None:
    """The entity whose words cover most of the segment (at least a fifth of it), or None."""
    best, best_cover = None, 0.2 * segment.width * segment.height
    for e in form.entities.values():
        cover = 0.0
        for text, (x0, y0, x1, y1) in e.words:
            if text.strip():
                dx = min(segment.x1, x1) - max(segment.x0, x0)
                dy = min(segment.y1, y1) - max(segment.y0, y0)
                cover += max(0.0, dx) * max(0.0, dy)
        if cover > best_cover:
            best, best_cover = e.id, cover
    return best


def prf(right: int, emitted: int, truths: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (precision 1 when nothing is emitted)."""
    precision = right / emitted if emitted else 1.0
    recall = right / truths if truths else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def count_pairs(
    found: Sequence[tuple[Form, FormFields]], *, cut: float = 0.0, lenient: bool = False
) -> tuple[int, int, int]:
    """(right, emitted, annotated) over forms, counting the emitted pairs with a confidence of at least `cut`."""
    right = emitted = truths = 0
    for form, fields in found:
        kept = [(p.question, p.answer) for p in fields.pairs if p.confidence >= cut]
        right += sum(pair_matches(kept, form.truth(), lenient=lenient))
        emitted += len(kept)
        truths += len(form.links)
    return right, emitted, truths
