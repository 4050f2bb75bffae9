"""The FastAPI application: one router per area, problem-details errors, limits and metrics.

```python
from frugalsense.api import create_app
from frugalsense.settings import Settings
app = create_app(Settings(data_dir="/tmp/fs-demo"))
```
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import compile_path

from frugalsense import __version__
from frugalsense.api.limits import AuthFailures, BodySizeLimit, RateLimiter, TurnAway, WorkPools
from frugalsense.api.metrics import Metrics, MetricsMiddleware
from frugalsense.api.problems import install_problem_handlers
from frugalsense.api.schemas.problems import PROBLEM_RESPONSES
from frugalsense.budget import MemoryBudget
from frugalsense.settings import Settings

__all__ = ["create_app", "upload_paths"]

DESCRIPTION = """
Self-hosted vision, document and speech AI. Every response carries a cost receipt: the CPU-seconds the request
used and what they cost (`receipt` in the body, a summary in the `X-Cost-Receipt` header).

Authenticate with `Authorization: Bearer <key>`; make a key with `frugalsense keys create`.
Errors are RFC 9457 problem details (`application/problem+json`).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the store opens and the models are set up when it starts (lifespan)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from frugalsense.analyze import Analyzer
        from frugalsense.faces.gallery import FaceGallery
        from frugalsense.store import open_store

        store = open_store(settings)
        analyzer = Analyzer(settings)
        if settings.batch_window_ms > 0:
            from frugalsense.profiles import load_profile

            pipeline = analyzer.pipeline
            # The text gate is the one the text profile names (its ladder's first rung).
            gate = str(load_profile("text", settings.profile_dir).params.get("gate", "text-gate"))
            for name in (pipeline.face_embedder, pipeline.labeler, pipeline.moderator, gate):
                analyzer.zoo.get(name).enable_batching(settings.batch_window_ms, settings.max_batch)
        app.state.settings = settings
        app.state.store = store
        app.state.analyzer = analyzer
        app.state.gallery = FaceGallery(store, analyzer)
        app.state.memory = MemoryBudget(settings.memory_budget_bytes)
        app.state.pools = WorkPools(settings, app.state.memory)
        app.state.rate_limiter = RateLimiter(settings.rate_per_key, settings.rate_burst)
        app.state.auth_failures = AuthFailures(settings.auth_failures_per_minute)
        # API keys are checked on a connection of their own: a long write on the main one never holds them up.
        app.state.key_store = open_store(settings)
        app.state.metrics = metrics
        try:
            yield
        finally:
            # Receipts noted after their responses were sent reach the usage ledger before the store closes.
            usage = getattr(app.state, "usage", None)
            if usage is not None:
                await usage.flush()
            # The search service exists only if a search route ran: its vector snapshots are saved at most once a
            # minute while indexing, so save the rest now and the next start reads them instead of rebuilding.
            search = getattr(app.state, "search", None)
            try:
                if search is not None:
                    search.close()
            finally:
                store.close()
                app.state.key_store.close()

    app = FastAPI(
        title="frugalsense",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    install_problem_handlers(app)
    from frugalsense.api.routes import (
        analyze,
        console,
        documents,
        faces,
        gallery,
        health,
        keys,
        search,
        tenant,
        usage,
    )
    from frugalsense.api.routes.pictures import router as pictures

    app.include_router(health.router)
    app.include_router(console.router)  # the web console at / (frugalsense.console)
    app.include_router(pictures)  # the console's item thumbnails
    # The tenant's erasure comes last, so it is also the last operation of the OpenAPI document.
    for module in (analyze, documents, faces, gallery, keys, search, usage, tenant):
        app.include_router(module.router, prefix="/v1", responses=PROBLEM_RESPONSES)
    # Routes that take files declare a multipart body in the OpenAPI document: only they get the upload limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes, upload_paths=upload_paths(app))
    app.add_middleware(TurnAway)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def upload_paths(app: FastAPI) -> list[re.Pattern[str]]:
    """Patterns of the paths whose operations take a file (a multipart body in the OpenAPI document)."""
    patterns = []
    for path, operations in app.openapi().get("paths", {}).items():
        bodies = [
            op.get("requestBody", {}).get("content", {}) for op in operations.values() if isinstance(op, dict)
        ]
        if any("multipart/form-data" in body for body in bodies):
            patterns.append(compile_path(path)[0])
    return patterns
