"""EfficientNet-Lite ONNX conversion: the torch-free .pth reader, fidelity to PyTorch, and real ImageNet top-5."""

from __future__ import annotations

import collections
import csv
import io
import json
import pickle
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from frugalsense.convert._pth import load_state_dict
from frugalsense.convert.efficientnet import (
    EFFICIENTNET_LITE_RESOLUTION,
    FP32_TOLERANCE,
    check_against_reference,
    convert_efficientnet_lite,
    preprocess,
    reference_path,
    weights_path,
)
from frugalsense.errors import ModelConversionError, ModelUnavailableError

# every 50th image of the 500: a spread of classes, fixed so the test is deterministic
SAMPLE_ROWS = range(0, 500, 50)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def lite0(model_dir: Path) -> dict[str, Path]:
    # The shared model cache: converting is idempotent, so this is a no-op after the first run.
    return convert_efficientnet_lite(0, model_dir)


# --- the .pth reader ---------------------------------------------------------------------------------------------


def test_reader_returns_the_lite0_state_dict() -> None:
    state = load_state_dict(weights_path(0))
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].shape == ()
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.all(state["_bn0.running_var"] >= 0)  # a few stem channels are dead: exactly 0


@pytest.mark.parametrize(("variant", "blocks", "last_channels"), [(1, 21, 320), (2, 21, 352)])
def test_reader_sees_the_deeper_variants(variant: int, blocks: int, last_channels: int) -> None:
    state = load_state_dict(weights_path(variant))
    assert f"_blocks.{blocks - 1}._project_conv.weight" in state
    assert f"_blocks.{blocks}._project_conv.weight" not in state
    assert state["_conv_head.weight"].shape == (1280, last_channels, 1, 1)


class _FakeStorage:
    def __init__(self, key: str, values: np.ndarray) -> None:
        self.key, self.values = key, values


def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> tuple[type, Any]:
    """Just enough of a ``torch`` module for pickle to name torch.FloatStorage and torch._utils globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    float_storage = type("FloatStorage", (), {"__module__": "torch"})
    torch.FloatStorage = float_storage  # type: ignore[attr-defined]

    def _rebuild_tensor_v2(*args: Any) -> None:  # only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return float_storage, _rebuild_tensor_v2


def _save_fake(
    path: Path,
    tensors: dict[str, tuple[_FakeStorage, int, tuple[int, ...], tuple[int, ...]]],
    monkeypatch: pytest.MonkeyPatch,
    *,
    zip_format: bool,
) -> None:
    """Write a state dict the way torch.save does, without torch, in the legacy or the zip layout."""
    float_storage, rebuild = _fake_torch(monkeypatch)

    class _Tensor:
        def __init__(self, storage: _FakeStorage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
            self.args: tuple[Any, ...] = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self) -> tuple[Any, ...]:
            return rebuild, self.args

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _FakeStorage):
                return ("storage", float_storage, obj.key, "cpu", obj.values.size)
            return None

    state = collections.OrderedDict((name, _Tensor(*spec)) for name, spec in tensors.items())
    storages = {spec[0].key: spec[0] for spec in tensors.values()}
    body = io.BytesIO()
    _Pickler(body, protocol=2).dump(state)
    if zip_format:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", body.getvalue())
            archive.writestr("archive/byteorder", "little")
            for key, storage in storages.items():
                archive.writestr(f"archive/data/{key}", storage.values.astype("<f4").tobytes())
        return
    with path.open("wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        handle.write(body.getvalue())
        pickle.dump(list(storages), handle, protocol=2)
        for storage in storages.values():
            handle.write(storage.values.size.to_bytes(8, "little"))
            handle.write(storage.values.astype("<f4").tobytes())


@pytest.mark.parametrize("zip_format", [False, True])
def test_reader_handles_views_strides_and_both_layouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip_format: bool
) -> None:
    shared = _FakeStorage("7", np.arange(12, dtype=np.float32))
    other = _FakeStorage("9", np.array([5.0, 6.0], dtype=np.float32))
    path = tmp_path / "fake.pth"
    _save_fake(
        path,
        {
            "matrix": (shared, 0, (3, 4), (4, 1)),
            "transposed": (shared, 0, (4, 3), (1, 4)),  # shares the storage, non-contiguous
            "tail": (shared, 10, (2,), (1,)),
            "scalar": (other, 1, (), ()),
        },
        monkeypatch,
        zip_format=zip_format,
    )
    monkeypatch.delitem(sys.modules, "torch")  # the reader must not need it
    state = load_state_dict(path)
    expected = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(state["matrix"], expected)
    np.testing.assert_array_equal(state["transposed"], expected.T)
    np.testing.assert_array_equal(state["tail"], [10.0, 11.0])
    assert state["scalar"].shape == ()
    assert float(state["scalar"]) == 6.0


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this must never run",))


def test_reader_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"weight": _Exploit()}):
            pickle.dump(obj, handle, protocol=2)
    with pytest.raises(ModelUnavailableError, match=r"refusing to load \w+\.print"):
        load_state_dict(path)


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not-weights.pth"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelUnavailableError):
        load_state_dict(path)


# --- conversion --------------------------------------------------------------------------------------------------


def test_lite0_matches_pytorch_and_has_the_interface(lite0: dict[str, Path]) -> None:
    assert set(lite0) == {"fp32", "int8"}
    assert check_against_reference(lite0["fp32"], reference_path()) < FP32_TOLERANCE
    session = _session(lite0["int8"])
    (image,), (logits,) = session.get_inputs(), session.get_outputs()
    assert (image.name, image.type, image.shape) == ("image", "tensor(float)", ["batch", 3, 224, 224])
    assert (logits.name, logits.type, logits.shape) == ("logits", "tensor(float)", ["batch", 1000])


@pytest.mark.parametrize("variant", [1, 2])
def test_fresh_conversion_matches_pytorch(variant: int, tmp_path: Path) -> None:
    paths = convert_efficientnet_lite(variant, tmp_path, int8=False)
    assert set(paths) == {"fp32"}
    assert check_against_reference(paths["fp32"], reference_path()) < FP32_TOLERANCE
    sidecar = json.loads((tmp_path / f"efficientnet-lite{variant}.json").read_text())
    assert sidecar["outputs"] == ["fp32"]
    assert sidecar["fp32_max_abs_diff"] < FP32_TOLERANCE


def test_second_conversion_is_a_no_op(lite0: dict[str, Path], model_dir: Path) -> None:
    before = {key: path.stat().st_mtime_ns for key, path in lite0.items()}
    assert convert_efficientnet_lite(0, model_dir) == lite0
    assert {key: path.stat().st_mtime_ns for key, path in lite0.items()} == before


def test_fp32_only_run_does_not_vouch_for_a_stale_int8(tmp_path: Path) -> None:
    convert_efficientnet_lite(1, tmp_path, int8=False)
    (tmp_path / "efficientnet-lite1-int8.onnx").write_bytes(b"left over from an older converter")
    paths = convert_efficientnet_lite(1, tmp_path)
    assert paths["int8"].stat().st_size > 1_000_000


def test_reference_check_catches_a_wrong_model(lite0: dict[str, Path]) -> None:
    # the int8 model is a fine classifier but not within fp32 tolerance of PyTorch
    with pytest.raises(ModelConversionError, match="differs from the PyTorch reference"):
        check_against_reference(lite0["int8"], reference_path())


# --- pre-processing and accuracy on real images ------------------------------------------------------------------


def test_preprocess_shape_range_and_centre_crop() -> None:
    wide = np.zeros((300, 600, 3), np.uint8)
    wide[:, 150:450] = 255  # the centred square is white, the sides black
    batch = preprocess(wide, 224)
    assert batch.shape == (1, 3, 224, 224)
    assert batch.dtype == np.float32
    assert batch.flags.c_contiguous
    np.testing.assert_allclose(batch, 128 / 128, atol=1e-6)  # (255 - 127) / 128 everywhere: only white kept
    grey = preprocess(np.full((10, 7, 3), 127, np.uint8), 260)  # tiny images are scaled up
    assert grey.shape == (1, 3, 260, 260)
    np.testing.assert_allclose(grey, 0.0, atol=1e-6)


def test_preprocess_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        preprocess(np.zeros((8, 8), np.uint8), 224)


@pytest.fixture(scope="module")
def imagenet_sample(eval_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = eval_dir / "zeroshot-imagenet"
    with (folder / "images.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = [rows[i] for i in SAMPLE_ROWS]
    batches = []
    for row in picked:
        with Image.open(folder / "images" / row["file"]) as image:
            batches.append(preprocess(np.asarray(image.convert("RGB")), EFFICIENTNET_LITE_RESOLUTION[0]))
    return np.concatenate(batches), np.array([int(row["class_index"]) for row in picked])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_lite0_top5_on_real_imagenet_images(
    lite0: dict[str, Path], imagenet_sample: tuple[np.ndarray, np.ndarray], precision: str
) -> None:
    images, labels = imagenet_sample
    logits = _session(lite0[precision]).run(["logits"], {"image": images})[0]
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert logits.shape == (len(labels), 1000)
    # over all 500 sample images Lite0 scores ~89% top-1 and ~97% top-5 in both precisions
    assert np.mean((top5 == labels[:, None]).any(axis=1)) >= 0.9
    assert np.mean(top5[:, 0] == labels) >= 0.7
