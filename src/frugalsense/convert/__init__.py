"""Turning shipped weights into ONNX (fp32, int8) and checking them against reference outputs.

`prepare_models` runs every conversion once into the model cache; later runs find the files and skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from frugalsense.settings import Settings

__all__ = ["prepare_models"]


def prepare_models(settings: Settings) -> Iterator[str]:
    """Convert what needs converting; yield one line per model for the person watching."""
    from frugalsense.convert.efficientnet import convert_efficientnet_lite
    from frugalsense.convert.minilm import convert_minilm
    from frugalsense.convert.sface import convert_sface

    out = settings.model_dir
    out.mkdir(parents=True, exist_ok=True)
    for variant in (0, 1, 2):
        start = time.perf_counter()
        paths = convert_efficientnet_lite(variant, out)
        names = ", ".join(p.name for p in paths.values())
        yield f"efficientnet-lite{variant}: {names} ({time.perf_counter() - start:.1f}s)"
    start = time.perf_counter()
    paths = convert_minilm(out)
    yield f"minilm-l6-v2: {', '.join(p.name for p in paths.values())} ({time.perf_counter() - start:.1f}s)"
    start = time.perf_counter()
    paths = convert_sface(out)
    yield f"sface: {', '.join(p.name for p in paths.values())} ({time.perf_counter() - start:.1f}s)"
