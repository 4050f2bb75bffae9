"""A page's OCR lines as a reader sees them: boxes, rows left to right, positions within the printed area.

PP-OCR cuts a printed row into several boxes ("Total RM" ... "7,838.80"); a row puts them back together so a
keyword and its amount sit side by side. Positions are relative to the area the text covers, not the picture:
a receipt photographed on a table fills only part of it.

    >>> from frugalsense.results import TextLine
    >>> def line(text, x, y):
    ...     return TextLine(text, ((x, y), (x + 80, y), (x + 80, y + 20), (x, y + 20)), 0.9)
    >>> layout = ReceiptLayout.from_lines([line("9.00", 300, 101), line("TOTAL", 10, 100), line("SHOP", 10, 10)])
    >>> [row.text for row in layout.rows]
    ['SHOP', 'TOTAL 9.00']
    >>> round(layout.y_rel(layout.rows[1]), 2)  # the row's middle, near the bottom of the printed area
    0.91
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from frugalsense.results import Box, TextLine

__all__ = ["Extent", "Line", "ReceiptLayout", "Row"]


class Extent:
    """What an axis-aligned box (``x0, y0`` top left, ``x1, y1`` bottom right) says about where it is: shared by
    OCR lines here and the form segments of `forms_layout`."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def width(self) -> float:
        return max(1.0, self.x1 - self.x0)

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2.0

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2.0

    @property
    def box(self) -> Box:
        return Box(self.x0, self.y0, self.x1 - self.x0, self.y1 - self.y0)


@dataclass(frozen=True)
class Line(Extent):
    """One OCR line: its index in the page's lines, text, axis-aligned box and the recogniser's confidence."""

    index: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float

    @classmethod
    def from_text_line(cls, index: int, line: TextLine) -> Line:
        xs = [x for x, _ in line.quad] or [0.0]
        ys = [y for _, y in line.quad] or [0.0]
        # NFKC: full-width brackets and colons that the recogniser emits become the ASCII ones a person types.
        text = unicodedata.normalize("NFKC", line.text).strip()
        return cls(index, text, min(xs), min(ys), max(xs), max(ys), float(line.confidence))


@dataclass(frozen=True)
class Row:
    """Lines printed side by side, left to right, and its position among the page's rows (0 at the top)."""

    number: int
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)

    @property
    def y0(self) -> float:
        return min(line.y0 for line in self.lines)

    @property
    def y1(self) -> float:
        return max(line.y1 for line in self.lines)

    @property
    def x0(self) -> float:
        return min(line.x0 for line in self.lines)

    @property
    def x1(self) -> float:
        return max(line.x1 for line in self.lines)

    @property
    def height(self) -> float:
        return float(median(line.height for line in self.lines))

    @property
    def confidence(self) -> float:
        """The recogniser's confidence, weighted by characters: a long line counts more than a stray mark."""
        chars = [max(1, len(line.text)) for line in self.lines]
        return sum(c * line.confidence for c, line in zip(chars, self.lines, strict=True)) / sum(chars)


@dataclass(frozen=True)
class ReceiptLayout:
    """A page's lines grouped into rows, top to bottom, with the extent of the printed area."""

    lines: tuple[Line, ...]
    rows: tuple[Row, ...]
    left: float
    top: float
    right: float
    bottom: float
    line_height: float  # median height of a line: the size of the body text

    @classmethod
    def from_lines(cls, text_lines: Sequence[TextLine]) -> ReceiptLayout:
        lines = tuple(
            Line.from_text_line(i, tl) for i, tl in enumerate(text_lines) if tl.text.strip() and len(tl.quad) >= 1
        )
        if not lines:
            return cls((), (), 0.0, 0.0, 1.0, 1.0, 1.0)
        rows = _group_rows(lines)
        return cls(
            lines=lines,
            rows=rows,
            left=min(line.x0 for line in lines),
            top=min(line.y0 for line in lines),
            right=max(line.x1 for line in lines),
            bottom=max(line.y1 for line in lines),
            line_height=float(median(line.height for line in lines)),
        )

    def y_rel(self, row: Row) -> float:
        """Where the row's middle sits between the first row's top (0) and the last row's bottom (1)."""
        span = max(1.0, self.bottom - self.top)
        return min(1.0, max(0.0, ((row.y0 + row.y1) / 2.0 - self.top) / span)) if len(self.rows) > 1 else 0.0

    def x_rel(self, x: float) -> float:
        """Where `x` sits between the printed area's left (0) and right (1) edges."""
        return min(1.0, max(0.0, (x - self.left) / max(1.0, self.right - self.left)))

    def centred(self, row: Row) -> float:
        """How far the row's middle is from the printed area's middle, in half-widths (0: centred)."""
        middle = (self.left + self.right) / 2.0
        half = max(1.0, (self.right - self.left) / 2.0)
        return min(1.0, abs((row.x0 + row.x1) / 2.0 - middle) / half)


def _group_rows(lines: Sequence[Line]) -> tuple[Row, ...]:
    """Lines whose vertical middles fall within the row's band, taken top to bottom."""
    groups: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.cy, ln.x0)):
        if groups:
            current = groups[-1]
            top = median(ln.y0 for ln in current)
            bottom = median(ln.y1 for ln in current)
            overlap = min(bottom, line.y1) - max(top, line.y0)
            if overlap > 0.5 * min(bottom - top, line.height):
                current.append(line)
                continue
        groups.append([line])
    return tuple(Row(number, tuple(sorted(group, key=lambda ln: ln.x0))) for number, group in enumerate(groups))
