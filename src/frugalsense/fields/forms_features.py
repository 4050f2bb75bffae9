"""Candidate (question, answer) pairs of a form page and the hand-made features the pair model weighs.

A pair is proposed when the answer sits where forms put answers: to the right of the question on the same row,
or below it within a few lines and roughly under it. Every feature is a number; `PAIR_FEATURES` fixes their
order for the model (fields.forms_model). Distances are in body-text line heights, so the scan's resolution does
not matter.

    >>> from frugalsense.fields.forms_layout import Segment
    >>> def seg(text, x, y, w=80):
    ...     return Segment(0, text, x, y, x + w, y + 12, (), 0.95)
    >>> page = FormPage.from_segments([seg("Date:", 10, 10, 40), seg("9/3/92", 60, 10), seg("To:", 10, 40, 30)])
    >>> [(c.question.text, c.answer.text) for c in pair_candidates(page)][:2]
    [('Date:', '9/3/92'), ('Date:', 'To:')]
    >>> f = dict(zip(PAIR_FEATURES, pair_candidates(page)[0].features))
    >>> f["q_colon_end"], f["right"], round(f["dx"], 2)
    (1.0, 1.0, 0.83)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from frugalsense.fields.forms_layout import FormPage, Segment, is_right_of, overlap, same_row

__all__ = [
    "LABEL_WORDS",
    "PAIR_FEATURES",
    "ROLE_FEATURES",
    "PairCandidate",
    "pair_candidates",
    "role_features",
    "text_shape",
]

#: words that name a field on English office forms (a generic list, not drawn from the evaluation forms)
LABEL_WORDS = frozenset(
    (
        "account", "address", "amount", "approved", "attention", "attn", "by", "cc", "city", "client",
        "code", "comments", "company", "contact", "cost", "country", "date", "dept", "department", "description",
        "destination", "division", "due", "email", "ext", "fax", "file", "from", "job", "manager", "name", "no",
        "number", "office", "order", "page", "phone", "position", "project", "quantity", "re", "reference",
        "region", "remarks", "requested", "sender", "signature", "size", "source", "state", "status", "street",
        "subject", "supplier", "telephone", "tel", "time", "title", "to", "total", "type", "zip",
    )
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z]+")
_DATE = re.compile(
    r"\d{1,2}\s?[/.-]\s?\d{1,2}\s?[/.-]\s?\d{2,4}"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}"
    r"|\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)",
    re.IGNORECASE,
)
_MARKS = frozenset("xX✓✔☐☑☒□■√v/")

#: the shape of one segment's text, measured for the question and the answer alike
_SHAPE = (
    "colon_end", "colon_any", "question_mark", "chars", "words", "upper", "digits", "title", "date", "label_word",
    "mark", "lower_start", "confidence",
)  # fmt: skip

PAIR_FEATURES: tuple[str, ...] = (
    "dx", "dy", "gap_y", "v_overlap", "h_overlap", "left_diff", "right", "below", "rank_from_q", "rank_from_a",
    "between", "height_ratio", "q_x", "a_x", "q_left_colon", "a_left_is_q", "a_above_is_q", "q_answers",
    "a_questions", "q_right_free",
    *(f"q_{name}" for name in _SHAPE),
    *(f"a_{name}" for name in _SHAPE),
)  # fmt: skip

#: what the role models (is this segment a question? an answer?) weigh: its text and its neighbourhood
ROLE_FEATURES: tuple[str, ...] = (
    *_SHAPE, "x", "y", "width", "height", "left_gap", "left_colon", "left_label", "right_gap", "right_colon",
    "right_label", "above_gap", "above_colon", "below_gap", "below_colon", "row_count", "column_count",
)  # fmt: skip

_RIGHT_LIMIT = 0.6  # of the page's width: an answer further right than this from its question is not proposed
_BELOW_LIMIT = 4.0  # line heights between a question's bottom and an answer's top
_COLUMN_LIMIT = 30.0  # line heights down a column: a table's header labels every cell under it
_PER_DIRECTION = 3  # nearest answers proposed per question, to the right and below
_PER_ROW = 8  # cells proposed per row header
_PER_COLUMN = 12  # cells proposed per column header


@dataclass(frozen=True)
class PairCandidate:
    """A proposed (question, answer) pair and its features, in the order of `PAIR_FEATURES`."""

    question: Segment
    answer: Segment
    features: tuple[float, ...]


def text_shape(text: str, confidence: float = 1.0) -> tuple[float, ...]:
    """The shape of a segment's text, in the order of `_SHAPE`.

    >>> dict(zip(_SHAPE, text_shape("Date:")))["label_word"], dict(zip(_SHAPE, text_shape("9/3/92")))["date"]
    (1.0, 1.0)
    """
    stripped = text.strip()
    letters = [c for c in stripped if c.isalpha()]
    digits = sum(c.isdigit() for c in stripped)
    words = _WORD.findall(stripped)
    return (
        float(stripped.endswith(":")),
        float(":" in stripped),
        float(stripped.endswith("?")),
        math.log1p(len(stripped)),
        float(len(stripped.split())),
        sum(c.isupper() for c in letters) / len(letters) if letters else 0.0,
        digits / max(1, len(stripped)),
        sum(w[0].isupper() for w in words) / len(words) if words else 0.0,
        float(bool(_DATE.search(stripped))),
        float(any(w.lower() in LABEL_WORDS for w in words[:4])),
        float(len(stripped) <= 2 and all(c in _MARKS for c in stripped)),
        float(bool(letters) and stripped[0].islower()),
        confidence,
    )


def _is_below(q: Segment, a: Segment, page: FormPage) -> bool:
    h = page.line_height
    return (
        not same_row(q, a)
        and a.cy > q.cy
        and a.y0 - q.y1 < _BELOW_LIMIT * h
        and a.x1 > q.x0 - h
        and a.x0 < q.x1 + 6.0 * h
    )


def _in_column(q: Segment, a: Segment, page: FormPage) -> bool:
    """`a` under `q` in its column: overlapping in x by half the narrower, further down than `_is_below` looks."""
    return (
        not same_row(q, a)
        and a.cy > q.cy
        and a.y0 - q.y1 < _COLUMN_LIMIT * page.line_height
        and overlap(q.x0, q.x1, a.x0, a.x1) > 0.5 * min(q.width, a.width)
    )


def _between(q: Segment, a: Segment, page: FormPage, right: bool) -> int:
    """Segments standing between a question and its proposed answer."""
    count = 0
    for s in page.segments:
        if s.index in (q.index, a.index):
            continue
        if right:
            inside = same_row(q, s) and s.cx > q.x1 and s.cx < a.x0
        else:
            inside = q.y1 <= s.cy <= a.y0 and overlap(s.x0, s.x1, min(q.x0, a.x0), max(q.x1, a.x1)) > 0
        count += inside
    return count


def pair_candidates(page: FormPage) -> list[PairCandidate]:
    """Every proposed pair of the page, questions in reading order, then right before below, nearest first."""
    segments = page.segments
    h = page.line_height
    width = max(1.0, page.right - page.left)
    proposed: list[tuple[Segment, Segment, bool, int]] = []
    for q in segments:
        right = sorted(
            (
                a
                for a in segments
                if a.index != q.index and is_right_of(q, a) and a.x0 - q.x1 < _RIGHT_LIMIT * width
            ),
            key=lambda a: a.x0,
        )[:_PER_ROW]
        below = sorted(
            (a for a in segments if a.index != q.index and (_is_below(q, a, page) or _in_column(q, a, page))),
            key=lambda a: (a.y0, a.x0),
        )[:_PER_COLUMN]
        proposed += [(q, a, True, rank) for rank, a in enumerate(right)]
        proposed += [(q, a, False, rank) for rank, a in enumerate(below)]
    by_answer: dict[int, list[tuple[float, int]]] = {}
    for q, a, _, _ in proposed:
        by_answer.setdefault(a.index, []).append((math.hypot(a.x0 - q.x1, a.cy - q.cy), q.index))
    answers_of = {q.index: 0 for q in segments}
    for q, _, _, _ in proposed:
        answers_of[q.index] += 1
    left, above = page.left_of, page.above
    shapes = {s.index: text_shape(s.text, s.confidence) for s in segments}
    out = []
    for q, a, right_of, rank in proposed:
        ranked = sorted(by_answer[a.index])
        q_left = left.get(q.index)
        q_right_free = not any(is_right_of(q, s) and s.x0 - q.x1 < 3.0 * h for s in segments if s.index != q.index)
        features = (
            (a.x0 - q.x1) / h,
            (a.cy - q.cy) / h,
            (a.y0 - q.y1) / h,
            overlap(q.y0, q.y1, a.y0, a.y1) / min(q.height, a.height),
            overlap(q.x0, q.x1, a.x0, a.x1) / min(q.width, a.width),
            (a.x0 - q.x0) / h,
            float(right_of),
            float(not right_of),
            float(rank),
            float([i for _, i in ranked].index(q.index)),
            float(_between(q, a, page, right_of)),
            a.height / q.height,
            (q.x0 - page.left) / width,
            (a.x0 - page.left) / width,
            float(q_left is not None and q_left.text.rstrip().endswith(":")),
            float(left.get(a.index) is q),
            float(above.get(a.index) is q),
            float(answers_of[q.index]),
            float(len(ranked)),
            float(q_right_free),
            *shapes[q.index],
            *shapes[a.index],
        )
        out.append(PairCandidate(q, a, features))
    return out


def role_features(page: FormPage) -> list[tuple[float, ...]]:
    """Per segment (in the page's order), the features of `ROLE_FEATURES`: its text's shape and its neighbours'."""
    h = page.line_height
    width = max(1.0, page.right - page.left)
    tall = max(1.0, page.bottom - page.top)
    far = 20.0  # line heights: the gap given when there is no neighbour
    left, above, right, below = page.left_of, page.above, page.right_of, page.below
    out = []
    for s in page.segments:
        shape = text_shape(s.text, s.confidence)
        lt, rt, ab, bl = left.get(s.index), right.get(s.index), above.get(s.index), below.get(s.index)
        out.append(
            (
                *shape,
                (s.x0 - page.left) / width,
                (s.cy - page.top) / tall,
                s.width / width,
                s.height / h,
                min(far, (s.x0 - lt.x1) / h) if lt else far,
                float(lt is not None and lt.text.rstrip().endswith(":")),
                float(lt is not None and text_shape(lt.text)[9] > 0),
                min(far, (rt.x0 - s.x1) / h) if rt else far,
                float(rt is not None and rt.text.rstrip().endswith(":")),
                float(rt is not None and text_shape(rt.text)[9] > 0),
                min(far, (s.y0 - ab.y1) / h) if ab else far,
                float(ab is not None and ab.text.rstrip().endswith(":")),
                min(far, (bl.y0 - s.y1) / h) if bl else far,
                float(bl is not None and bl.text.rstrip().endswith(":")),
                float(sum(same_row(s, t) for t in page.segments)),
                float(sum(abs(t.x0 - s.x0) < h and t.cy > s.cy for t in page.segments)),
            )
        )
    return out
