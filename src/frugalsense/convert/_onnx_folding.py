"""Folding for ONNX graphs read from block-quantised files: constants computed once in numpy (DequantizeLinear,
Reshape), BatchNormalization folded into the Conv or Gemm beside it, and PRelu written in a form ONNX Runtime
fuses. Used by the SFace converter; nothing here is specific to SFace.

    >>> dequantize_blocked(np.array([[2, 4, 6]], np.int8), np.array([[0.5, 1.0]]), axis=1, block_size=2).tolist()
    [[1.0, 2.0, 6.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from frugalsense.errors import ModelConversionError

__all__ = ["dequantize_blocked", "fold_batchnorms", "fold_constants", "prelu_as_relu_sum"]

Float32Array = npt.NDArray[np.float32]


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


def fold_constants(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], dict[str, npt.NDArray[Any]]]:
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


def fold_batchnorms(
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


def prelu_as_relu_sum(nodes: list[onnx.NodeProto], consts: dict[str, npt.NDArray[Any]]) -> list[onnx.NodeProto]:
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
