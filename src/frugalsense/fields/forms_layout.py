"""A form page's OCR lines cut into segments: the pieces that can be a question or an answer.

PP-OCR reads "Date: 9/3/92" as one box when the gap is small; a form's question and its answer are then one line.
A line is cut after a colon that ends a label ("Date:" | "9/3/92"), never inside a time ("10:30") or a ratio, and
the box is cut where the characters fall (assuming they are evenly wide). Lines are otherwise kept whole:
joining lines into paragraphs is the model's business (`forms_features.continuation_features`).

    >>> from frugalsense.results import TextLine
    >>> def line(text, x, y, w=200):
    ...     return TextLine(text, ((x, y), (x + w, y), (x + w, y + 20), (x, y + 20)), 0.95)
    >>> page = FormPage.from_lines([line("Date: 9/3/92", 10, 10), line("Time 10:30", 300, 10)])
    >>> [(s.text, round(s.x0)) for s in page.segments]
    [('Date:', 10), ('9/3/92', 110), ('Time 10:30', 300)]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from statistics import median

from frugalsense.fields.layout import Extent
from frugalsense.fields.types import Evidence
from frugalsense.results import Box, TextLine

__all__ = ["FormPage", "Segment", "is_right_of", "overlap", "same_row", "split_label"]

# a colon that ends a label: not between two digits (10:30, 1:2), followed by text
_LABEL_COLON = re.compile(r"(?<!\d):(?!\d)|(?<=\d):(?=\D)|(?<=\D):(?=\d)")
# a fill-in line read as text: a run of underscores, or of three or more dots ("Name.......J. Doe", "Date____")
_LEADER = re.compile(r"_+[._]*|\.{3,}[._]*")
_MIN_LABEL = 2  # characters before the colon: "a:" is an item letter, "To:" a label


@dataclass(frozen=True)
class Segment(Extent):
    """A piece of a form's text that can be a question or an answer: its text, axis-aligned box, the pieces of
    OCR lines it came from (`parts`: a line's index in the page's lines, the piece's box and text) and the
    recogniser's confidence."""

    index: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    parts: tuple[Evidence, ...]
    confidence: float

    @property
    def lines(self) -> tuple[int, ...]:
        return tuple(part.line for part in self.parts)

    def joined(self, other: Segment, index: int) -> Segment:
        """This segment with `other` (the next line of the same paragraph) appended."""
        chars = max(1, len(self.text)) + max(1, len(other.text))
        return Segment(
            index,
            f"{self.text} {other.text}",
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            self.parts + other.parts,
            (max(1, len(self.text)) * self.confidence + max(1, len(other.text)) * other.confidence) / chars,
        )


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    """How long the intervals [a0, a1] and [b0, b1] overlap (0 when apart)."""
    return max(0.0, min(a1, b1) - max(a0, b0))


def same_row(a: Segment, b: Segment) -> bool:
    """Whether two segments are printed on one row: their heights overlap by 40% of the smaller."""
    return overlap(a.y0, a.y1, b.y0, b.y1) > 0.4 * min(a.height, b.height)


def is_right_of(left: Segment, right: Segment) -> bool:
    """Whether `right` follows `left` on its row."""
    return (
        same_row(left, right) and right.x0 >= left.x0 + 0.5 * left.width and right.cx > left.x1 - 0.25 * left.width
    )


def split_label(text: str) -> list[tuple[int, int]]:
    """Character spans of the pieces of one OCR line: cut after each colon that ends a label, and around fill-in
    lines (which belong to neither side).

    >>> t = "Name/Phone Ext.:M.Hamann"
    >>> [t[a:b] for a, b in split_label(t)]
    ['Name/Phone Ext.:', 'M.Hamann']
    >>> [("From: J. Doe To: A. Roe"[a:b]) for a, b in split_label("From: J. Doe To: A. Roe")]
    ['From:', 'J. Doe To:', 'A. Roe']
    >>> split_label("Time 10:30"), split_label("Date:")
    ([(0, 10)], [(0, 5)])
    >>> [("NAME....Ronald Davis"[a:b]) for a, b in split_label("NAME....Ronald Davis")], split_label("By___")
    (['NAME', 'Ronald Davis'], [(0, 2)])
    """
    spans = []
    start = 0
    for match in _LEADER.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    cut = []
    for first, last in spans:
        start = first
        for match in _LABEL_COLON.finditer(text, first, last):
            end = match.end()
            if len(text[start : match.start()].strip()) < _MIN_LABEL or not text[end:last].strip():
                continue
            cut.append((start, end))
            start = end
        cut.append((start, last))
    out = []
    for a, b in cut:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class FormPage:
    """A form page's segments in reading order (top to bottom, then left to right), and the size of its text."""

    segments: tuple[Segment, ...]
    line_height: float  # median height of a segment: the size of the body text
    left: float
    top: float
    right: float
    bottom: float

    @classmethod
    def from_lines(cls, lines: Sequence[TextLine]) -> FormPage:
        pieces: list[Segment] = []
        for number, line in enumerate(lines):
            text = unicodedata.normalize("NFKC", line.text).strip()
            if not text or not line.quad:
                continue
            xs = [x for x, _ in line.quad]
            ys = [y for _, y in line.quad]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            per_char = (x1 - x0) / max(1, len(text))
            for a, b in split_label(text):
                left, right = x0 + a * per_char, x0 + b * per_char
                part = Evidence(number, Box(left, y0, right - left, y1 - y0), text[a:b])
                pieces.append(Segment(0, text[a:b], left, y0, right, y1, (part,), float(line.confidence)))
        return cls.from_segments(pieces)

    @classmethod
    def from_segments(cls, pieces: Sequence[Segment]) -> FormPage:
        """A page of given segments (renumbered in reading order): OCR pieces, or a dataset's own entities."""
        if not pieces:
            return cls((), 1.0, 0.0, 0.0, 1.0, 1.0)
        height = float(median(p.height for p in pieces))
        ordered = sorted(pieces, key=lambda p: (round(p.cy / max(1.0, height / 2.0)), p.x0))
        segments = tuple(
            Segment(i, p.text, p.x0, p.y0, p.x1, p.y1, p.parts, p.confidence) for i, p in enumerate(ordered)
        )
        return cls(
            segments,
            height,
            min(s.x0 for s in segments),
            min(s.y0 for s in segments),
            max(s.x1 for s in segments),
            max(s.y1 for s in segments),
        )

    def __len__(self) -> int:
        return len(self.segments)

    @cached_property
    def left_of(self) -> dict[int, Segment]:
        """Each segment's nearest neighbour before it on its row, by index."""
        out: dict[int, Segment] = {}
        for s in self.segments:
            before = [t for t in self.segments if t.index != s.index and is_right_of(t, s)]
            if before:
                out[s.index] = max(before, key=lambda t: t.x1)
        return out

    @cached_property
    def above(self) -> dict[int, Segment]:
        """Each segment's nearest neighbour above it that overlaps it in x, by index."""
        out: dict[int, Segment] = {}
        for s in self.segments:
            up = [
                t
                for t in self.segments
                if t.cy < s.cy and not same_row(t, s) and overlap(t.x0, t.x1, s.x0, s.x1) > 0
            ]
            if up:
                out[s.index] = max(up, key=lambda t: t.y1)
        return out

    @cached_property
    def right_of(self) -> dict[int, Segment]:
        """Each segment's nearest neighbour after it on its row, by index."""
        out: dict[int, Segment] = {}
        for s, t in self.left_of.items():
            if t.index not in out or self.segments[s].x0 < out[t.index].x0:
                out[t.index] = self.segments[s]
        return out

    @cached_property
    def below(self) -> dict[int, Segment]:
        """Each segment's nearest neighbour below it, of those whose nearest above it is this one, by index."""
        out: dict[int, Segment] = {}
        for s, t in self.above.items():
            if t.index not in out or self.segments[s].y0 < out[t.index].y0:
                out[t.index] = self.segments[s]
        return out

    def merged(self, joins: Iterable[tuple[int, int]]) -> FormPage:
        """The page with the segments of each `joins` pair (indices) made one, their text in reading order:
        rows top to bottom, left to right within a row."""
        parent = list(range(len(self.segments)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in joins:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        groups: dict[int, list[Segment]] = {}
        for s in self.segments:  # already in reading order
            groups.setdefault(root(s.index), []).append(s)
        pieces = []
        for members in groups.values():
            whole = members[0]
            for other in members[1:]:
                whole = whole.joined(other, whole.index)
            pieces.append(whole)
        return FormPage.from_segments(pieces)
