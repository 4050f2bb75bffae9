"""The model registry. Built-in models register through the same call a plug-in uses.

>>> from frugalsense.models.registry import registry
>>> "sface" in registry.names()
True
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from typing import Any, TypeVar

from frugalsense.errors import InvalidRequestError
from frugalsense.models.base import Model, ModelCard
from frugalsense.settings import Settings

__all__ = ["ModelZoo", "register", "registry"]

M = TypeVar("M", bound=type[Model[Any, Any]])

#: modules that hold the built-in models; imported on first use, never at package import
_BUILTIN_MODULES = (
    "frugalsense.models.faces",
    "frugalsense.models.labels",
    "frugalsense.models.moderation",
    "frugalsense.models.ocr",
    "frugalsense.models.speech",
    "frugalsense.models.text",
)
#: plug-ins declare an entry point in this group that points at a module calling `register`
ENTRY_POINT_GROUP = "frugalsense.models"


class Registry:
    def __init__(self) -> None:
        self._models: dict[str, type[Model[Any, Any]]] = {}
        self._discovered = False
        self._lock = threading.Lock()

    def register(self, cls: M) -> M:
        """Class decorator: make a model available by its card's name."""
        name = cls.card.name
        existing = self._models.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"model name {name!r} is registered twice")
        self._models[name] = cls
        return cls

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            for module in _BUILTIN_MODULES:
                importlib.import_module(module)
            for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                entry.load()
            self._discovered = True

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._models)

    def cards(self) -> list[ModelCard]:
        self._discover()
        return [self._models[n].card for n in sorted(self._models)]

    def get(self, name: str) -> type[Model[Any, Any]]:
        self._discover()
        try:
            return self._models[name]
        except KeyError:
            raise InvalidRequestError(f"unknown model {name!r}; known models: {', '.join(self.names())}") from None


registry = Registry()
register = registry.register


class ModelZoo:
    """The loaded models of one process: each created once, loaded on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, Model[Any, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Model[Any, Any]:
        model = self._instances.get(name)
        if model is None:
            with self._lock:
                model = self._instances.get(name)
                if model is None:
                    model = registry.get(name)(self.settings)
                    self._instances[name] = model
        return model

    def loaded(self) -> list[str]:
        return [name for name, m in self._instances.items() if m.loaded]
