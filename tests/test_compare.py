"""Compare as cloud CompareFaces calls do: the source's largest face (or a chosen one) against every face of the
target, on real group photos, through the library, the command line and a real server."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from _server import Server
from frugalsense.analyze import Analyzer
from frugalsense.api import schemas
from frugalsense.cli import main
from frugalsense.client import Client
from frugalsense.errors import InvalidRequestError
from frugalsense.faces import FaceComparer
from frugalsense.faces.fusion import FACES_TASK
from frugalsense.ledger import Meter
from frugalsense.media import load
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings

#: faces-gallery photos (paths under examples/)
OBAMA = "knn_examples/train/obama/obama.jpg"
OBAMA2 = "knn_examples/train/obama/obama2.jpg"
BIDEN = "knn_examples/train/biden/biden.jpg"
BOTH = "knn_examples/test/obama_and_biden.jpg"  # Biden's face is the largest, Obama's the second, one behind
KIT = "knn_examples/train/kit_harington/john1.jpeg"
ROSE = "knn_examples/train/rose_leslie/img1.jpg"
KIT_AND_ROSE = "knn_examples/test/kit_with_rose.jpg"
#: LFW fold-1 pairs of one person whose second photo shows several faces, the person's not the largest one
#: (found with the detector: the one such pair of fold 1; the compare before this one, largest face against
#: largest face, said "different")
LFW_CROWDED = [
    ("Julianna_Margulies/Julianna_Margulies_0001.jpg", "Julianna_Margulies/Julianna_Margulies_0002.jpg"),
]
NO_FACE = "captions-skimage/images/coffee.png"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("compare"), model_cache=model_dir)


@pytest.fixture(scope="module")
def comparer(settings: Settings) -> FaceComparer:
    return FaceComparer.open(Analyzer(settings))


@pytest.fixture(scope="module")
def examples(eval_dir: Path) -> Path:
    return eval_dir / "faces-gallery" / "examples"


def _largest(faces: list) -> int:  # type: ignore[type-arg]
    return max(range(len(faces)), key=lambda i: faces[i].box.w * faces[i].box.h)


@pytest.mark.parametrize(
    ("source", "target", "person_is_largest"),
    [(OBAMA, BOTH, False), (BIDEN, BOTH, True), (KIT, KIT_AND_ROSE, None), (ROSE, KIT_AND_ROSE, None)],
)
def test_the_right_face_of_a_group_photo_matches(
    comparer: FaceComparer, examples: Path, source: str, target: str, person_is_largest: bool | None
) -> None:
    result = comparer.compare(examples / source, examples / target)
    assert len(result.target_faces) >= 2
    matched = [f.index for f in result.target_faces if f.same]
    assert matched == [result.best_match]  # one face is the person, the others are not
    assert result.same and result.similarity == result.target_faces[result.best_match].similarity
    assert result.box_b == result.target_faces[result.best_match].box
    if person_is_largest is not None:
        assert (result.best_match == _largest(result.target_faces)) is person_is_largest
    # Every target face is listed with its own score, in detection order.
    assert [f.index for f in result.target_faces] == list(range(len(result.target_faces)))
    others = [f.similarity for f in result.target_faces if not f.same]
    assert max(others) < result.threshold < result.similarity


def test_kit_and_rose_are_told_apart_in_the_same_photo(comparer: FaceComparer, examples: Path) -> None:
    kit = comparer.compare(examples / KIT, examples / KIT_AND_ROSE)
    rose = comparer.compare(examples / ROSE, examples / KIT_AND_ROSE)
    assert kit.best_match != rose.best_match


def test_source_face_picks_a_face_in_detection_order(comparer: FaceComparer, examples: Path) -> None:
    """The source's faces are numbered as faces/detect lists them. In the photo of two (and one behind them),
    face 0 is Biden's, the largest, so the default takes it; face 1 is Obama's."""
    frame = load(examples / BOTH, comparer.analyzer.settings).frames[0]
    detected = comparer.analyzer.faces(frame, Meter(0.05), embed=False)
    assert len(detected) == 3 and _largest(detected) == 0
    default = comparer.compare(examples / BOTH, examples / BIDEN)
    assert default.source_face == 0 and default.faces_in_source == 3
    assert default.box_a == detected[0].box and default.same
    obama = comparer.compare(examples / BOTH, examples / OBAMA2, source_face=1)
    assert obama.source_face == 1 and obama.box_a == detected[1].box and obama.same
    assert not comparer.compare(examples / BOTH, examples / BIDEN, source_face=1).same


def test_a_face_picked_out_of_a_crowd_is_found_in_it_again(comparer: FaceComparer, eval_dir: Path) -> None:
    """faces-detect's most crowded PASCAL VOC photo: face k (not the largest) against the whole picture matches
    face k itself, with the box faces/detect gives it, among every face of the picture."""
    folder = eval_dir / "faces-detect"
    with open(folder / "boxes.csv") as f:
        crowd = Counter(row["file"] for row in csv.DictReader(f)).most_common(1)[0][0]
    photo = folder / "images" / crowd
    frame = load(photo, comparer.analyzer.settings).frames[0]
    detected = comparer.analyzer.faces(frame, Meter(0.05), embed=False)
    assert len(detected) >= 5
    k = next(i for i in range(len(detected)) if i != _largest(detected))
    result = comparer.compare(photo, photo, source_face=k)
    assert result.best_match == k and result.similarity > 0.99
    assert all(f.similarity < 0.9 for f in result.target_faces if f.index != k)
    assert [f.box for f in result.target_faces] == [f.box for f in detected]


@pytest.mark.parametrize(("first", "second"), LFW_CROWDED)
def test_lfw_pairs_with_several_faces_match_the_person_not_the_largest_face(
    comparer: FaceComparer, eval_dir: Path, first: str, second: str
) -> None:
    images = eval_dir / "faces-lfw" / "images"
    result = comparer.compare(images / first, images / second)
    assert len(result.target_faces) > 1
    largest = _largest(result.target_faces)
    assert result.same and result.best_match != largest
    assert not result.target_faces[largest].same  # what compare answered when it took the largest face
    # The other way round the crowded photo is the source: its largest face is someone else, and the caller
    # names the person's face with source_face.
    assert not comparer.compare(images / second, images / first).same
    chosen = comparer.compare(images / second, images / first, source_face=result.best_match)
    assert chosen.same and chosen.box_a == result.box_b


def test_each_target_face_climbs_the_ladder_on_its_own(settings: Settings, examples: Path, tmp_path: Path) -> None:
    """With a wide band, the faces SFace is unsure of (the two strangers near the band) climb to dlib and the
    fused score decides them; the sure face does not climb."""
    profiles = tmp_path / "profiles"
    replace(load_profile(FACES_TASK), thresholds=[0.999]).save(profiles / f"{FACES_TASK}.json")
    wide = FaceComparer.open(Analyzer(settings.model_copy(update={"profile_dir": profiles})))
    assert wide.fusion is not None
    low, high = wide.fusion.band_edges
    result = wide.compare(examples / OBAMA, examples / BOTH)
    for face in result.target_faces:
        assert face.climbed is (low < face.similarity < high)
    assert any(f.climbed for f in result.target_faces) and not result.target_faces[result.best_match].climbed
    assert "dlib-resnet" in result.receipt.models
    assert [f.same for f in result.target_faces].count(True) == 1
    # A caller's own threshold means SFace alone: nothing climbs.
    own = wide.compare(examples / OBAMA, examples / BOTH, threshold=0.3)
    assert not any(f.climbed for f in own.target_faces) and "dlib-resnet" not in own.receipt.models


@pytest.mark.parametrize(
    ("source", "target", "options", "message"),
    [
        (NO_FACE, f"faces-gallery/examples/{OBAMA}", {}, r"no face found in the source picture \(coffee.png\)"),
        (f"faces-gallery/examples/{OBAMA}", NO_FACE, {}, r"no face found in the target picture \(coffee.png\)"),
        (
            f"faces-gallery/examples/{OBAMA}",
            f"faces-gallery/examples/{BOTH}",
            {"source_face": 1},
            "source_face 1 is",
        ),
        (
            f"faces-gallery/examples/{OBAMA}",
            f"faces-gallery/examples/{BOTH}",
            {"threshold": 2.0},
            "between -1 and 1",
        ),
    ],
)
def test_clear_errors(
    comparer: FaceComparer,
    eval_dir: Path,
    source: str,
    target: str,
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        comparer.compare(eval_dir / source, eval_dir / target, **options)


# -- the command line --------------------------------------------------------------------------------------


def _cli(settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    common = ["--data-dir", str(settings.data_dir), "--model-cache", str(settings.model_dir)]
    code = main([*common, "compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_a_table_with_the_best_match(
    settings: Settings, examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(settings, capsys, str(examples / OBAMA), str(examples / BOTH))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("source: face 0 of 1")
    rows = [line for line in lines if line[:4].strip().isdigit()]
    assert len(rows) == 3
    best = [row for row in rows if "<- best match" in row]
    assert len(best) == 1 and " same" in best[0]
    assert sum(" different" in row for row in rows) == 2
    assert "the same person" in lines[-1] and "CPU-s" in lines[-1]


def test_cli_json_and_options(settings: Settings, examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(
        settings, capsys, str(examples / BOTH), str(examples / OBAMA2), "--source-face", "1", "--json"
    )
    assert code == 0
    body = json.loads(out)
    schemas.FaceComparison.model_validate(body)
    assert body["source_face"] == 1 and body["faces_in_source"] == 3
    code, out, _ = _cli(settings, capsys, str(examples / OBAMA), str(examples / BOTH), "--threshold", "0.99")
    assert code == 0 and "not the same person (threshold 0.99)" in out


def test_cli_says_what_is_wrong(
    settings: Settings, eval_dir: Path, examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(settings, capsys, str(eval_dir / NO_FACE), str(examples / OBAMA))
    assert code == 2 and out == ""
    assert "error: no face found in the source picture (coffee.png)" in err
    code, _, err = _cli(settings, capsys, str(examples / OBAMA), str(examples / BOTH), "--source-face", "3")
    assert code == 2 and "source_face 3 is out of range" in err


# -- HTTP, on a real server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("compare-api"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


def test_http_compares_against_every_face(server: Server, examples: Path, eval_dir: Path) -> None:
    with Client(server.url, api_key=server.admin_key) as fs:
        body = fs.compare_faces(examples / OBAMA, examples / BOTH)
        schemas.FaceComparison.model_validate(body)
        assert body["same"] is True and len(body["target_faces"]) == 3
        best = body["target_faces"][body["best_match"]]
        assert best["same"] is True and body["box_b"] == best["box"] and body["similarity"] == best["similarity"]
        assert [f["same"] for f in body["target_faces"]].count(True) == 1

        chosen = fs.compare_faces(examples / BOTH, examples / OBAMA2, source_face=body["best_match"])
        assert chosen["source_face"] == body["best_match"] and chosen["same"] is True

        with pytest.raises(InvalidRequestError, match="no face found in the target picture"):
            fs.compare_faces(examples / OBAMA, eval_dir / NO_FACE)
        with pytest.raises(InvalidRequestError, match="source_face 7 is out of range"):
            fs.compare_faces(examples / BOTH, examples / OBAMA, source_face=7)
    files = {"a": (OBAMA, (examples / OBAMA).read_bytes()), "b": (BOTH, (examples / BOTH).read_bytes())}
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    bad = httpx.post(f"{server.url}/v1/faces/compare", files=files, data={"source_face": "first"}, headers=headers)
    assert bad.status_code == 422 and "'source_face' must be a whole number" in bad.json()["detail"]
