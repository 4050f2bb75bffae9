"""The frugalsense error tree.

Library code raises these; only the CLI turns them into exit codes and only the HTTP layer into status codes.
Every message says what went wrong and what to do about it.

    FrugalsenseError
    ├── InputError                  the caller's input cannot be used (HTTP 4xx, CLI exit 2)
    │   ├── EmptyInputError         zero bytes
    │   ├── UnsupportedFormatError  not a format we decode (or a text file named .jpg)
    │   ├── CorruptInputError       truncated or damaged file
    │   ├── InputTooLargeError      over the byte, pixel, page or duration limit
    │   └── InvalidRequestError     a bad option (unknown feature, bad threshold, ...)
    ├── NotFoundError               a stored object (person, face, collection) does not exist
    ├── ModelError                  a model cannot be used (HTTP 503, CLI exit 3)
    │   ├── ModelUnavailableError   its package is not installed or its weights are missing
    │   └── ModelConversionError    converting shipped weights to ONNX failed its reference check
    └── ConfigurationError          a setting or profile is invalid (CLI exit 3)
"""

from __future__ import annotations

__all__ = [
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
