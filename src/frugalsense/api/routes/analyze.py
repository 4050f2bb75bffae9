"""POST /v1/analyze: the library's `analyze` over HTTP, optionally with a picture of each page or frame."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.analyze import FEATURES, Analyzer
from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.usage import pictures_in, record_usage
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import CostReceipt, Meter
from frugalsense.media.preview import Preview, jpeg_preview
from frugalsense.media.types import Frame
from frugalsense.results import AnalysisResult, PageResult

router = APIRouter(tags=["analyze"])

#: pages or frames of one request that get a picture with ``previews``; later ones get none
MAX_PREVIEWS = 20
#: longest side of a page's picture, in pixels (never larger than the page as decoded)
PREVIEW_SIDE = 1280
PREVIEW_QUALITY = 75

_FEATURES_SCHEMA = {
    "type": "string",
    "description": "comma-separated features: faces, labels, moderation, text, speech (default: by kind)",
}
_PREVIEWS_SCHEMA = {
    "type": "boolean",
    "description": (
        f"add a JPEG of each page or frame (longest side at most {PREVIEW_SIDE} px, the first {MAX_PREVIEWS}) "
        "to draw the boxes on; default false"
    ),
}


def parse_features(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        chosen = [v.strip().lower() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        chosen = [v.strip().lower() for v in value if v.strip()]
    else:
        raise InvalidRequestError("'features' must be a comma-separated string or a list of strings")
    unknown = sorted(set(chosen) - set(FEATURES))
    if unknown:
        raise InvalidRequestError(f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(FEATURES)}")
    return list(dict.fromkeys(chosen)) or None


def flag(value: Any, name: str) -> bool:
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "false", "0", "no"):
        return text in ("true", "1", "yes")
    raise InvalidRequestError(f"'{name}' must be true or false, got {value!r}")


def preview_json(preview: Preview) -> dict[str, Any]:
    """A page's picture as the ``preview`` of a JSON answer (`schemas.PagePreview`)."""
    return {
        "jpeg_base64": base64.b64encode(preview.jpeg).decode("ascii"),
        "width": preview.width,
        "height": preview.height,
        "scale": round(preview.scale, 6),
    }


def receipt_response(
    body: dict[str, Any],
    receipt: CostReceipt,
    request: Request,
    status: int = 200,
    *,
    pictures: Mapping[str, int] | int | None = None,
) -> JSONResponse:
    """A JSON response with the receipt's summary in a header, billed to the metrics and the usage ledger with
    the pictures each feature analysed (``pictures``, else an analysis body's pages, else one each)."""
    request.app.state.metrics.bill(receipt)
    # the tenant's usage ledger (GET /v1/usage)
    record_usage(request, receipt, pictures if pictures is not None else pictures_in(body))
    return JSONResponse(body, status_code=status, headers={"X-Cost-Receipt": receipt.summary()})


@router.post(
    "/analyze",
    summary="Analyse a photo, scan, PDF, audio or video file",
    response_model=schemas.Analysis,
    openapi_extra=upload_body("file", extra={"features": _FEATURES_SCHEMA, "previews": _PREVIEWS_SCHEMA}),
)
async def analyze(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    upload, fields = await read_upload(request)
    features = parse_features(fields.get("features"))
    analyzer = request.app.state.analyzer
    if not flag(fields.get("previews"), "previews"):
        result = await infer(
            request,
            principal,
            lambda: analyzer.analyze(upload.data, features, name=upload.name, tenant=principal.tenant_id),
        )
        return receipt_response(result.to_dict(), result.receipt, request)
    body, receipt = await infer(
        request, principal, lambda: _with_previews(analyzer, upload.data, features, upload.name)
    )
    return receipt_response(body, receipt, request)


def _with_previews(
    analyzer: Analyzer, data: bytes, features: list[str] | None, name: str
) -> tuple[dict[str, Any], CostReceipt]:
    """The analysis with a JPEG of each of the first `MAX_PREVIEWS` pages or frames, made in the same pass while
    each is decoded (billed as decoding). Not from the result cache: the pictures must be decoded anyway."""
    meter = analyzer.meter()
    previews = PagePreviews(meter)
    result: AnalysisResult = analyzer.analyze(data, features, name=name, meter=meter, on_page=previews.take)
    body = result.to_dict()
    previews.attach(body)
    return body, result.receipt


class PagePreviews:
    """JPEGs of the first `MAX_PREVIEWS` pages or frames of one request, each made while its picture is decoded
    (`Analyzer.analyze`'s ``on_page``) and billed to `meter` as decoding."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.pictures: dict[int, Preview] = {}

    def take(self, number: int, frame: Frame, page: PageResult) -> None:
        if number < MAX_PREVIEWS:
            with self.meter.stage("decode", note="preview"):
                self.pictures[number] = jpeg_preview(frame, PREVIEW_SIDE, PREVIEW_QUALITY)

    def attach(self, body: dict[str, Any]) -> None:
        """Each page of a JSON answer (``body["pages"]``, in decoding order) gets its ``preview``; the answer
        says how many got none."""
        for number, preview in self.pictures.items():
            body["pages"][number]["preview"] = preview_json(preview)
        body["previews_omitted"] = len(body["pages"]) - len(self.pictures)
