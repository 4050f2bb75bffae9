"""Errors as RFC 9457 problem details: the only place library errors become HTTP status codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from frugalsense import errors

__all__ = ["ApiError", "install_problem_handlers", "problem"]

log = logging.getLogger("frugalsense.api")

#: most specific first: the first class an error is an instance of decides its status
_STATUS: tuple[tuple[type[errors.FrugalsenseError], int], ...] = (
    (errors.InputTooLargeError, 413),
    (errors.UnsupportedFormatError, 415),
    (errors.EmptyInputError, 400),
    (errors.CorruptInputError, 422),
    (errors.InvalidRequestError, 422),
    (errors.BudgetExceededError, 422),
    (errors.InputError, 400),
    (errors.NotFoundError, 404),
    # nobody reads this answer: the client closed the connection (the code nginx logs for the same case)
    (errors.CancelledError, 499),
    (errors.ModelError, 503),
    (errors.ConfigurationError, 500),
    (errors.OverloadedError, 503),
)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    408: "Request timeout",
    429: "Too many requests",
    499: "Client closed request",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiError(Exception):
    """An error that belongs to the HTTP edge itself (authentication, rate limits, overload)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers or {}

    def response(self, instance: str) -> JSONResponse:
        """This error as a problem+json answer, its headers (Retry-After, say) on it."""
        answer = problem(self.status, self.code, self.detail, instance=instance)
        answer.headers.update(self.headers)
        return answer


def problem(status: int, code: str, detail: str, *, instance: str = "", **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://frugalsense.dev/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def status_for(exc: errors.FrugalsenseError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.FrugalsenseError)
    async def _domain(request: Request, exc: errors.FrugalsenseError) -> JSONResponse:
        response = problem(status_for(exc), exc.code, str(exc), instance=request.url.path)
        if isinstance(exc, errors.ServiceError) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.exception_handler(ApiError)
    async def _edge(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(i['loc'])}: {i['msg']}" for i in issues) or "invalid request"
        return problem(422, "invalid_request", detail, instance=request.url.path, errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = problem(exc.status_code, code, str(exc.detail), instance=request.url.path)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left while its body was being read (or its body timed out): nobody reads this answer.
        return problem(499, "cancelled", "the client closed the connection", instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, never the caller's fault: log it with its trace, answer without one.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "the server hit an unexpected error; it has been logged",
            instance=request.url.path,
        )
