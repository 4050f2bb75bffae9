"""The whole path through the library and the CLI: samples in, typed records with receipts out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from frugalsense.analyze import Analyzer
from frugalsense.errors import EmptyInputError, InvalidRequestError, UnsupportedFormatError
from frugalsense.samples import write_samples
from frugalsense.settings import Settings


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir))


def test_photo_gets_faces_labels_moderation_and_a_receipt(analyzer: Analyzer, samples: list[Path]) -> None:
    result = analyzer.analyze(samples[0])
    page = result.pages[0]
    assert result.kind == "image" and result.features == ["faces", "labels", "moderation", "text"]
    assert page.faces is not None and len(page.faces) == 1
    assert page.faces[0].score > 0.8
    assert page.labels is not None and len(page.labels) == 5
    assert page.moderation is not None and not page.moderation.flagged
    # The portrait shows a few small letters (a name tag): the calibrated gate lets it through, OCR reads them.
    assert page.text is not None and "HOPPE" in " ".join(line.text for line in page.text)
    stages = {s.stage for s in result.receipt.stages}
    assert {"decode", "face-detection", "face-embedding", "labels", "moderation", "text-presence", "ocr"} <= stages
    assert result.receipt.cpu_seconds > 0
    assert result.receipt.cost_usd == pytest.approx(result.receipt.cpu_seconds / 3600 * 0.05)


def test_pdf_is_read_page_by_page(analyzer: Analyzer, samples: list[Path]) -> None:
    result = analyzer.analyze(samples[2])
    assert result.kind == "document"
    assert [p.page for p in result.pages] == [1, 2]
    assert "garden furniture" in result.pages[0].full_text
    assert "thirty days" in result.pages[1].full_text


def test_features_can_be_chosen(analyzer: Analyzer, samples: list[Path]) -> None:
    result = analyzer.analyze(samples[0], ["moderation"])
    assert result.pages[0].faces is None and result.pages[0].moderation is not None
    assert {s.model for s in result.receipt.stages if s.model} <= {"opennsfw"}


def test_bytes_work_like_paths(analyzer: Analyzer, samples: list[Path]) -> None:
    """Both calls compute: with the result cache off, the second is not the first one served again."""
    uncached = Analyzer(analyzer.settings.model_copy(update={"cache_entries": 0}))
    from_bytes = uncached.analyze(samples[0].read_bytes(), ["faces"], name="upload.jpg")
    from_path = uncached.analyze(samples[0], ["faces"])
    for result in (from_bytes, from_path):
        stages = [(s.stage, s.model) for s in result.receipt.stages]
        assert ("face-detection", "yunet-int8") in stages and not [s for s, _ in stages if s == "cache"]
    assert from_bytes.name == "upload.jpg"
    assert from_bytes.sha256 == from_path.sha256
    assert from_bytes.pages[0].faces is not None and from_path.pages[0].faces is not None
    assert len(from_bytes.pages[0].faces) == len(from_path.pages[0].faces) > 0
    assert from_bytes.pages[0].faces[0].box == from_path.pages[0].faces[0].box


@pytest.mark.parametrize(
    ("source", "features", "error"),
    [
        (b"", None, EmptyInputError),
        (b"just some text, not a picture", None, UnsupportedFormatError),
        (b"\xff\xd8\xff", ["sharpness"], InvalidRequestError),
    ],
)
def test_bad_requests_raise_typed_errors(
    analyzer: Analyzer, source: bytes, features: list[str] | None, error: type
) -> None:
    with pytest.raises(error):
        analyzer.analyze(source, features)


def _cli(*args: str, data_dir: Path, model_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "frugalsense.cli",
        "--data-dir",
        str(data_dir),
        "--model-cache",
        str(model_dir),
    ]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)


def test_cli_json_over_several_files(samples: list[Path], tmp_path: Path, model_dir: Path) -> None:
    done = _cli(
        "analyze",
        "--json",
        "--features",
        "text",
        str(samples[1]),
        str(samples[2]),
        data_dir=tmp_path,
        model_dir=model_dir,
    )
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [r["kind"] for r in records] == ["image", "document"]
    assert any("TOTAL" in line["text"] for line in records[0]["pages"][0]["text"])
    assert records[1]["receipt"]["cpu_seconds"] > 0
    assert records[1]["receipt"]["stages"][0]["stage"] == "decode"


def test_cli_reports_bad_files_and_keeps_going(samples: list[Path], tmp_path: Path, model_dir: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(samples[0].read_bytes()[:200])
    done = _cli(
        "analyze", "--features", "faces", str(broken), str(samples[0]), data_dir=tmp_path, model_dir=model_dir
    )
    assert done.returncode == 2
    assert "broken.jpg" in done.stderr
    assert "truncated" in done.stderr.lower() or "corrupt" in done.stderr.lower()
    assert "faces: 1" in done.stdout
    assert "CPU-s" in done.stdout


def test_models_list_shows_every_card(tmp_path: Path, model_dir: Path) -> None:
    done = _cli("models", "--json", data_dir=tmp_path, model_dir=model_dir)
    cards = json.loads(done.stdout)
    names = {c["name"] for c in cards}
    assert {"yunet-int8", "sface", "dlib-resnet", "opennsfw", "ppocr-v4", "tesseract-eng"} <= names
    assert {"whisper-tiny-en", "minilm-l6-v2", "efficientnet-lite0-int8", "efficientnet-lite2-fp32"} <= names
    for card in cards:
        assert card["package_version"], f"{card['name']}: weights package {card['package']} not installed"
        assert card["licence"] and card["reference"]


def test_no_torch_at_run_time(samples: list[Path], tmp_path: Path, model_dir: Path) -> None:
    code = (
        "import sys, frugalsense\n"
        f"frugalsense.analyze({str(samples[0])!r}, settings=frugalsense.Settings(data_dir={str(tmp_path)!r}, "
        f"model_cache={str(model_dir)!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
