"""The error body every route answers with: problem details (RFC 9457), ``application/problem+json``.

>>> Problem.model_validate({"type": "https://frugalsense.dev/problems/not_found", "title": "Not found",
...     "status": 404, "detail": "no person per_1 in your tenant", "code": "not_found"}).code
'not_found'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["PROBLEM_RESPONSES", "Problem", "ValidationIssue"]


class ValidationIssue(BaseModel):
    """One field a request got wrong (422 only)."""

    loc: list[str]
    msg: str
    type: str


class Problem(BaseModel):
    """What went wrong, for a person (``detail``) and for a program (``code``, stable across versions). Problem
    details may carry more members than these, so unknown fields are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[ValidationIssue] | None = None


_WHY = {
    400: "the request cannot be read (a bad upload, a malformed body)",
    401: "no API key or session, or one that is not valid",
    403: "the key's role may not do this (admin routes)",
    404: "no such id in your tenant",
    409: "the request conflicts with what is stored",
    413: "the body, the picture or the audio is over a limit (see README: Limits and budgets)",
    422: "the request is well formed but not acceptable (a field, a budget, no face found)",
    429: "too many requests for this key or address; retry after Retry-After seconds",
    503: "the server is at its memory or connection budget; retry after Retry-After seconds",
}

_REF = {"$ref": "#/components/schemas/Problem"}

#: documented on every /v1 route: the error statuses and their body
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": why, "content": {"application/problem+json": {"schema": _REF}}}
    for status, why in _WHY.items()
}
