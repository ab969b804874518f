"""One place that turns errors into MLflow's error JSON and status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowml.exceptions import FlowmlError, TemporarilyUnavailable

__all__ = ["error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)


def error_response(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        if err.get("type") == "missing":
            parts.append(f"Missing value for required parameter '{loc}'.")
        else:
            parts.append(f"Invalid value for parameter '{loc}': {err.get('msg')}")
    return " ".join(parts) or "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlowmlError)
    async def _flowml_error(_request: Request, exc: FlowmlError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("INVALID_PARAMETER_VALUE", _describe_validation(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 415: "BAD_REQUEST"}.get(
            exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        )
        return error_response(code, str(exc.detail), exc.status_code)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        # e.g. an id or timestamp beyond 64 bits reaching the database driver: bad input, not a crash
        return error_response("INVALID_PARAMETER_VALUE", f"A numeric value is out of range: {exc}", 400)

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: DataError) -> JSONResponse:
        return error_response("INVALID_PARAMETER_VALUE", f"Invalid value for the database: {exc.orig}", 400)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:  # e.g. a database restart: the pool reconnects, retry
            logger.warning("database connection lost: %s", exc.orig)
            lost = TemporarilyUnavailable("The database connection was lost; retry the request.")
            return JSONResponse(lost.to_json(), status_code=lost.http_status)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response("INTERNAL_ERROR", f"Internal error: {type(exc).__name__}", 500)
