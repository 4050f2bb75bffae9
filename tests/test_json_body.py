"""Large JSON bodies parse to exactly what `json.loads` gives, in pieces, and bad ones fail as it fails; base64
fields decode strictly (as `b64decode(validate=True)`), in C, piece by piece."""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Callable

import pytest

from frugalsense.api import jsonbody
from frugalsense.api.uploads import _b64
from frugalsense.errors import InvalidRequestError

BIG = jsonbody.SMALL + 12_345


def _big_text(n: int = BIG) -> str:
    return base64.b64encode(os.urandom(n * 3 // 4)).decode()


@pytest.mark.parametrize(
    "value",
    [
        {"image": _big_text(), "features": ["faces", "labels"], "threshold": 0.25, "keep": False, "n": None},
        [_big_text(), {"nested": {"deeper": [_big_text(), "short", 1e300]}}],
        {_big_text(): "a long key", "é": "ünïcödé " * 200_000},  # non-ASCII cut across pieces
        {"escaped": 'quote " and backslash \\ ' * 100_000, "tail": _big_text()},  # escapes: parsed whole
        {"tag-like": "\x00" + "ab" * 10, "image": _big_text()},  # a NUL in a value never collides
        {"emoji": "😀" * 400_000},
    ],
)
def test_same_result_as_json_loads(value: object) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert len(raw) > jsonbody.SMALL
    assert jsonbody.loads(raw) == json.loads(raw) == value
    assert jsonbody.loads(bytearray(raw)) == value


def test_utf16_bodies_are_left_to_json_loads() -> None:
    raw = json.dumps({"image": _big_text()}).encode("utf-16")
    assert jsonbody.loads(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"image": "' + b"A" * BIG,  # unterminated
        b'{"image": "' + b"A" * BIG + b'\x01A"}',  # a raw control character inside a long string
        b'{"image": "' + b"A" * BIG + b'" "x": 1}',  # a missing comma outside it
        b'{"image": "' + b"A" * BIG + b'"',  # the object never closes
    ],
)
def test_bad_bodies_fail_like_json_loads(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    with pytest.raises(json.JSONDecodeError):
        jsonbody.loads(raw)


def test_invalid_utf8_in_a_long_string_fails_like_json_loads() -> None:
    raw = b'{"image": "' + b"A" * BIG + b'\xff\xfe"}'
    with pytest.raises(UnicodeDecodeError):
        json.loads(raw)
    with pytest.raises(UnicodeDecodeError):
        jsonbody.loads(raw)


def test_the_interpreter_lock_changes_hands_while_a_48_mib_body_parses() -> None:
    """The longest stretch another thread waits is far below a whole `json.loads` of the same body."""
    raw = json.dumps({"image": _big_text(48 << 20)}).encode()

    def longest_wait(parse: Callable[[bytes], object]) -> float:
        waits: list[float] = []
        done = threading.Event()

        def watch() -> None:
            last = time.perf_counter()
            while not done.is_set():
                time.sleep(0.0005)
                now = time.perf_counter()
                waits.append(now - last)
                last = now

        watcher = threading.Thread(target=watch)
        watcher.start()
        time.sleep(0.01)
        parse(raw)
        done.set()
        watcher.join()
        return max(waits)

    whole = min(longest_wait(json.loads) for _ in range(3))
    pieces = min(longest_wait(jsonbody.loads) for _ in range(3))
    assert pieces < whole / 2, (pieces, whole)


@pytest.mark.parametrize(
    "text",
    [
        *("QUFB", "QQ==", "QUFBQQ=", "QQ==QUFB", "QU FB", "QUF\n", "", "Q===", "=QUF", "ÄUFB", "QUFBQQ=="),
        *("QUFB" * 300_000, "QUFB" * 300_000 + "QQ="),
    ],
)
def test_base64_is_as_strict_as_validate_true(text: str) -> None:
    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(InvalidRequestError):
            _b64(text, "file")
    else:
        assert _b64(text, "file") == expected


def test_padding_inside_a_long_field_is_refused() -> None:
    good = _big_text(3 << 20)
    cut = len(good) // 2 // 4 * 4
    with pytest.raises(InvalidRequestError, match="padding"):
        _b64(good[:cut] + "QQ==" + good[cut:], "file")


def test_file_fields_can_stay_raw_and_decode_straight_from_the_body() -> None:
    """A base64 file named in `raw_keys` is never made a `str`: it decodes from the body's bytes to the same data,
    is refused as strictly when damaged, and every other field parses as `json.loads` parses it."""
    data = os.urandom(3 * jsonbody.SMALL + 5)
    text = base64.b64encode(data).decode()
    raw = bytearray(json.dumps({"file": text, "name": "a.jpg", "other": _big_text(), "n": [1, 2]}).encode())
    parsed = jsonbody.loads(raw, raw_keys=("file",))
    assert isinstance(parsed["file"], jsonbody.RawString) and len(parsed["file"]) == len(text)
    assert {k: v for k, v in parsed.items() if k != "file"} == {
        k: v for k, v in json.loads(raw).items() if k != "file"
    }
    assert _b64(parsed["file"], "file") == data
    raw.clear()  # nothing decoded from it is still tied to the buffer
    for damaged in (text[:-1] + "!", text[:1000] + "=" + text[1001:], text[:-3]):
        kept = jsonbody.loads(json.dumps({"file": damaged}).encode(), raw_keys=("file",))["file"]
        assert isinstance(kept, jsonbody.RawString)
        with pytest.raises(InvalidRequestError):
            _b64(kept, "file")


def test_short_or_escaped_file_fields_stay_strings() -> None:
    escaped = json.dumps({"file": "QUFB\\/" + "A" * (2 * jsonbody.LONG), "pad": _big_text()}).encode()
    assert isinstance(jsonbody.loads(escaped, raw_keys=("file",))["file"], str)
    small = json.dumps({"file": "QUFB", "pad": _big_text()}).encode()
    assert jsonbody.loads(small, raw_keys=("file",))["file"] == "QUFB"
