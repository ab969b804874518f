"""flowml's error tree.

Every error a user sees is a :class:`FlowmlError` carrying one of MLflow's error codes, so the
same error crosses the REST boundary unchanged: the server turns it into
``{"error_code", "message"}`` with the HTTP status from :data:`ERROR_CODE_TO_HTTP_STATUS`, and the
REST client turns that JSON back into the same class.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERROR_CODE_TO_HTTP_STATUS",
    "FlowmlError",
    "InvalidParameterValue",
    "InvalidState",
    "MlflowException",
    "PermissionDenied",
    "ResourceAlreadyExists",
    "ResourceDoesNotExist",
    "TemporarilyUnavailable",
    "Unauthenticated",
    "error_from_code",
    "http_status_for",
]

#: MLflow's ``ERROR_CODE_TO_HTTP_STATUS`` table (``mlflow/exceptions.py``); codes not listed map to 500.
ERROR_CODE_TO_HTTP_STATUS: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "RESOURCE_CONFLICT": 409,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def http_status_for(error_code: str) -> int:
    """The HTTP status MLflow answers with for ``error_code`` (500 when unknown)."""
    return ERROR_CODE_TO_HTTP_STATUS.get(error_code, 500)


class FlowmlError(Exception):
    """Base class of every flowml error; ``error_code`` is an MLflow ``ErrorCode`` name."""

    default_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.details = details

    @property
    def http_status(self) -> int:
        return http_status_for(self.error_code)

    def to_json(self) -> dict[str, Any]:
        """The MLflow error body: ``{"error_code": ..., "message": ...}`` plus any details."""
        return {"error_code": self.error_code, "message": self.message, **self.details}


#: MLflow's name for the base error (``except mlflow.exceptions.MlflowException`` works unchanged).
MlflowException = FlowmlError


class InvalidParameterValue(FlowmlError):
    default_code = "INVALID_PARAMETER_VALUE"


class ResourceDoesNotExist(FlowmlError):
    default_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceAlreadyExists(FlowmlError):
    default_code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(FlowmlError):
    default_code = "INVALID_STATE"


class PermissionDenied(FlowmlError):
    default_code = "PERMISSION_DENIED"


class Unauthenticated(FlowmlError):
    default_code = "UNAUTHENTICATED"


class TemporarilyUnavailable(FlowmlError):
    default_code = "TEMPORARILY_UNAVAILABLE"


_CLASS_BY_CODE: dict[str, type[FlowmlError]] = {
    cls.default_code: cls
    for cls in (
        InvalidParameterValue,
        ResourceDoesNotExist,
        ResourceAlreadyExists,
        InvalidState,
        PermissionDenied,
        Unauthenticated,
        TemporarilyUnavailable,
    )
}


def error_from_code(error_code: str, message: str, **details: Any) -> FlowmlError:
    """Rebuild the most specific :class:`FlowmlError` for an error code (used by the REST client)."""
    cls = _CLASS_BY_CODE.get(error_code, FlowmlError)
    return cls(message, error_code=error_code, **details)
