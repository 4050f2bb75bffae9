"""SFace conversion: the ORT graph reproduces OpenCV's FaceRecognizerSF on real LFW faces; converting is cached."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from frugalsense.convert.sface import (
    FEATURE_DIM,
    FP32_MIN_COSINE,
    INPUT_NAME,
    INT8_MIN_COSINE,
    OUTPUT_NAME,
    check_sface,
    convert_sface,
    dequantize_blocked,
    opencv_features,
    preprocess,
    sface_source,
)
from frugalsense.errors import ModelConversionError
from frugalsense.media import load
from frugalsense.models.faces import SFaceEmbedder, YuNetDetector, _yunet_row
from frugalsense.runtimes.opencv import OpenCVFaceRecognizer
from frugalsense.settings import Settings


@pytest.fixture(scope="module")
def converted(model_dir: Path) -> dict[str, Path]:
    # The shared model cache: converting is idempotent, so this is a no-op after the first run.
    return convert_sface(model_dir)


@pytest.fixture(scope="module")
def module_settings(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), model_cache=model_dir)


@pytest.fixture(scope="module")
def lfw_faces(eval_dir: Path, module_settings: Settings) -> list[tuple[np.ndarray, Any]]:
    """Pictures and their central face for the first 24 distinct files of LFW fold 1."""
    with open(eval_dir / "faces-lfw" / "pairs.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    files = list(dict.fromkeys(name for r in rows for name in (r["file_x"], r["file_y"])))[:24]
    detector = YuNetDetector(module_settings)
    out = []
    for name in files:
        bgr = load(eval_dir / "faces-lfw" / "images" / name, module_settings).frames[0].bgr()
        faces = detector.detect_bgr(bgr)
        assert faces, f"no face found in {name}"
        h, w = bgr.shape[:2]
        face = min(
            faces, key=lambda fc: abs(fc.box.x + fc.box.w / 2 - w / 2) + abs(fc.box.y + fc.box.h / 2 - h / 2)
        )
        out.append((bgr, face))
    return out


@pytest.fixture(scope="module")
def lfw_crops(lfw_faces: list[tuple[np.ndarray, Any]]) -> list[np.ndarray]:
    recognizer = OpenCVFaceRecognizer(sface_source())
    return [np.asarray(recognizer.align(bgr, _yunet_row(face)), np.uint8) for bgr, face in lfw_faces]


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_fp32_matches_opencv_on_lfw_faces(converted: dict[str, Path], lfw_crops: list[np.ndarray]) -> None:
    # Measured: 0.99999999 (the same dequantised weights; only float summation order differs).
    assert check_sface(converted["fp32"], lfw_crops) >= FP32_MIN_COSINE


def test_int8_is_kept_only_when_close(tmp_path: Path, lfw_crops: list[np.ndarray]) -> None:
    paths = convert_sface(tmp_path, int8=True)
    meta = json.loads(paths["sidecar"].read_text())
    assert meta["int8"]["kept"] == ("int8" in paths) == (tmp_path / "sface-int8.onnx").is_file()
    if "int8" in paths:
        assert check_sface(paths["int8"], lfw_crops, min_cosine=INT8_MIN_COSINE) >= INT8_MIN_COSINE
    else:
        # Measured ~0.98 on the synthetic check crops: below the bar, so the file must not be left behind.
        assert meta["int8"]["min_cosine_vs_opencv"] < INT8_MIN_COSINE


def test_second_conversion_is_a_no_op(converted: dict[str, Path], model_dir: Path) -> None:
    """Nothing is written again (how long the cache check takes: bench/edge_latency.py --only convert)."""
    before = {key: path.stat().st_mtime_ns for key, path in converted.items()}
    again = convert_sface(model_dir)
    assert again == converted
    assert {key: path.stat().st_mtime_ns for key, path in again.items()} == before
    meta = json.loads(converted["sidecar"].read_text())
    assert meta["fp32"]["min_cosine_vs_opencv"] >= FP32_MIN_COSINE


def test_graph_is_plain_float32(converted: dict[str, Path]) -> None:
    model = onnx.load_model(str(converted["fp32"]))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"DequantizeLinear", "BatchNormalization", "PRelu", "Dropout", "Reshape"}
    assert all(t.data_type == TensorProto.FLOAT for t in model.graph.initializer if t.dims)
    session = _session(converted["fp32"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    assert inputs == [(INPUT_NAME, "tensor(float)", ["batch", 3, 112, 112])]
    (output,) = session.get_outputs()
    assert (output.name, output.shape) == (OUTPUT_NAME, ["batch", FEATURE_DIM])


def test_batch_gives_the_same_features_as_one_at_a_time(
    converted: dict[str, Path], lfw_crops: list[np.ndarray]
) -> None:
    session = _session(converted["fp32"])
    crops = lfw_crops[:4]
    (batch,) = session.run([OUTPUT_NAME], {INPUT_NAME: preprocess(crops)})
    alone = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: preprocess([c])})[0] for c in crops])
    np.testing.assert_allclose(batch, alone, rtol=1e-4, atol=1e-4)


def test_embedder_runs_onnxruntime_and_matches_opencv(
    module_settings: Settings, converted: dict[str, Path], lfw_faces: list[tuple[np.ndarray, Any]]
) -> None:
    embedder = SFaceEmbedder(module_settings)
    assert embedder.onnx_path() == converted["fp32"]
    items = lfw_faces[:5]
    vectors = embedder.predict(items)
    assert len(vectors) == len(items)
    np.testing.assert_allclose([np.linalg.norm(v) for v in vectors], 1.0, atol=1e-5)
    recognizer = OpenCVFaceRecognizer(sface_source())
    reference = opencv_features([np.asarray(recognizer.align(b, _yunet_row(f)), np.uint8) for b, f in items])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert float(np.min(np.sum(np.stack(vectors) * reference, axis=1))) >= FP32_MIN_COSINE


@pytest.mark.parametrize(
    ("shape", "axis", "block_size", "param_shape"),
    [
        ((4, 10), 1, 4, (4, 3)),  # blocks along the last axis, the last one partial (4 + 4 + 2)
        ((6, 3), 0, 2, (3, 3)),  # blocks along the first axis
        ((5, 7), 0, 0, (5,)),  # per-axis
        ((3, 4), 1, 0, ()),  # per-tensor
    ],
)
def test_dequantize_blocked_agrees_with_onnx_reference(
    shape: tuple[int, ...], axis: int, block_size: int, param_shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(7)
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    scale = rng.uniform(0.001, 0.1, size=param_shape).astype(np.float32)
    zero = rng.integers(-20, 20, size=param_shape).astype(np.int8)
    attrs = {"axis": axis} | ({"block_size": block_size} if block_size else {})
    node = helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "dq",
        inputs=[],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        initializer=[
            numpy_helper.from_array(q, "q"),
            numpy_helper.from_array(scale, "scale"),
            numpy_helper.from_array(zero, "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (expected,) = ReferenceEvaluator(model).run(None, {})
    got = dequantize_blocked(q, scale, zero, axis=axis, block_size=block_size)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_broken_graph_is_a_conversion_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(ModelConversionError):
        check_sface(broken)
