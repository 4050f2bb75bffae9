"""Form key-value pairs: segments cut from OCR lines, the pairing and join features on hand-made boxes, the
boosted trees against a plain walk, the pair metric, the shipped model and profile, and the whole path (real
OCR through the text ladder) on a real FUNSD form the model never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalsense.analyze import Analyzer
from frugalsense.calibration.fields_forms_data import normalise, pair_matches
from frugalsense.errors import ConfigurationError
from frugalsense.fields.forms import (
    USER_MODEL_FILE,
    default_model,
    extract_form_fields,
    form_threshold,
    read_form,
)
from frugalsense.fields.forms_features import PAIR_FEATURES, pair_candidates, role_features
from frugalsense.fields.forms_join import join_candidates
from frugalsense.fields.forms_layout import FormPage, Segment, split_label
from frugalsense.fields.forms_model import FormModel, Tree
from frugalsense.profiles import load_profile
from frugalsense.results import TextLine
from frugalsense.settings import Settings


def seg(text: str, x: float, y: float, w: float = 80.0, h: float = 12.0) -> Segment:
    return Segment(0, text, x, y, x + w, y + h, (), 0.95)


def line(text: str, x: float, y: float, w: float = 120.0, h: float = 14.0) -> TextLine:
    return TextLine(text, ((x, y), (x + w, y), (x + w, y + h), (x, y + h)), 0.97)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Date: 9/3/92", ["Date:", "9/3/92"]),
        ("Name/Phone Ext.:M.Hamann", ["Name/Phone Ext.:", "M.Hamann"]),
        ("Time 10:30", ["Time 10:30"]),  # a time is not a label
        ("Ratio 1:2", ["Ratio 1:2"]),
        ("Date:", ["Date:"]),  # nothing after the colon: one piece
        ("a: yes", ["a: yes"]),  # an item letter is not a label
        ("TO: J. Doe FROM: A. Roe", ["TO:", "J. Doe FROM:", "A. Roe"]),
        ("NAME....Ronald Davis", ["NAME", "Ronald Davis"]),  # a fill-in line belongs to neither side
        ("Signature_______", ["Signature"]),
        ("", []),
    ],
)
def test_lines_are_cut_after_labels(text: str, pieces: list[str]) -> None:
    assert [text[a:b] for a, b in split_label(text)] == pieces


def test_a_cut_line_keeps_each_piece_where_it_is_printed() -> None:
    page = FormPage.from_lines([line("Date: 9/3/92", 100, 50, w=120)])
    date, value = page.segments
    assert (date.text, value.text) == ("Date:", "9/3/92")
    assert date.x0 == 100 and value.x1 == 220 and date.x1 == pytest.approx(value.x0 - 10)  # 10 px per character
    assert [part.line for part in value.parts] == [0] and value.parts[0].box.x == pytest.approx(160)


def _features(page: FormPage, question: str, answer: str) -> dict[str, float]:
    found = [c for c in pair_candidates(page) if (c.question.text, c.answer.text) == (question, answer)]
    assert len(found) == 1, f"{question!r} -> {answer!r} not proposed"
    return dict(zip(PAIR_FEATURES, found[0].features, strict=True))


def test_answers_are_proposed_to_the_right_below_and_down_a_column() -> None:
    page = FormPage.from_segments(
        [
            seg("Date:", 10, 10, w=40),
            seg("9/3/92", 70, 10),
            seg("Remarks:", 10, 40),
            seg("ship by air", 10, 56, w=120),
            seg("SCORE", 300, 100, w=50),
            *(seg(f"{v}.1", 305, 130 + 20 * i, w=30) for i, v in enumerate(range(10))),
        ]
    )
    right = _features(page, "Date:", "9/3/92")
    assert (right["right"], right["below"], right["q_colon_end"], right["a_date"]) == (1.0, 0.0, 1.0, 1.0)
    assert right["dx"] == pytest.approx(20 / 12) and right["a_left_is_q"] == 1.0
    below = _features(page, "Remarks:", "ship by air")
    assert (below["right"], below["below"], below["a_above_is_q"]) == (0.0, 1.0, 1.0)
    assert below["gap_y"] == pytest.approx(4 / 12)
    deep = _features(page, "SCORE", "9.1")  # the tenth cell, 15 lines under its header
    assert deep["below"] == 1.0 and deep["between"] == 9.0
    proposed = {(c.question.text, c.answer.text) for c in pair_candidates(page)}
    assert ("9/3/92", "Date:") not in proposed  # never leftwards on a row
    assert ("ship by air", "Remarks:") not in proposed  # never upwards


def test_features_are_measured_in_line_heights_not_pixels() -> None:
    def page(scale: float) -> FormPage:
        return FormPage.from_segments(
            [
                seg("Date:", 10 * scale, 10 * scale, 40 * scale, 12 * scale),
                seg("9/3/92", 70 * scale, 10 * scale, 80 * scale, 12 * scale),
                seg("To:", 10 * scale, 40 * scale, 30 * scale, 12 * scale),
                seg("J. Doe", 60 * scale, 41 * scale, 70 * scale, 12 * scale),
            ]
        )

    small, large = page(1.0), page(3.0)
    pairs = [c.features for c in pair_candidates(small)]
    assert len(pairs) >= 3 and np.allclose(pairs, [c.features for c in pair_candidates(large)])
    assert np.allclose(role_features(small), role_features(large))


def test_the_next_line_of_an_answer_is_proposed_as_a_join() -> None:
    page = FormPage.from_segments(
        [
            seg("Remarks:", 10, 10),
            seg("to be shipped", 100, 10, w=120),
            seg("by air", 100, 24),
            seg("Far", 100, 90),
        ]
    )
    joins = {(page.segments[c.first].text, page.segments[c.second].text) for c in join_candidates(page)}
    assert ("to be shipped", "by air") in joins
    assert not any("Far" in pair for pair in joins)  # five lines further down: another entry
    merged = page.merged([(1, 2)])
    assert [s.text for s in merged.segments] == ["Remarks:", "to be shipped by air", "Far"]
    assert (merged.segments[1].x0, merged.segments[1].y0, merged.segments[1].y1) == (100, 10, 36)


def _walk(tree: Tree, row: list[float]) -> float:
    node = 0
    while tree.left[node] >= 0:
        node = tree.left[node] if row[tree.feature[node]] <= tree.threshold[node] else tree.right[node]
    return tree.value[node]


def test_trees_give_what_a_plain_walk_gives() -> None:
    """The vectorised evaluation against a node-by-node walk, on the shipped pair model and random inputs."""
    model = default_model()
    rng = np.random.default_rng(0)
    rows = rng.normal(0.0, 3.0, (200, len(model.pairs.features))).astype(np.float32).tolist()
    expected = [
        1.0
        / (
            1.0
            + np.exp(
                -(model.pairs.baseline + model.pairs.learning_rate * sum(_walk(t, r) for t in model.pairs.trees))
            )
        )
        for r in rows
    ]
    assert model.pairs.probabilities(rows) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("feature", "left", "right", "value", "error"),
    [
        ((0, -1, -1), (1, -1, -1), (2, -1, -1), (0.0, -1.0, 1.0), None),
        ((0, -1), (1, -1), (2, -1), (0.0, 1.0), "children"),  # a child that is not a node
        ((0, -1, -1), (1, -1, -1), (2, -1, -1), (0.0, 1.0), "as many"),
        ((), (), (), (), "as many"),
    ],
)
def test_a_malformed_tree_is_refused(
    feature: tuple[int, ...],
    left: tuple[int, ...],
    right: tuple[int, ...],
    value: tuple[float, ...],
    error: str | None,
) -> None:
    threshold = (0.5,) * len(feature)
    if error is None:
        assert Tree(feature, threshold, left, right, value).predict(np.array([[0.0], [1.0]])).tolist() == [
            -1.0,
            1.0,
        ]
    else:
        with pytest.raises(ConfigurationError, match=error):
            Tree(feature, threshold, left, right, value)


def test_a_model_of_another_version_is_refused(tmp_path: Path) -> None:
    data = default_model().to_dict()
    data["pairs"]["features"] = data["pairs"]["features"][:-1]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="retrain"):
        FormModel.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not JSON"):
        FormModel.load(path)


@pytest.mark.parametrize(
    ("found", "truth", "exact", "lenient"),
    [
        ([("Date:", "9/3/92")], [("DATE :", "9/ 3/ 92")], [True], [True]),
        ([("Date:", "9/3/92"), ("Date:", "9/3/92")], [("Date:", "9/3/92")], [True, False], [True, False]),
        ([("Dale:", "9/3/92")], [("Date:", "9/3/92")], [False], [True]),
        ([("Date:", "10/3/92")], [("To:", "10/3/92")], [False], [False]),  # the answer alone does not count
        ([("Remarks", "ship")], [("Remarks", "ship by air, not by sea")], [False], [False]),
    ],
)
def test_a_pair_counts_when_both_texts_match(
    found: list[tuple[str, str]], truth: list[tuple[str, str]], exact: list[bool], lenient: list[bool]
) -> None:
    assert pair_matches(found, truth) == exact
    assert pair_matches(found, truth, lenient=True) == lenient
    assert normalise(" Name / Phone  Ext. :") == "name/phoneext.:"


def test_the_shipped_profile_and_model_say_what_they_certify() -> None:
    profile = load_profile("fields-forms")
    model = default_model()
    assert profile.rungs == ["emit", "abstain"] and profile.target is not None and profile.risk is not None
    assert profile.params["rule"] in ("exact", "lenient")
    assert profile.calibration["certified"] and form_threshold(profile) == profile.thresholds[0]
    assert model.confidence is not None and 0.0 < model.decision < form_threshold(profile) < 1.0
    assert model.meta["trained_on"]["forms"] == sorted(model.meta["trained_on"]["forms"])


def test_abstention_keeps_unsure_pairs_apart_and_a_user_model_wins(tmp_path: Path) -> None:
    page = [line("Date: 9/3/92", 40, 80), line("To: J. S. Wigand", 40, 110), line("Brand:", 40, 140, w=50),
            line("Winston Lights", 200, 140)]  # fmt: skip
    everything = extract_form_fields(page, threshold=0.0)
    assert [(p.question, p.answer) for p in everything.pairs][:1] == [("Date:", "9/3/92")]
    assert everything.as_dict()["Date:"] == ["9/3/92"]
    nothing = extract_form_fields(page, threshold=1.0)
    assert not nothing.pairs and len(nothing.unsure) == len(everything.pairs)
    assert nothing.to_dict(with_unsure=True)["unsure"][0]["answer"] == "9/3/92"

    mine = default_model().to_dict()
    mine["decision"] = 1.0  # a model that proposes nothing
    (tmp_path / USER_MODEL_FILE).write_text(json.dumps(mine), encoding="utf-8")
    assert len(extract_form_fields(page, threshold=0.0, profile_dir=tmp_path).pairs) == 0


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_a_real_form_gives_its_pairs_with_their_boxes(eval_dir: Path, settings: Settings) -> None:
    """A FUNSD form at an odd position (never trained on), read through the text ladder, no cache."""
    funsd = eval_dir / "ocr-funsd" / "training_data"
    stem = "0000989556"
    images = sorted(p.stem for p in (funsd / "images").glob("*.png"))
    assert images.index(stem) % 2 == 1  # an odd position: the model never saw it

    found, analysis = read_form(funsd / "images" / f"{stem}.png", Analyzer(settings), threshold=0.0)
    assert analysis.receipt.cpu_seconds > 0
    annotation = json.loads((funsd / "annotations" / f"{stem}.json").read_text(encoding="utf-8"))["form"]
    by_id = {e["id"]: e for e in annotation}
    truth = sorted(
        {
            (by_id[a]["text"], by_id[b]["text"])
            for e in annotation
            for a, b in e["linking"]
            if by_id[a]["label"] == "question" and by_id[b]["label"] == "answer"
        }
    )
    texts = [(p.question, p.answer) for p in found.pairs]
    right = pair_matches(texts, truth, lenient=True)
    assert sum(right) >= 15, list(zip(texts, right, strict=True))  # 26 of 40 when measured
    boxes = [tuple(e["box"]) for e in annotation]
    for pair, ok in zip(found.pairs, right, strict=True):
        if ok:  # the evidence points at the printed question and answer
            for part in (*pair.question_evidence, *pair.answer_evidence):
                box = (part.box.x, part.box.y, part.box.x + part.box.w, part.box.y + part.box.h)
                assert any(_overlaps(box, b) for b in boxes)
