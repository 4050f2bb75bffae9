"""Quality measures shared by the tests, the benchmarks and calibration.

>>> levenshtein("kitten", "sitting")
3
>>> round(cer("TOTAL 12.50", "TOTAL 12.5O"), 3)
0.1
>>> substring_distance("TOTAL", "SUBTOTAL12.50")
0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "best_threshold_accuracy",
    "cer",
    "levenshtein",
    "located_cer",
    "matched_line_cer",
    "normalise_ocr",
    "substring_distance",
    "wer",
    "word_recall",
]


def levenshtein(a: Sequence[object], b: Sequence[object]) -> int:
    """Edit distance (insertions, deletions, substitutions) of two strings or word lists, two rows at a time."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise_ocr(text: str) -> str:
    """Upper case without white space: engines differ in spacing and case, not in what they read."""
    return re.sub(r"\s+", "", text).upper()


def cer(predicted: str, truth: str) -> float:
    """Character error rate of one string against its truth, both normalised."""
    p, t = normalise_ocr(predicted), normalise_ocr(truth)
    return levenshtein(p, t) / max(1, len(t))


def matched_line_cer(predicted: Sequence[str], truth: Sequence[str]) -> tuple[int, int]:
    """Errors and characters when each true line is matched to its closest predicted line.

    Reading order and line splitting differ between engines, so lines are matched rather than concatenated.
    A true line with no close prediction costs its full length. Returns (edit errors, true characters).
    """
    preds = [normalise_ocr(p) for p in predicted if normalise_ocr(p)]
    errors = chars = 0
    for line in truth:
        t = normalise_ocr(line)
        if not t:
            continue
        chars += len(t)
        best = len(t)
        for p in preds:
            if abs(len(p) - len(t)) >= best:
                continue
            best = min(best, levenshtein(p, t))
            if best == 0:
                break
        errors += best
    return errors, chars


def substring_distance(pattern: str, text: str) -> int:
    """Fewest edits that turn `pattern` into some substring of `text` (free start and end in `text`)."""
    if not pattern:
        return 0
    previous = [0] * (len(text) + 1)  # matching may start anywhere in text at no cost
    for i, cp in enumerate(pattern, 1):
        current = [i]
        for j, ct in enumerate(text, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cp != ct)))
        previous = current
    return min(previous)


Quad = Sequence[tuple[float, float]]


def _bounds(quad: Quad) -> tuple[float, float, float, float]:
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    return min(xs), min(ys), max(xs), max(ys)


def located_cer(predicted: Sequence[tuple[str, Quad]], truth: Sequence[tuple[str, Quad]]) -> tuple[int, int]:
    """Errors and characters when each true item is read from the predicted lines that overlap its box.

    The overlapping lines are joined left to right and the true text is matched against the best substring
    of them, so an engine that splits a line into columns, or merges neighbouring words into one line, is
    judged on what it read rather than on how it grouped it. Text is compared without case or spaces.
    """
    boxes = [(normalise_ocr(text), _bounds(quad)) for text, quad in predicted]
    errors = chars = 0
    for text, quad in truth:
        t = normalise_ocr(text)
        if not t:
            continue
        chars += len(t)
        x0, y0, x1, y1 = _bounds(quad)
        height = max(1.0, y1 - y0)
        near = []
        for p, (px0, py0, px1, py1) in boxes:
            overlap_y = min(y1, py1) - max(y0, py0)
            overlap_x = min(x1, px1) - max(x0, px0)
            if p and overlap_y > 0.4 * min(height, py1 - py0) and overlap_x > 0:
                near.append((px0, p))
        joined = "".join(p for _, p in sorted(near))
        errors += min(len(t), substring_distance(t, joined)) if joined else len(t)
    return errors, chars


def wer(predicted: str, truth: str) -> float:
    """Word error rate, ignoring case and punctuation."""
    p = re.findall(r"[a-z0-9']+", predicted.lower())
    t = re.findall(r"[a-z0-9']+", truth.lower())
    return levenshtein(p, t) / max(1, len(t))


def word_recall(predicted_text: str, truth_words: Iterable[str]) -> tuple[int, int]:
    """How many true alphanumeric tokens appear among the predicted tokens (case-insensitive)."""
    found = set(re.findall(r"[A-Z0-9]+", predicted_text.upper()))
    truth = [w for word in truth_words for w in re.findall(r"[A-Z0-9]+", word.upper())]
    return sum(1 for w in truth if w in found), len(truth)


def best_threshold_accuracy(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """Verification accuracy at the best threshold on these scores, and that threshold (score >= t means same)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    order = np.argsort(s)
    s, y = s[order], y[order]
    # Predict "same" for everything from index i on: correct = different below i + same from i on.
    diff_below = np.concatenate([[0], np.cumsum(~y)])
    same_from = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    correct = diff_below + same_from
    i = int(np.argmax(correct))
    threshold = float(s[i]) if i < len(s) else float(s[-1]) + 1e-6
    return float(correct[i]) / len(s), threshold
