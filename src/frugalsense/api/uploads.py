"""Reading an input from a request: a multipart upload or a JSON body with base64 data. No URL fetching."""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

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


async def _json(request: Request) -> dict[str, Any]:
    max_depth = request.app.state.settings.max_json_depth
    # Read as it streams into one buffer (not kept on the request), parsed in a worker thread, then let go.
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
    try:
        body = await request.app.state.pools.parse(lambda: jsonbody.loads(raw), len(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the JSON body could not be parsed: {exc}") from exc
    except RecursionError:
        raise InvalidRequestError(_too_deep(max_depth)) from None
    finally:
        raw.clear()  # the parsed body holds what is needed
    if not isinstance(body, dict):
        raise InvalidRequestError("the JSON body must be an object")
    if json_depth(body) > max_depth:
        raise InvalidRequestError(_too_deep(max_depth))
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


#: base64 is decoded this many characters at a time, so the thread decoding a large upload lets the event loop
#: run between pieces (a 48 MiB field in one call holds the interpreter for about 0.15 s)
_B64_PIECE = 1024 * 1024


def _b64(value: Any, field: str) -> bytes:
    """Decode a base64 field (strictly: no whitespace, no stray characters), piece by piece."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{field}' must be a base64 string")
    try:
        if len(value) % 4:
            raise binascii.Error("the data's length is not a multiple of 4")
        if value.find("=", 0, max(0, len(value) - 2)) >= 0:
            raise binascii.Error("padding ('=') is allowed only at the end")
        # strict, in C: only the base64 alphabet, padding only at the end (as b64decode(validate=True) is)
        return b"".join(
            binascii.a2b_base64(value[at : at + _B64_PIECE], strict_mode=True)
            for at in range(0, len(value), _B64_PIECE)
        )
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"'{field}' is not valid base64: {exc}") from exc


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
        body = await _json(request)
        for name in names:
            if name not in body:
                raise InvalidRequestError(f"the JSON body needs a base64 field '{name}'")
            label = body.get(f"{name}_name") or body.get("name") or "upload"
            value = body[name]
            size = len(value) if isinstance(value, str) else 0
            data = await request.app.state.pools.parse(lambda: _b64(value, name), size)  # noqa: B023
            uploads.append(Upload(data, str(label), {}))
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
