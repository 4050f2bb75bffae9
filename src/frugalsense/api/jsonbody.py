"""Parsing a large JSON body without holding the interpreter lock for long.

`json.loads` of a 48 MiB body (one base64 picture) is a single C call of about 0.1 s, during which no other
thread of the server runs Python: every other tenant's request stalls behind it. `loads` gives the same result
as `json.loads`, but cuts long string literals out of the body first, parses the small rest in one call, and
decodes the long strings a megabyte at a time, so the lock changes hands between pieces.

>>> body = b'{"image": "' + b"QUFB" * 300_000 + b'", "features": ["faces"], "n": 1.5}'
>>> parsed = loads(body)
>>> parsed == json.loads(body), len(parsed["image"])
(True, 1200000)

Named top-level fields can be left as they were sent (`RawString`: the literal's bytes, not a `str`): a base64
file is then decoded straight from the body, and the 48 MiB string `json.loads` would build is never made.

>>> raw = loads(body, raw_keys=("image",))["image"]
>>> len(raw), bytes(raw.view()[:8])
(1200000, b'QUFBQUFB')
"""

from __future__ import annotations

import codecs
import json
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RawString", "loads"]

#: bodies up to this size parse in one call (a few milliseconds)
SMALL = 1 << 20
#: string literals longer than this are cut out and decoded piece by piece
LONG = 1 << 16
#: bytes decoded at a time
PIECE = 1 << 20

_QUOTE, _BACKSLASH = b'"', b"\\"


@dataclass(frozen=True, eq=False)
class RawString:
    """A long string literal of a body, not decoded: its bytes between the quotes (no escapes among them).

    It refers to the body's buffer: use it before the body is let go. Nothing checks that the bytes are UTF-8
    text; whoever reads them checks them against what they must be (a base64 alphabet, say).
    """

    body: bytes | bytearray
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def view(self) -> memoryview:
        return memoryview(self.body)[self.start : self.end]


def loads(raw: bytes | bytearray, *, raw_keys: Collection[str] = ()) -> Any:
    """`json.loads(raw)`, decoding long strings in pieces; raises what `json.loads` raises.

    A top-level field named in `raw_keys` whose value is a long literal without escapes comes back as a
    `RawString` instead of a `str`.
    """
    if len(raw) <= SMALL or json.detect_encoding(bytes(raw[:4])) != "utf-8":
        return json.loads(raw)
    tag = "\x00" + secrets.token_hex(8) + ":"  # a NUL cannot occur raw in a JSON string: no collision
    skeleton, done = bytearray(), 0
    spans: list[tuple[int, int]] = []
    start = raw.find(_QUOTE)
    while start >= 0:
        end = _closing_quote(raw, start)
        if end < 0:
            break  # unterminated: json.loads says where
        if end - start - 1 > LONG and raw.find(_BACKSLASH, start + 1, end) < 0:
            skeleton += raw[done:start]
            skeleton += json.dumps(f"{tag}{len(spans)}").encode()
            spans.append((start + 1, end))
            done = end + 1
        start = raw.find(_QUOTE, end + 1)
    if not spans:
        return json.loads(raw)
    skeleton += raw[done:]
    parsed = json.loads(skeleton)

    def long_string(value: str) -> str | None:
        return _decode(raw, *spans[int(value[len(tag) :])]) if value.startswith(tag) else None

    if isinstance(parsed, dict) and raw_keys:
        kept = {
            key: RawString(raw, *spans[int(value[len(tag) :])])
            for key, value in parsed.items()
            if key in raw_keys and isinstance(value, str) and value.startswith(tag)
        }
        return {key: kept[key] if key in kept else _put_back(value, long_string) for key, value in parsed.items()}
    return _put_back(parsed, long_string)


def _closing_quote(raw: bytes | bytearray, start: int) -> int:
    """Where the string literal opened at `start` ends (-1 if it does not)."""
    at = raw.find(_QUOTE, start + 1)
    while at >= 0:
        escapes = 0
        while raw[at - 1 - escapes] == 0x5C:  # backslashes just before the quote
            escapes += 1
        if escapes % 2 == 0:
            return at
        at = raw.find(_QUOTE, at + 1)
    return -1


def _decode(raw: bytes | bytearray, start: int, end: int) -> str:
    """The UTF-8 text between `start` and `end` (no escapes in it), checked as `json.loads` checks strings."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    pieces = []
    for at in range(start, end, PIECE):
        piece = view[at : min(at + PIECE, end)]
        codes = np.frombuffer(piece, dtype=np.uint8)
        if codes.min() < 0x20:  # control characters must be escaped in JSON strings
            where = at + int(np.argmax(codes < 0x20))
            text_before = bytes(raw[: where + 1]).decode("utf-8", "replace")  # for the line and column
            raise json.JSONDecodeError("Invalid control character at", text_before, len(text_before) - 1)
        pieces.append(decoder.decode(piece, final=at + PIECE >= end))
    return "".join(pieces)


def _put_back(value: Any, long_string: Callable[[str], str | None]) -> Any:
    """The parsed skeleton with every placeholder replaced by its long string (`long_string` of a placeholder;
    None for any other string)."""
    if isinstance(value, str):
        found = long_string(value)
        return value if found is None else found
    if isinstance(value, list):
        return [_put_back(v, long_string) for v in value]
    if isinstance(value, dict):
        return {_put_back(k, long_string): _put_back(v, long_string) for k, v in value.items()}
    return value
