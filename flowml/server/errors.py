"""One place that turns errors into MLflow's error JSON and status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowml.exceptions import FlowmlError, TemporarilyUnavailable

__all__ = ["error_payload", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)


def error_response(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse(_payload(code, message), status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        if err.get("type") == "missing":
            parts.append(f"Missing value for required parameter '{loc}'.")
        else:
            parts.append(f"Invalid value for parameter '{loc}': {err.get('msg')}")
    return " ".join(parts) or "Invalid request"


def error_payload(exc: Exception) -> tuple[int, dict[str, str]]:
    """The status and MLflow error JSON for an error a route raised (not FastAPI's own errors)."""
    if isinstance(exc, FlowmlError):
        return exc.http_status, exc.to_json()
    if isinstance(exc, OverflowError):
        # e.g. an id or timestamp beyond 64 bits reaching the database driver: bad input, not a crash
        return 400, _payload("INVALID_PARAMETER_VALUE", f"A numeric value is out of range: {exc}")
    if isinstance(exc, DataError):
        return 400, _payload("INVALID_PARAMETER_VALUE", f"Invalid value for the database: {exc.orig}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # e.g. a database restart: the pool reconnects, retry
        logger.warning("database connection lost: %s", exc.orig)
        lost = TemporarilyUnavailable("The database connection was lost; retry the request.")
        return lost.http_status, lost.to_json()
    logger.error("unhandled error", exc_info=exc)
    return 500, _payload("INTERNAL_ERROR", f"Internal error: {type(exc).__name__}")


def _payload(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "message": message}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("INVALID_PARAMETER_VALUE", _describe_validation(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 415: "BAD_REQUEST"}.get(
            exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        )
        return error_response(code, str(exc.detail), exc.status_code)

    async def _route_error(_request: Request, exc: Exception) -> JSONResponse:
        status, payload = error_payload(exc)
        return JSONResponse(payload, status_code=status)

    # The specific classes are handled inside the app (ExceptionMiddleware); ``Exception`` only by
    # Starlette's outermost ServerErrorMiddleware, which re-raises after answering (a logged crash).
    for kind in (FlowmlError, OverflowError, DataError, DBAPIError, Exception):
        app.add_exception_handler(kind, _route_error)
