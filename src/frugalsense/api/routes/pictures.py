"""Pictures the console shows of what a tenant indexed: an item's thumbnail (`frugalsense.search.thumbnails`).

Like face crops, served only to a signed-in user (or an API key) of the item's tenant: the file is looked for in
that tenant's own folder, so any other tenant gets 404, as for every other id it does not own. Not in the OpenAPI
document: the page needs it, API clients have ``GET /v1/items/{id}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from frugalsense.api.auth import Principal, authenticate
from frugalsense.api.work import metadata
from frugalsense.search.thumbnails import Thumbnails

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/console/api/items/{item_id}/thumbnail")
async def thumbnail(item_id: str, request: Request, p: Principal = Depends(authenticate)) -> Response:
    """An indexed picture's thumbnail (JPEG); 404 for an item of another tenant, a recording, or an item indexed
    before thumbnails were kept."""
    thumbnails = Thumbnails(request.app.state.settings.data_dir)
    data = await metadata(request, lambda: thumbnails.read(p.tenant_id, item_id))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
