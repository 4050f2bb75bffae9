"""A minimal read-only safetensors loader on plain numpy.

The format is an 8-byte little-endian header length, a JSON header mapping tensor names to dtype, shape and
byte offsets (relative to the end of the header), then the raw little-endian tensor bytes. Reading it ourselves
keeps PyTorch (and the ``safetensors`` wheel) out of the runtime dependencies.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from frugalsense.errors import ModelUnavailableError

__all__ = ["read_safetensors"]

# Only the dtypes a CPU converter can meet in practice; bf16 has no numpy dtype and would need widening.
_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}

# A header far bigger than this means the file is not safetensors; refuse before allocating it.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor in ``path`` as a numpy array (copied out of the file, so the file can be closed)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read weights {path}: {exc}; reinstall the model package") from exc
    if len(blob) < 8:
        raise ModelUnavailableError(f"{path} is too short to be a safetensors file; reinstall the model package")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > min(_MAX_HEADER_BYTES, len(blob) - 8):
        raise ModelUnavailableError(f"{path} has a bad safetensors header; reinstall the model package")
    header: dict[str, Any] = json.loads(blob[8 : 8 + header_len])
    data = memoryview(blob)[8 + header_len :]
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ModelUnavailableError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        shape = tuple(int(d) for d in info["shape"])
        array = np.frombuffer(data[start:end], dtype=dtype)
        # Native byte order and an owned buffer: onnx.numpy_helper and later maths expect both.
        tensors[name] = array.astype(array.dtype.newbyteorder("="), copy=True).reshape(shape)
    return tensors
