"""Offline: train the form pair model on FUNSD forms and calibrate its emission threshold.

    python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR                 # the shipped profile
    python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR --rule exact    # certify equal texts

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
- the decision score (abstention off): the one of `DECISIONS` with the best exact pair F1 over the training
  forms, each read by whole models fitted on the other folds (`cross_fitted`);
- the confidence stage, a logistic regression over those cross-fitted pairs' `confidence_features`, labelled
  by whether the pair's texts match an annotated pair (`pair_matches`; lenient by default, ``--rule exact``).

Threshold (`calibrate`): the same cross-fitted pairs, their confidences given by confidence stages fitted on the
other folds, then Learn-then-Test with a Bonferroni family over `THRESHOLD_GRID`, saved as the ``fields-forms``
profile. docs/fields.md is the data card and states what is certified.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.calibration.fields_forms_data import RULES, Form, entity_of, load_forms, pair_matches, prf, split
from frugalsense.calibration.fields_train import PACKAGE, THRESHOLD_GRID, Scored, calibrate_threshold
from frugalsense.calibration.ltt import NEVER
from frugalsense.fields.forms import PROFILE_TASK, Choice, choose_pairs, join_segments
from frugalsense.fields.forms_features import ROLE_FEATURES, pair_candidates, role_features
from frugalsense.fields.forms_join import JOIN_FEATURES, join_candidates
from frugalsense.fields.forms_layout import FormPage
from frugalsense.fields.forms_model import (
    CONFIDENCE_FEATURES,
    MODEL_FILE,
    PAIR_INPUTS,
    FormModel,
    Tree,
    Trees,
)
from frugalsense.fields.scorer import LogisticField
from frugalsense.profiles import Profile

__all__ = [
    "DECISIONS",
    "Linked",
    "Prepared",
    "Read",
    "calibrate",
    "choose_decision",
    "cross_fitted",
    "fit",
    "linked",
    "prepare",
    "to_profile",
]

#: decision scores tried on the training forms (the pair score at which a pair is proposed at all)
DECISIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
_TREES = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "random_state": 0}


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
        owner = [entity_of(s, form) for s in page.segments]
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
        owner = [entity_of(s, form) for s in page.segments]
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
    if not np.allclose(out.probabilities(sample.tolist()), model.predict_proba(sample)[:, 1], atol=1e-6):
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
    roles: dict[int, np.ndarray] = {}
    for held in _folds(len(joined), folds, seed):
        q_model, a_model = _role_models([p for i, p in enumerate(joined) if i not in held])
        for i in held:
            rows = joined[i].roles
            roles[i] = np.column_stack([q_model.probabilities(rows), a_model.probabilities(rows)])
    x = np.asarray(
        [(*f, *roles[i][q], *roles[i][a]) for i, p in enumerate(joined) for f, q, a, _ in p.candidates], np.float64
    )
    y = np.asarray([right for p in joined for *_, right in p.candidates])
    pairs = _trees(x.reshape(len(x), len(PAIR_INPUTS)), y, PAIR_INPUTS, 200)
    return FormModel(join, question, answer, pairs, decision, dict(meta or {}))


@dataclass(frozen=True)
class Read:
    """A training form as a model that never saw it reads it: the pairs it chose with every pair proposed
    (decision 0; the pairs at a decision d are those scoring at least d, since pairs are taken best first)."""

    prepared: Prepared
    choices: list[Choice]

    def at(self, decision: float) -> list[Choice]:
        return [c for c in self.choices if c.score >= decision]

    def rights(self, decision: float, *, lenient: bool) -> list[bool]:
        """Whether each pair chosen at `decision` matches an annotated pair (`pair_matches`)."""
        texts = [(c.candidate.question.text, c.candidate.answer.text) for c in self.at(decision)]
        return pair_matches(texts, self.prepared.form.truth(), lenient=lenient)


def cross_fitted(prepared: Sequence[Prepared], *, folds: int = 4, seed: int = 0) -> list[Read]:
    """Every form read by a whole model (join, roles, pairs) fitted on the other folds."""
    out: list[Read] = []
    for held in _folds(len(prepared), folds, seed + 1):
        model = fit([p for i, p in enumerate(prepared) if i not in held], decision=0.0, folds=folds, seed=seed)
        for i in sorted(held):
            out.append(Read(prepared[i], choose_pairs(join_segments(prepared[i].page, model.join), model)))
    return out


def choose_decision(reads: Sequence[Read]) -> float:
    """The decision score of `DECISIONS` with the best exact pair F1 over the cross-fitted training forms."""
    truths = sum(len(r.prepared.form.links) for r in reads)

    def f1(decision: float) -> float:
        right = sum(sum(r.rights(decision, lenient=False)) for r in reads)
        return prf(right, sum(len(r.at(decision)) for r in reads), truths)[2]

    return max(DECISIONS, key=lambda d: (f1(d), -d))


def _confidence_model(reads: Sequence[Read], decision: float, *, lenient: bool) -> LogisticField | None:
    """The confidence stage: a logistic regression (L2, standardised features) from a chosen pair's
    `confidence_features` to whether it is right; None when the pairs are all right or all wrong."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray([c.features for r in reads for c in r.at(decision)], np.float64)
    y = np.asarray([right for r in reads for right in r.rights(decision, lenient=lenient)])
    if len(set(y.tolist())) < 2:
        return None
    x = x.reshape(len(x), len(CONFIDENCE_FEATURES))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=1.0, max_iter=5000).fit((x - mean) / scale, y)
    return LogisticField(
        CONFIDENCE_FEATURES, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0])
    )


def calibrate(
    reads: Sequence[Read], *, decision: float, target: float, risk: float, lenient: bool, folds: int = 4
) -> tuple[float | None, list[dict[str, float]], list[Scored]]:
    """The lowest threshold whose emitted pairs are right (`pair_matches`, exact or `lenient`) with precision >=
    `target` at `risk`: fields_train.calibrate_threshold's Learn-then-Test (Hoeffding-Bentkus p-values,
    Bonferroni over its `THRESHOLD_GRID`) on the pairs proposed at `decision`, each pair's confidence given by a
    confidence stage fitted on the other folds' forms. Returns the threshold (None: nothing certified), the test
    at every threshold, and the scored pairs (`right` by the chosen rule)."""
    scored = []
    for held in _folds(len(reads), folds, 7):
        stage = _confidence_model([r for i, r in enumerate(reads) if i not in held], decision, lenient=lenient)
        for i in sorted(held):
            chosen = reads[i].at(decision)
            if not chosen:
                continue
            rows = [c.features for c in chosen]
            confidence = [c.score for c in chosen] if stage is None else stage.probabilities(rows).tolist()
            rights = reads[i].rights(decision, lenient=lenient)
            for c, p, right in zip(chosen, confidence, rights, strict=True):
                q, a = c.candidate.question.text, c.candidate.answer.text
                scored.append(Scored(reads[i].prepared.stem, "pair", float(p), c.features, right, right, a, q))
    result = calibrate_threshold(scored, target=target, risk=risk)
    return result.threshold, result.tested, scored


def to_profile(
    threshold: float | None,
    tested: list[dict[str, float]],
    *,
    target: float,
    risk: float,
    rule: str,
    provenance: dict[str, Any],
) -> Profile:
    """The ``fields-forms`` profile: one threshold between the rungs "emit" and "abstain" (`NEVER` when nothing
    was certified), the target and rule it certifies, and how it was chosen."""
    chosen = next((t for t in tested if t["threshold"] == threshold), None)
    return Profile(
        task=PROFILE_TASK,
        rungs=["emit", "abstain"],
        thresholds=[NEVER if threshold is None else threshold],
        target=target,
        risk=risk,
        params={"precision_target": target, "rule": rule, "right_when": RULES[rule]},
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
    parser.add_argument("--target", type=float, default=0.8, help="precision of emitted pairs")
    parser.add_argument("--rule", choices=sorted(RULES), default="lenient", help="when an emitted pair is right")
    parser.add_argument("--risk", type=float, default=0.1, help="allowed probability the target is missed")
    parser.add_argument("--model-out", type=Path, default=PACKAGE / "data" / "fields" / MODEL_FILE)
    parser.add_argument("--profile-out", type=Path, default=PACKAGE / "data" / "profiles" / f"{PROFILE_TASK}.json")
    args = parser.parse_args(argv)

    train_forms, _ = split(load_forms(args.funsd, args.ocr_cache))
    train = prepare(train_forms)
    reads = cross_fitted(train)
    decision = choose_decision(reads)
    truths = sum(len(r.prepared.form.links) for r in reads)
    cross_fitted_prf = {
        rule: [
            round(v, 4)
            for v in prf(
                sum(sum(r.rights(decision, lenient=rule == "lenient")) for r in reads),
                sum(len(r.at(decision)) for r in reads),
                truths,
            )
        ]
        for rule in RULES
    }
    data = {
        "data": "FUNSD (Jaume et al. 2019) training split via ../shared/eval/ocr-funsd; research use only",
        "forms": [f.stem for f in train_forms],
        "split": "forms sorted by file name; even positions (0, 2, 4, ...) train and calibrate",
    }
    meta = {"format": "frugalsense-forms-trees", "version": 1, "trained_on": data}
    lenient = args.rule == "lenient"
    stage = _confidence_model(reads, decision, lenient=lenient)
    model = fit(train, decision=decision, meta={**meta, "confidence_rule": args.rule}).with_confidence(stage)
    args.model_out.parent.mkdir(parents=True, exist_ok=True)
    args.model_out.write_text(json.dumps(model.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    threshold, tested, scored = calibrate(
        reads, decision=decision, target=args.target, risk=args.risk, lenient=lenient
    )
    cut = NEVER if threshold is None else threshold
    emitted = [s for s in scored if s.confidence >= cut]
    precision = sum(s.right for s in emitted) / max(1, len(emitted))
    at_target = {
        rule: {
            str(t): calibrate(reads, decision=decision, target=t, risk=args.risk, lenient=rule == "lenient")[0]
            for t in (0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)
        }
        for rule in RULES
    }
    provenance = {
        **data,
        "decision": decision,
        "scores": "cross-fitted: each training form read by a whole model fitted on the other 3 of 4 folds, its "
        "pairs' confidences given by a confidence stage fitted on the other 3 of 4 folds",
        "guarantee": f"pairs emitted are right ({RULES[args.rule]}) with precision >= {args.target}, with "
        f"probability >= {1 - args.risk} over the calibration draw",
        "abstention_off": {"precision_recall_f1": cross_fitted_prf, "annotated_pairs": truths},
        "pairs_scored": len(scored),
        "emitted_share": round(len(emitted) / max(1, len(scored)), 4),
        "emitted_precision": round(precision, 4),
        "threshold_at_target": at_target,
        "command": "python -m frugalsense.calibration.fields_forms_train --ocr-cache DIR "
        f"--target {args.target} --rule {args.rule} --risk {args.risk}",
    }
    to_profile(threshold, tested, target=args.target, risk=args.risk, rule=args.rule, provenance=provenance).save(
        args.profile_out
    )
    print(
        f"decision {decision}; threshold {cut} (certified: {threshold is not None}); emitted {len(emitted)}/"
        f"{len(scored)} pairs at precision {precision:.3f} ({args.rule} rule) on the cross-fitted training forms"
    )
    print(f"abstention off, cross-fitted training forms (precision, recall, F1): {json.dumps(cross_fitted_prf)}")
    print(json.dumps(at_target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
