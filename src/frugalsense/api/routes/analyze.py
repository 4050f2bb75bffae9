"""POST /v1/analyze: the library's `analyze` over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.usage import record_usage
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import CostReceipt

router = APIRouter(tags=["analyze"])

_FEATURES_SCHEMA = {
    "type": "string",
    "description": "comma-separated features: faces, labels, moderation, text, speech (default: by kind)",
}


def parse_features(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequestError("'features' must be a comma-separated string or a list of strings")


def receipt_response(
    body: dict[str, Any], receipt: CostReceipt, request: Request, status: int = 200
) -> JSONResponse:
    """A JSON response with the receipt's summary in a header, billed to the metrics."""
    request.app.state.metrics.bill(receipt)
    record_usage(request, receipt)  # the tenant's usage ledger (GET /v1/usage)
    return JSONResponse(body, status_code=status, headers={"X-Cost-Receipt": receipt.summary()})


@router.post(
    "/analyze",
    summary="Analyse a photo, scan, PDF, audio or video file",
    response_model=schemas.Analysis,
    openapi_extra=upload_body("file", extra={"features": _FEATURES_SCHEMA}),
)
async def analyze(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    features = parse_features(fields.get("features"))
    analyzer = request.app.state.analyzer
    result = await infer(
        request,
        principal,
        lambda: analyzer.analyze(upload.data, features, name=upload.name, tenant=principal.tenant_id),
    )
    return receipt_response(result.to_dict(), result.receipt, request)
