"""POST /v1/documents/fields: a receipt's or invoice's fields, or a form's question and answer pairs (``kind``),
page by page (`fields.document.read_document`), optionally with a picture of each page (``previews``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.analyze import MAX_PREVIEWS, PREVIEW_SIDE, PagePreviews, flag, receipt_response
from frugalsense.api.schemas.fields import DocumentForms as FormsBody
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.fields.document import (
    DOCUMENT_KINDS,
    DocumentFields,
    DocumentForms,
    DocumentKind,
    check_document,
    document_kind,
    read_document,
)

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = ["router"]

router = APIRouter(tags=["documents"])

_KIND_SCHEMA = {
    "type": "string",
    "enum": list(DOCUMENT_KINDS),
    "default": "receipt",
    "description": "receipt: a receipt's or invoice's fields (the default); form: a form's questions and answers",
}
_PREVIEWS_SCHEMA = {
    "type": "boolean",
    "description": (
        f"add a JPEG of each page (longest side at most {PREVIEW_SIDE} px, the first {MAX_PREVIEWS}) to draw the "
        "evidence boxes on; default false"
    ),
}


@router.post(
    "/documents/fields",
    summary="Read a receipt's or invoice's fields (vendor, date, total, line items) or a form's key-value pairs",
    response_model=schemas.DocumentFields | FormsBody,
    openapi_extra=upload_body("file", extra={"kind": _KIND_SCHEMA, "previews": _PREVIEWS_SCHEMA}),
)
async def document_fields(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    """Each page's fields with a confidence and the OCR lines they came from; a field the model is unsure of
    is left out and listed in ``not_found`` (abstained, or absent from the page). With ``kind=form``, each page's
    question and answer pairs instead, each with a confidence and evidence; pairs the model is unsure of are
    only counted (``abstained``). With ``previews``, each of the first pages gets a JPEG (``preview``, as on
    /v1/analyze)."""
    upload, fields = await read_upload(request)
    kind = document_kind(fields.get("kind"))
    previews = flag(fields.get("previews"), "previews")
    check_document(upload.data)  # a recording is refused before any work
    analyzer = request.app.state.analyzer
    if not previews:
        found = await infer(
            request,
            principal,
            lambda: read_document(upload.data, analyzer, kind=kind, name=upload.name, tenant=principal.tenant_id),
        )
        body = found.to_dict()
    else:
        body, found = await infer(
            request,
            principal,
            lambda: _with_previews(analyzer, upload.data, kind, upload.name, principal.tenant_id),
        )
    return receipt_response(body, found.receipt, request, pictures={found.feature: len(found.pages)})


def _with_previews(
    analyzer: Analyzer, data: bytes, kind: DocumentKind, name: str, tenant: str
) -> tuple[dict[str, Any], DocumentFields | DocumentForms]:
    """The document read with a JPEG of each of its first `MAX_PREVIEWS` pages, made while each page is decoded
    for reading (billed as decoding, note ``preview``)."""
    meter = analyzer.meter()
    previews = PagePreviews(meter)
    found = read_document(data, analyzer, kind=kind, name=name, tenant=tenant, meter=meter, on_page=previews.take)
    body = found.to_dict()
    previews.attach(body)
    return body, found
