"""What every response model shares: unknown fields are refused, so the schema lists every field a body has."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Body", "Point"]


class Body(BaseModel):
    """A response body or a part of one. ``additionalProperties: false`` in the schema: a field the server
    sends but the schema does not name fails the conformance tests instead of reaching clients untyped."""

    model_config = ConfigDict(extra="forbid")


#: an (x, y) position in pixels of the decoded picture, one decimal
Point = Annotated[list[float], Field(min_length=2, max_length=2)]
