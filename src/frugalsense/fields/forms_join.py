"""Pieces of one entry put back together: an answer written over two lines, a name OCR read as two boxes.

A join is proposed between a segment and its nearest neighbour after it on its row (when the gap is under a
couple of line heights) or the nearest one under it (when the gap is under a line height); the join model
(fields.forms_model) says whether the two belong to one entry. Every feature is a number; `JOIN_FEATURES` fixes
their order.

    >>> from frugalsense.fields.forms_layout import Segment
    >>> def seg(text, x, y, w=80):
    ...     return Segment(0, text, x, y, x + w, y + 12, (), 0.95)
    >>> page = FormPage.from_segments([seg("Remarks:", 10, 10), seg("to be shipped", 100, 10),
    ...                                seg("by air", 100, 24)])
    >>> [(page.segments[c.first].text, page.segments[c.second].text) for c in join_candidates(page)]
    [('Remarks:', 'to be shipped'), ('to be shipped', 'by air')]
    >>> [s.text for s in page.merged([(1, 2)]).segments]
    ['Remarks:', 'to be shipped by air']
"""

from __future__ import annotations

from dataclasses import dataclass

from frugalsense.fields.forms_features import text_shape
from frugalsense.fields.forms_layout import FormPage, Segment

__all__ = ["JOIN_FEATURES", "JoinCandidate", "join_candidates"]

_SHAPE = ("colon_end", "chars", "upper", "digits", "label_word", "lower_start", "end_dot")
JOIN_FEATURES: tuple[str, ...] = (
    "row", "gap", "left_diff", "right_diff", "height_ratio", "width_ratio", "first_alone", "second_alone",
    *(f"first_{name}" for name in _SHAPE),
    *(f"second_{name}" for name in _SHAPE),
)  # fmt: skip

_ROW_GAP = 2.0  # line heights between two pieces of one row that may be one entry
_LINE_GAP = 1.0  # line heights between two lines that may be one entry


@dataclass(frozen=True)
class JoinCandidate:
    """Two segments (indices in the page) that may be one entry, and the features of `JOIN_FEATURES`."""

    first: int
    second: int
    features: tuple[float, ...]


def _shape(s: Segment) -> tuple[float, ...]:
    full = text_shape(s.text, s.confidence)
    # colon_end, chars, upper, digits, label_word, lower_start from text_shape; then a full stop at the end
    return (full[0], full[3], full[5], full[6], full[9], full[11], float(s.text.rstrip().endswith(".")))


def join_candidates(page: FormPage) -> list[JoinCandidate]:
    """Proposed joins: each segment with the next on its row and with the line under it, in reading order."""
    h = page.line_height
    out = []
    for s in page.segments:
        options = []
        after = page.right_of.get(s.index)
        if after is not None and after.x0 - s.x1 < _ROW_GAP * h:
            options.append((after, True))
        under = page.below.get(s.index)
        if under is not None and under.y0 - s.y1 < _LINE_GAP * h:
            options.append((under, False))
        for t, row in options:
            features = (
                float(row),
                ((t.x0 - s.x1) if row else (t.y0 - s.y1)) / h,
                (t.x0 - s.x0) / h,
                (t.x1 - s.x1) / h,
                t.height / s.height,
                t.width / s.width,
                float(s.index not in page.right_of),
                float(t.index not in page.right_of and t.index not in page.left_of),
                *_shape(s),
                *_shape(t),
            )
            out.append(JoinCandidate(s.index, t.index, features))
    return out
