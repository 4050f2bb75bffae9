"""The frugalsense error tree.

Library code raises these; only the CLI turns them into exit codes and only the HTTP layer into status codes.
Every message says what went wrong and what to do about it.

    FrugalsenseError
    ├── InputError                  the caller's input cannot be used (HTTP 4xx, CLI exit 2)
    │   ├── EmptyInputError         zero bytes
    │   ├── UnsupportedFormatError  not a format we decode (or a text file named .jpg)
    │   ├── CorruptInputError       truncated or damaged file
    │   ├── InputTooLargeError      over the byte, pixel, page or duration limit
    │   ├── BudgetExceededError     the request spent its CPU-seconds budget before it was done (HTTP 422)
    │   └── InvalidRequestError     a bad option (unknown feature, bad threshold, ...)
    ├── CancelledError              the caller went away; the work stopped (nobody reads the answer)
    ├── NotFoundError               a stored object (person, face, collection) does not exist
    ├── ModelError                  a model cannot be used (HTTP 503, CLI exit 3)
    │   ├── ModelUnavailableError   its package is not installed or its weights are missing
    │   └── ModelConversionError    converting shipped weights to ONNX failed its reference check
    ├── ConfigurationError          a setting or profile is invalid (CLI exit 3)
    └── ServiceError                the HTTP client's view of faults at the service's edge
        ├── AuthenticationError     no key, an unknown or revoked key, or not an admin key (401, 403)
        ├── RateLimitedError        over the key's request rate (429)
        └── OverloadedError         the server is busy (workers, its memory budget) or not ready (503)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "CancelledError",
    "ConfigurationError",
    "CorruptInputError",
    "EmptyInputError",
    "FrugalsenseError",
    "InputError",
    "InputTooLargeError",
    "InvalidRequestError",
    "ModelConversionError",
    "ModelError",
    "ModelUnavailableError",
    "NotFoundError",
    "OverloadedError",
    "RateLimitedError",
    "ServiceError",
    "UnsupportedFormatError",
]


class FrugalsenseError(Exception):
    """Base of every error frugalsense raises on purpose."""

    #: short machine-readable code, used by the HTTP problem details and the JSON CLI output
    code = "frugalsense_error"


class InputError(FrugalsenseError):
    """The input cannot be used as given."""

    code = "bad_input"


class EmptyInputError(InputError):
    code = "empty_input"


class UnsupportedFormatError(InputError):
    code = "unsupported_format"


class CorruptInputError(InputError):
    code = "corrupt_input"


class InputTooLargeError(InputError):
    code = "input_too_large"


class InvalidRequestError(InputError):
    code = "invalid_request"


class BudgetExceededError(InputError):
    """The request's work would spend more than its budget (CPU-seconds); raise the budget or send less."""

    code = "budget_exceeded"


class CancelledError(FrugalsenseError):
    """The work was stopped because nobody waits for its answer any more (the client disconnected)."""

    code = "cancelled"


class NotFoundError(FrugalsenseError):
    code = "not_found"


class ModelError(FrugalsenseError):
    code = "model_error"


class ModelUnavailableError(ModelError):
    code = "model_unavailable"


class ModelConversionError(ModelError):
    code = "model_conversion_failed"


class ConfigurationError(FrugalsenseError):
    code = "configuration_error"


class ServiceError(FrugalsenseError):
    code = "service_error"

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthenticationError(ServiceError):
    code = "unauthorized"


class RateLimitedError(ServiceError):
    code = "rate_limited"


class OverloadedError(ServiceError):
    code = "overloaded"


def error_for_code(code: str) -> type[FrugalsenseError]:
    """The error class the service meant by a problem's `code` (used by the HTTP client)."""
    stack: list[type[FrugalsenseError]] = [FrugalsenseError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls
        stack.extend(cls.__subclasses__())
    return {"forbidden": AuthenticationError, "not_ready": OverloadedError}.get(code, FrugalsenseError)
