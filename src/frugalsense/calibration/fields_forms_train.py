"""Offline: train the form pair model on FUNSD forms and calibrate its emission threshold.

    python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR                # target 0.9
    python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR --target 0.8   # another target

Split: the forms sorted by file name; those at even positions (0, 2, 4, ...) train and calibrate, the odd ones
are never looked at here (bench/fields.py --forms reports on them). OCR runs once per form through the library's
text ladder (`Analyzer.analyze(..., ["text"])`) and is cached as JSON in `--ocr-cache`.

Labels come from FUNSD's annotations: each OCR segment is given the entity whose words cover most of it (its
role: question, answer, other, header), two segments are one entry when they have the same entity, and a
candidate pair is right when its two segments' entities are linked as question and answer. Training
(scikit-learn `GradientBoostingClassifier`, written out as plain trees):

- the join model on every proposed join (fields.forms_join);
- the role models (is it a question? an answer?) on every segment of the training forms, joined by join models
  that did not see them;
- the pair model on every candidate pair, with the role scores of its segments cross-fitted (each form's given
  by role models that did not see it), as they will be on a new form;
- the decision score (abstention off) that gives the best cross-fitted pair F1 on the training forms.

Threshold (`calibrate`): the training forms' pairs scored by whole models fitted on the other folds, each pair
right when its question and answer texts equal a pair of the annotation (`pair_matches`, exact rule), then
Learn-then-Test with a Bonferroni family over `THRESHOLD_GRID`, saved as the ``fields-forms`` profile.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.calibration.fields_train import PACKAGE, Scored, calibrate_threshold, ocr_cached
from frugalsense.calibration.ltt import NEVER
from frugalsense.fields.forms import PROFILE_TASK, FormFields, join_segments, link_pairs
from frugalsense.fields.forms_features import ROLE_FEATURES, pair_candidates, role_features
from frugalsense.fields.forms_join import JOIN_FEATURES, join_candidates
from frugalsense.fields.forms_layout import FormPage, Segment
from frugalsense.fields.forms_model import MODEL_FILE, PAIR_INPUTS, FormModel, Tree, Trees
from frugalsense.fields.types import Evidence
from frugalsense.profiles import Profile
from frugalsense.results import Box, TextLine

__all__ = [
    "LENIENT",
    "Entity",
    "Form",
    "Linked",
    "Prepared",
    "calibrate",
    "cross_fitted",
    "fit",
    "linked",
    "load_forms",
    "normalise",
    "pair_matches",
    "prepare",
    "split",
]

#: lenient rule: both texts at least this similar (difflib's ratio on the normalised texts)
LENIENT = 0.8
#: decision scores tried on the training forms (the pair score at which a pair is proposed at all)
DECISIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
_TREES = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "random_state": 0}


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


def _entity_of(segment: Segment, form: Form) -> int | None:
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


@dataclass(frozen=True)
class Prepared:
    """A form's page before joining (from our OCR or the annotation's words), with the joins proposed on it:
    features, the two segments, and whether they belong to one entity."""

    form: Form
    page: FormPage
    joins: list[tuple[tuple[float, ...], int, int, bool]]

    @property
    def stem(self) -> str:
        return self.form.stem


def prepare(forms: Sequence[Form], source: str = "ocr") -> list[Prepared]:
    """Each form's page from `source`: ``ocr`` (the text ladder's lines) or ``words`` (the annotation's words
    as lines)."""
    out = []
    for form in forms:
        page = FormPage.from_lines(form.lines if source == "ocr" else form.annotation_lines())
        owner = [_entity_of(s, form) for s in page.segments]
        joins = [
            (c.features, c.first, c.second, owner[c.first] is not None and owner[c.first] == owner[c.second])
            for c in join_candidates(page)
        ]
        out.append(Prepared(form, page, joins))
    return out


@dataclass(frozen=True)
class Linked:
    """A page after joining, with its segments' role features and roles (their entities' labels) and its
    candidate pairs: features, question, answer, and whether the two entities are linked."""

    form: Form
    page: FormPage
    roles: list[tuple[float, ...]]
    role_labels: list[str]
    candidates: list[tuple[tuple[float, ...], int, int, bool]]

    @property
    def stem(self) -> str:
        return self.form.stem


def linked(form: Form, page: FormPage, *, entities: bool = False) -> Linked:
    """Labels and features of a joined page; with `entities`, a page of the annotation's entities (each
    segment's part names its entity)."""
    if entities:
        owner: list[int | None] = [s.parts[0].line for s in page.segments]
    else:
        owner = [_entity_of(s, form) for s in page.segments]
    labels = [form.entities[e].label if e is not None else "other" for e in owner]
    candidates = [
        (
            c.features,
            c.question.index,
            c.answer.index,
            (owner[c.question.index], owner[c.answer.index]) in form.links,
        )
        for c in pair_candidates(page)
    ]
    return Linked(form, page, role_features(page), labels, candidates)


def _trees(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], n: int | None = None) -> Trees:
    """Boosted trees fitted on (x, y) and written out as `Trees` (checked to give scikit-learn's answers)."""
    from sklearn.ensemble import GradientBoostingClassifier

    params = {**_TREES, **({"n_estimators": n} if n else {})}
    model = GradientBoostingClassifier(init="zero", **params).fit(x, y)  # type: ignore[arg-type]
    trees = []
    for (estimator,) in model.estimators_:
        t = estimator.tree_
        trees.append(
            Tree(
                tuple(int(f) for f in t.feature),
                tuple(float(v) for v in t.threshold),
                tuple(int(v) for v in t.children_left),
                tuple(int(v) for v in t.children_right),
                tuple(float(v) for v in t.value[:, 0, 0]),
            )
        )
    out = Trees.from_dict(
        json.loads(json.dumps(Trees(names, float(params["learning_rate"]), 0.0, tuple(trees)).to_dict()))
    )
    sample = x[:: max(1, len(x) // 200)]
    if not np.allclose(out.probabilities(sample), model.predict_proba(sample)[:, 1], atol=1e-6):
        raise RuntimeError("the exported trees do not reproduce scikit-learn's probabilities")
    return out


def _folds(n: int, folds: int, seed: int) -> list[set[int]]:
    order = np.random.default_rng(seed).permutation(n)
    return [{int(i) for i in order[k::folds]} for k in range(folds)]


def _join_model(prepared: Sequence[Prepared]) -> Trees:
    x = np.asarray([f for p in prepared for f, *_ in p.joins], np.float64).reshape(-1, len(JOIN_FEATURES))
    return _trees(x, np.asarray([same for p in prepared for *_, same in p.joins]), JOIN_FEATURES, 100)


def _role_models(pages: Sequence[Linked]) -> tuple[Trees, Trees]:
    x = np.asarray([r for p in pages for r in p.roles], np.float64)
    labels = [label for p in pages for label in p.role_labels]
    question = _trees(x, np.asarray([label == "question" for label in labels]), ROLE_FEATURES)
    answer = _trees(x, np.asarray([label == "answer" for label in labels]), ROLE_FEATURES)
    return question, answer


def fit(
    prepared: Sequence[Prepared],
    *,
    decision: float,
    folds: int = 4,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> FormModel:
    """The join model on every proposed join; the role models and the pair model on the pages as joined by
    join models that did not see them, with role scores from role models that did not see them either (as
    both will be on a new form)."""
    join = _join_model(prepared)
    pages: list[Linked | None] = [None] * len(prepared)
    for held in _folds(len(prepared), folds, seed):
        fold_join = _join_model([p for i, p in enumerate(prepared) if i not in held])
        for i in held:
            pages[i] = linked(prepared[i].form, join_segments(prepared[i].page, fold_join))
    joined = [p for p in pages if p is not None]
    question, answer = _role_models(joined)
    roles: dict[str, np.ndarray] = {}
    for held in _folds(len(joined), folds, seed):
        q_model, a_model = _role_models([p for i, p in enumerate(joined) if i not in held])
        for i in held:
            rows = joined[i].roles
            roles[joined[i].stem] = np.column_stack([q_model.probabilities(rows), a_model.probabilities(rows)])
    x = np.asarray(
        [(*f, *roles[p.stem][q], *roles[p.stem][a]) for p in joined for f, q, a, _ in p.candidates], np.float64
    )
    y = np.asarray([right for p in joined for *_, right in p.candidates])
    pairs = _trees(x.reshape(len(x), len(PAIR_INPUTS)), y, PAIR_INPUTS, 200)
    return FormModel(join, question, answer, pairs, decision, dict(meta or {}))


def cross_fitted(
    prepared: Sequence[Prepared], *, folds: int = 4, seed: int = 0
) -> list[tuple[Prepared, FormFields]]:
    """Every form read by a whole model fitted on the other folds, proposing every pair (decision 0): the pairs
    at a decision d are those scoring at least d, since pairs are taken best first."""
    out: list[tuple[Prepared, FormFields]] = []
    for held in _folds(len(prepared), folds, seed + 1):
        model = fit([p for i, p in enumerate(prepared) if i not in held], decision=0.0, folds=folds, seed=seed)
        for i in sorted(held):
            page = join_segments(prepared[i].page, model.join)
            out.append((prepared[i], link_pairs(page, model, 0.0)))
    return out


def prf(right: int, emitted: int, truths: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (precision 1 when nothing is emitted)."""
    precision = right / emitted if emitted else 1.0
    recall = right / truths if truths else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_pairs(
    found: Sequence[tuple[Prepared | Linked | Form, FormFields]], *, cut: float = 0.0, lenient: bool = False
) -> tuple[int, int, int]:
    """(right, emitted, annotated) over forms, counting the pairs with a confidence of at least `cut`."""
    right = emitted = truths = 0
    for item, fields in found:
        form = item if isinstance(item, Form) else item.form
        kept = [(p.question, p.answer) for p in fields.pairs if p.confidence >= cut]
        right += sum(pair_matches(kept, form.truth(), lenient=lenient))
        emitted += len(kept)
        truths += len(form.links)
    return right, emitted, truths


def choose_decision(found: Sequence[tuple[Prepared, FormFields]]) -> float:
    """The decision score of `DECISIONS` with the best exact pair F1 on cross-fitted training forms."""
    return max(DECISIONS, key=lambda d: (prf(*score_pairs(found, cut=d))[2], -d))


#: thresholds tested, fixed before any data is seen (Bonferroni needs a fixed family)
THRESHOLD_GRID = (*(round(0.30 + 0.05 * i, 2) for i in range(14)), 0.99)


def calibrate(
    found: Sequence[tuple[Prepared, FormFields]], *, decision: float, target: float, risk: float
) -> tuple[float | None, list[dict[str, float]], list[Scored]]:
    """The lowest threshold whose emitted pairs are right (exact rule) with precision >= `target` at `risk`:
    fields_train.calibrate_threshold's Learn-then-Test (Hoeffding-Bentkus p-values, Bonferroni over
    `THRESHOLD_GRID`) on the pairs proposed at `decision`. Returns the threshold (None: nothing certified), the
    test at every threshold, and the scored pairs."""
    scored = []
    for p, fields in found:
        kept = [pair for pair in fields.pairs if pair.confidence >= decision]
        exact = pair_matches([(x.question, x.answer) for x in kept], p.form.truth())
        lenient = pair_matches([(x.question, x.answer) for x in kept], p.form.truth(), lenient=True)
        for pair, right, near in zip(kept, exact, lenient, strict=True):
            scored.append(Scored(p.stem, "pair", pair.confidence, (), right, near, pair.answer, pair.question))
    result = calibrate_threshold(scored, target=target, risk=risk)
    threshold = None if result.threshold is None else max(decision, result.threshold)
    return threshold, result.tested, scored


def to_profile(
    threshold: float | None,
    tested: list[dict[str, float]],
    *,
    target: float,
    risk: float,
    provenance: dict[str, Any],
) -> Profile:
    chosen = next((t for t in tested if t["threshold"] == threshold), None)
    return Profile(
        task=PROFILE_TASK,
        rungs=["emit", "abstain"],
        thresholds=[NEVER if threshold is None else threshold],
        target=target,
        risk=risk,
        params={
            "precision_target": target,
            "rule": "exact: question and answer text equal, case and white space ignored",
        },
        calibration={
            "created": datetime.now(UTC).date().isoformat(),
            "method": "ltt-bonferroni-hb (precision of emitted pairs, conditional on emission)",
            "certified": threshold is not None,
            "fallback": threshold is None,
            "chosen": chosen,
            "grid": list(THRESHOLD_GRID),
            "tested": tested,
            **provenance,
        },
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--funsd", type=Path, default=Path("../shared/eval/ocr-funsd/training_data"))
    parser.add_argument("--ocr-cache", type=Path, required=True, help="folder of cached OCR results (JSON)")
    parser.add_argument("--target", type=float, default=0.9, help="precision of emitted pairs (exact rule)")
    parser.add_argument("--risk", type=float, default=0.1, help="allowed probability the target is missed")
    parser.add_argument("--model-out", type=Path, default=PACKAGE / "data" / "fields" / MODEL_FILE)
    parser.add_argument("--profile-out", type=Path, default=PACKAGE / "data" / "profiles" / f"{PROFILE_TASK}.json")
    args = parser.parse_args(argv)

    train_forms, _ = split(load_forms(args.funsd, args.ocr_cache))
    train = prepare(train_forms)
    found = cross_fitted(train)
    decision = choose_decision(found)
    data = {
        "data": "FUNSD (Jaume et al. 2019) training split via ../shared/eval/ocr-funsd; research use",
        "forms": [f.stem for f in train_forms],
        "split": "forms sorted by file name; even positions (0, 2, 4, ...) train and calibrate",
    }
    model = fit(
        train, decision=decision, meta={"format": "frugalsense-forms-trees", "version": 1, "trained_on": data}
    )
    args.model_out.parent.mkdir(parents=True, exist_ok=True)
    args.model_out.write_text(json.dumps(model.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    threshold, tested, scored = calibrate(found, decision=decision, target=args.target, risk=args.risk)
    cut = NEVER if threshold is None else threshold
    emitted = [s for s in scored if s.confidence >= cut]
    precision = sum(s.right for s in emitted) / max(1, len(emitted))
    at_target = {
        str(t): calibrate(found, decision=decision, target=t, risk=args.risk)[0]
        for t in (0.95, 0.9, 0.85, 0.8, 0.7)
    }
    profile = to_profile(
        threshold,
        tested,
        target=args.target,
        risk=args.risk,
        provenance={
            **data,
            "decision": decision,
            "scores": "cross-fitted: each training form linked by a model fitted on the other 3 of 4 folds",
            "guarantee": f"pairs emitted are right (question and answer text equal to an annotated pair, case and "
            f"white space ignored) with precision >= {args.target}, with probability >= {1 - args.risk} over the "
            "calibration draw",
            "pairs_scored": len(scored),
            "emitted_share": round(len(emitted) / max(1, len(scored)), 4),
            "emitted_precision": round(precision, 4),
            "threshold_at_target": at_target,
            "command": "python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR "
            f"--target {args.target} --risk {args.risk}",
        },
    )
    profile.save(args.profile_out)
    print(
        f"decision {decision}; threshold {cut} (certified: {threshold is not None}); emitted {len(emitted)}/"
        f"{len(scored)} pairs at precision {precision:.3f} on the cross-fitted training forms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
