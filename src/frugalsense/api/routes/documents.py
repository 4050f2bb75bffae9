"""POST /v1/documents/fields: a receipt's or invoice's fields, or a form's question and answer pairs (``kind``),
page by page (`fields.document.read_document`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.schemas.fields import DocumentForms
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.fields.document import DOCUMENT_KINDS, check_document, document_kind, read_document

__all__ = ["router"]

router = APIRouter(tags=["documents"])

_KIND_SCHEMA = {
    "type": "string",
    "enum": list(DOCUMENT_KINDS),
    "default": "receipt",
    "description": "receipt: a receipt's or invoice's fields (the default); form: a form's questions and answers",
}


@router.post(
    "/documents/fields",
    summary="Read a receipt's or invoice's fields (vendor, date, total, line items) or a form's key-value pairs",
    response_model=schemas.DocumentFields | DocumentForms,
    openapi_extra=upload_body("file", extra={"kind": _KIND_SCHEMA}),
)
async def document_fields(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    """Each page's fields with a confidence and the OCR lines they came from; a field the model is unsure of
    is left out and listed in ``not_found`` (abstained, or absent from the page). With ``kind=form``, each page's
    question and answer pairs instead, each with a confidence and evidence; pairs the model is unsure of are
    only counted (``abstained``)."""
    upload, fields = await read_upload(request)
    kind = document_kind(fields.get("kind"))
    check_document(upload.data)  # a recording is refused before any work
    analyzer = request.app.state.analyzer
    found = await infer(
        request,
        principal,
        lambda: read_document(upload.data, analyzer, kind=kind, name=upload.name, tenant=principal.tenant_id),
    )
    return receipt_response(found.to_dict(), found.receipt, request, pictures={found.feature: len(found.pages)})
