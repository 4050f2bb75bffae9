"""Stateless face routes: detect and compare."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.uploads import read_upload, read_uploads, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.errors import InvalidRequestError

router = APIRouter(tags=["faces"])


def optional_float(fields: dict[str, Any], name: str) -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"'{name}' must be a number, got {value!r}") from None


@router.post(
    "/faces/detect",
    summary="Find faces: boxes, five landmarks, scores",
    response_model=schemas.FaceDetection,
    openapi_extra=upload_body("file"),
)
async def detect(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    upload, _ = await read_upload(request)
    analyzer = request.app.state.analyzer
    result = await infer(
        request,
        principal,
        lambda: analyzer.analyze(upload.data, ["faces"], name=upload.name, tenant=principal.tenant_id),
    )
    body = {"name": result.name, "faces": [], "receipt": result.receipt.to_dict()}
    for page in result.pages:
        body["faces"].extend(face.to_dict() for face in page.faces or [])
    return receipt_response(body, result.receipt, request)


@router.post(
    "/faces/compare",
    summary="1:1: are the largest faces of two pictures the same person?",
    response_model=schemas.FaceComparison,
    openapi_extra=upload_body("a", "b", extra={"threshold": {"type": "number"}}),
)
async def compare(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    (a, b), fields = await read_uploads(request, ("a", "b"))
    threshold = optional_float(fields, "threshold")
    gallery = request.app.state.gallery
    result = await infer(request, principal, lambda: gallery.compare(a.data, b.data, threshold=threshold))
    return receipt_response(result.to_dict(), result.receipt, request)
