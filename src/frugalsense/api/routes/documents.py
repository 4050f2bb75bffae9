"""POST /v1/documents/fields: a receipt's or invoice's fields, page by page (`fields.document.read_document`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from frugalsense.api import schemas
from frugalsense.api.auth import Principal
from frugalsense.api.routes.analyze import receipt_response
from frugalsense.api.uploads import read_upload, upload_body
from frugalsense.api.work import admitted, infer
from frugalsense.fields.document import check_document, read_document

__all__ = ["router"]

router = APIRouter(tags=["documents"])


@router.post(
    "/documents/fields",
    summary="Read a receipt's or invoice's fields: vendor, address, date, total, tax, line items",
    response_model=schemas.DocumentFields,
    openapi_extra=upload_body("file"),
)
async def document_fields(request: Request, principal: Principal = Depends(admitted)) -> JSONResponse:
    """Each page's fields with a confidence and the OCR lines they came from; a field the model is unsure of
    is left out and listed in ``not_found`` (abstained, or absent from the page)."""
    upload, _ = await read_upload(request)
    check_document(upload.data)  # a recording is refused before any work
    analyzer = request.app.state.analyzer
    found = await infer(
        request,
        principal,
        lambda: read_document(upload.data, analyzer, name=upload.name, tenant=principal.tenant_id),
    )
    return receipt_response(found.to_dict(), found.receipt, request, pictures={"fields": len(found.pages)})
