"""Reading an input from a request: a multipart upload or a JSON body with base64 data. No URL fetching."""

from __future__ import annotations

import binascii
import itertools
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from frugalsense.api import jsonbody
from frugalsense.errors import EmptyInputError, FrugalsenseError, InvalidRequestError, UnsupportedFormatError

__all__ = ["UPLOAD_BODY", "Upload", "json_depth", "read_upload", "read_uploads"]


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str
    fields: dict[str, Any]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _form(request: Request) -> tuple[dict[str, bytes | str], dict[str, str]]:
    try:
        form = await request.form()
    except (FrugalsenseError, ClientDisconnect):
        raise  # the body passed its size limit while it streamed in (413), or the client left: not parse errors
    except Exception as exc:  # python-multipart's errors are not a stable hierarchy
        raise InvalidRequestError(f"the multipart body could not be parsed: {exc}") from exc
    files: dict[str, bytes | str] = {}
    names: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[key] = await value.read()
            names[key] = value.filename or "upload"
        else:
            files[key] = value
    return files, names


async def _json(request: Request, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parsed JSON body, its base64 fields named in `files` decoded to bytes (those present)."""
    max_depth = request.app.state.settings.max_json_depth
    pools = request.app.state.pools
    # Read as it streams into one buffer (not kept on the request), parsed in a worker thread, then let go.
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
    try:
        try:
            body = await pools.parse(lambda: jsonbody.loads(raw, raw_keys=files), len(raw))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(f"the JSON body could not be parsed: {exc}") from exc
        except RecursionError:
            raise InvalidRequestError(_too_deep(max_depth)) from None
        if not isinstance(body, dict):
            raise InvalidRequestError("the JSON body must be an object")
        if json_depth(body) > max_depth:
            raise InvalidRequestError(_too_deep(max_depth))
        for name in files:
            if name in body:  # a long one is still the body's bytes (a RawString): decoded before they go
                value = body[name]
                size = len(value) if isinstance(value, (str, jsonbody.RawString)) else 0
                body[name] = await pools.parse(lambda: _b64(value, name), size)  # noqa: B023
    finally:
        raw.clear()  # the parsed body holds what is needed
    return body


def _too_deep(max_depth: int) -> str:
    return f"the JSON body is nested more than {max_depth} levels deep (FRUGALSENSE_MAX_JSON_DEPTH); flatten it"


def json_depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (a scalar is 0), without recursion.

    >>> json_depth({"a": [1, {"b": []}]}), json_depth(3)
    (4, 0)
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


#: base64 is decoded this many characters at a time, and the thread decoding lets others take the interpreter
#: between pieces (a 48 MiB field in one call holds it for about 0.15 s; a piece, under a millisecond)
_B64_PIECE = 256 * 1024


def _b64(value: Any, field: str) -> bytes:
    """Decode a base64 field (strictly: no whitespace, no stray characters), piece by piece."""
    if isinstance(value, jsonbody.RawString):  # straight from the body's bytes
        padded = value.body.find(b"=", value.start, max(value.start, value.end - 2)) >= 0
        with value.view() as text:
            return _b64_text(text, field, padded)
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{field}' must be a base64 string")
    return _b64_text(value, field, value.find("=", 0, max(0, len(value) - 2)) >= 0)


def _b64_text(text: str | memoryview, field: str, padded_inside: bool) -> bytes:
    try:
        if len(text) % 4:
            raise binascii.Error("the data's length is not a multiple of 4")
        if padded_inside:
            raise binascii.Error("padding ('=') is allowed only at the end")
        # strict, in C: only the base64 alphabet, padding only at the end (as b64decode(validate=True) is)
        return _gather(
            binascii.a2b_base64(text[at : at + _B64_PIECE], strict_mode=True)
            for at in range(0, len(text), _B64_PIECE)
        )
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"'{field}' is not valid base64: {exc}") from exc


def _gather(pieces: Iterable[bytes]) -> bytes:
    """The pieces as one `bytes`, joined so that no other thread waits on the interpreter for long.

    `b"".join` of 36 MiB holds the interpreter while the kernel maps and zeroes the new pages (about 20 ms);
    here each piece goes to an in-memory file and the whole comes back in one read, both done by the kernel with
    the interpreter free. Between pieces the thread steps aside (`sleep(0)`), so a thread that waits for the
    interpreter gets it within a piece's time instead of the 5 ms switch interval.
    """
    pieces = iter(pieces)
    first = next(pieces, b"")
    second = next(pieces, None)
    if second is None:
        return first  # one piece: nothing to join
    with _scratch_file() as scratch:
        for piece in itertools.chain((first, second), pieces):
            scratch.write(piece)
            time.sleep(0)
        size = scratch.tell()
        scratch.seek(0)
        whole = scratch.read(size)
    if len(whole) != size:
        raise OSError(f"read {len(whole)} of {size} bytes back from a scratch file")
    return whole


def _scratch_file() -> BinaryIO:
    """An unbuffered scratch file in memory (memfd on Linux), or a temporary file elsewhere."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("frugalsense-upload", os.MFD_CLOEXEC), "w+b", buffering=0)
    return tempfile.TemporaryFile(buffering=0)


async def read_uploads(request: Request, names: tuple[str, ...]) -> tuple[list[Upload], dict[str, Any]]:
    """The files `names` (multipart parts, or base64 JSON fields of the same names) and the other fields."""
    media = _media_type(request)
    uploads: list[Upload] = []
    if media == "multipart/form-data":
        parts, filenames = await _form(request)
        for name in names:
            value = parts.get(name)
            if not isinstance(value, bytes):
                raise InvalidRequestError(f"send the file as a multipart part named '{name}'")
            uploads.append(Upload(value, filenames.get(name, "upload"), {}))
        fields: dict[str, Any] = {k: v for k, v in parts.items() if k not in names and isinstance(v, str)}
    elif media == "application/json":
        body = await _json(request, names)
        for name in names:
            if name not in body:
                raise InvalidRequestError(f"the JSON body needs a base64 field '{name}'")
            label = body.get(f"{name}_name") or body.get("name") or "upload"
            uploads.append(Upload(body[name], str(label), {}))
        fields = {k: v for k, v in body.items() if k not in names}
    else:
        raise UnsupportedFormatError(
            f"send multipart/form-data (a file part) or application/json (base64 data), not '{media or 'nothing'}'"
        )
    for upload in uploads:
        if not upload.data:
            raise EmptyInputError(f"the upload '{upload.name}' is empty (0 bytes); send the file's contents")
    return uploads, fields


async def read_upload(request: Request, name: str = "file") -> tuple[Upload, dict[str, Any]]:
    (upload,), fields = await read_uploads(request, (name,))
    return upload, fields


def upload_body(*names: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenAPI `requestBody` for routes that read their files by hand (multipart or base64 JSON)."""
    props_multipart = {n: {"type": "string", "format": "binary"} for n in names}
    props_json: dict[str, Any] = {n: {"type": "string", "format": "byte"} for n in names}
    props_json["name"] = {"type": "string"}
    for key, schema in (extra or {}).items():
        props_multipart[key] = {"type": "string"} if schema.get("type") != "string" else schema
        props_json[key] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": list(names), "properties": props_multipart}
                },
                "application/json": {
                    "schema": {"type": "object", "required": list(names), "properties": props_json}
                },
            },
        }
    }


UPLOAD_BODY = upload_body("file")
