"""What callers may store: names, item sources and metadata, checked before anything is written.

Every refusal is an `InvalidRequestError` (HTTP 422) that names the limit and the setting that raises it. Reads go
the other way: JSON an older version stored (NaN, nesting past the limit) is read back tolerantly, never a 500.

    >>> limits = Limits()
    >>> limits.metadata_json({"badge": 17, "tags": ["a", "b"]})
    '{"badge": 17, "tags": ["a", "b"]}'
    >>> limits.metadata_json({"height": float("nan")})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    frugalsense.errors.InvalidRequestError: metadata must hold finite numbers only; metadata.height is nan ...
    >>> read_json('{"height": NaN, "ok": 2}', max_depth=32)
    {'height': None, 'ok': 2}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frugalsense.errors import InvalidRequestError
from frugalsense.settings import Settings

__all__ = ["Limits", "json_depth", "read_json"]


def _default(name: str) -> int:
    return int(Settings.model_fields[name].default)


@dataclass(frozen=True)
class Limits:
    """How much a caller may store; the defaults are the settings' defaults."""

    name_chars: int = _default("max_name_chars")
    source_chars: int = _default("max_source_chars")
    metadata_bytes: int = _default("max_metadata_bytes")
    json_depth: int = _default("max_json_depth")

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            name_chars=settings.max_name_chars,
            source_chars=settings.max_source_chars,
            metadata_bytes=settings.max_metadata_bytes,
            json_depth=settings.max_json_depth,
        )

    def name(self, value: str, what: str) -> str:
        """``value`` without surrounding spaces: 1 to ``name_chars`` characters."""
        name = value.strip() if isinstance(value, str) else ""
        if not name:
            raise InvalidRequestError(f"a {what} name must be 1 to {self.name_chars} characters; got none")
        if len(name) > self.name_chars:
            raise InvalidRequestError(
                f"a {what} name must be at most {self.name_chars:,} characters (FRUGALSENSE_MAX_NAME_CHARS); "
                f"got {len(name):,}"
            )
        return name

    def source(self, value: str) -> str:
        """An item's ``source`` key: 1 to ``source_chars`` characters."""
        if not value:
            raise InvalidRequestError("an item's source must not be empty")
        if len(value) > self.source_chars:
            raise InvalidRequestError(
                f"an item's source must be at most {self.source_chars:,} characters "
                f"(FRUGALSENSE_MAX_SOURCE_CHARS); got {len(value):,}: use a shorter key"
            )
        return value

    def metadata_json(self, metadata: Mapping[str, Any] | None, what: str = "metadata") -> str:
        """The JSON text to store for a metadata object, once it is known to be finite, shallow and small."""
        value = dict(metadata or {})
        if _check_tree(value, what, self.json_depth) > self.json_depth:
            raise InvalidRequestError(
                f"{what} is nested deeper than the limit of {self.json_depth} levels "
                "(FRUGALSENSE_MAX_JSON_DEPTH); flatten it"
            )
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
        size = len(text.encode())
        if size > self.metadata_bytes:
            raise InvalidRequestError(
                f"{what} is {size:,} bytes of JSON, over the limit of {self.metadata_bytes:,} "
                "(FRUGALSENSE_MAX_METADATA_BYTES); keep it to a few fields"
            )
        return text


def _check_tree(value: Any, what: str, max_depth: int) -> int:
    """The nesting depth of a JSON-like value (an object or list counts one level), walked without recursion;
    refuses what JSON cannot hold. Stops counting one level past ``max_depth``."""
    deepest = 0
    stack: list[tuple[Any, str, int]] = [(value, what, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            if depth > max_depth:
                continue
            for key, child in node.items():
                if not isinstance(key, str):
                    raise InvalidRequestError(f"{path} has a key {key!r}: JSON object keys are strings")
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(node, list | tuple):
            deepest = max(deepest, depth)
            if depth > max_depth:
                continue
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            raise InvalidRequestError(
                f"{what} must hold finite numbers only; {path} is {node} (JSON has no NaN or Infinity)"
            )
        elif node is not None and not isinstance(node, str | int | float | bool):
            raise InvalidRequestError(f"{path} is a {type(node).__name__}; metadata holds JSON values only")
    return deepest


def json_depth(value: Any) -> int:
    """How deeply a JSON-like value nests (0 for a plain value), without recursion.

    >>> json_depth({"a": [1, {"b": 2}]})
    3
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_json(text: str, *, max_depth: int | None) -> Any:
    """Stored JSON, read tolerantly: NaN and Infinity become None, and anything nested past ``max_depth`` (when
    given) is cut to None (an older version stored such values; they must not make every later read fail)."""
    try:
        value = json.loads(text, parse_constant=lambda _: None)
    except (RecursionError, ValueError):
        return {}
    if max_depth is None or json_depth(value) <= max_depth:
        return value
    return _cut(value, max_depth)


def _cut(value: Any, max_depth: int) -> Any:
    """A copy of ``value`` with containers deeper than ``max_depth`` replaced by None (no recursion)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any] | dict[str, Any], Any, int]] = [(value, root, 0, 1)]
    while stack:
        node, parent, slot, depth = stack.pop()
        if isinstance(node, dict | list) and depth > max_depth:
            parent[slot] = None
        elif isinstance(node, dict):
            copy: dict[str, Any] = dict.fromkeys(node)  # keys in their order; values filled in below
            parent[slot] = copy
            stack.extend((child, copy, key, depth + 1) for key, child in node.items())
        elif isinstance(node, list):
            items: list[Any] = [None] * len(node)
            parent[slot] = items
            stack.extend((child, items, i, depth + 1) for i, child in enumerate(node))
        else:
            parent[slot] = node
    return root[0]
