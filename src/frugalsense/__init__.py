"""frugalsense: vision, document and speech AI on a cheap CPU box, with a cost receipt on every answer.

    import frugalsense
    result = frugalsense.analyze("photo.jpg", features=["faces", "labels"])
    result.receipt.cpu_seconds

Nothing heavy is imported here: models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Analyzer", "AsyncClient", "Client", "Settings", "__version__", "analyze", "errors"]

if TYPE_CHECKING:
    from frugalsense import errors
    from frugalsense.analyze import Analyzer, analyze
    from frugalsense.client import AsyncClient, Client
    from frugalsense.settings import Settings

_LAZY = {
    "Analyzer": ("frugalsense.analyze", "Analyzer"),
    "analyze": ("frugalsense.analyze", "analyze"),
    "Settings": ("frugalsense.settings", "Settings"),
    "Client": ("frugalsense.client", "Client"),
    "AsyncClient": ("frugalsense.client", "AsyncClient"),
    "errors": ("frugalsense.errors", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'frugalsense' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
