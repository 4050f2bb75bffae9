"""Liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store answers; lists the models loaded so far (they load on first use)")
async def readyz(request: Request) -> Any:
    from frugalsense.api.problems import problem

    try:
        store = request.app.state.store
        await request.app.state.pools.metadata(store.data_version)
    except Exception as exc:  # the store being down is exactly what readiness reports
        return problem(503, "not_ready", f"the store does not answer: {exc}")
    return {"status": "ready", "models_loaded": request.app.state.analyzer.zoo.loaded()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
