"""The HTTP edge: FastAPI app, routers per area, auth, limits, metrics."""

from frugalsense.api.app import create_app

__all__ = ["create_app"]
