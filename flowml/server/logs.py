"""Logging of ``flowml server``: a request id on every record, text or JSON lines, uvicorn's config.

Key contracts:

* :data:`REQUEST_ID` is set by :class:`flowml.server.observe.ObserveMiddleware` for the duration of
  a request. Context variables follow the request into FastAPI's thread pool, so a record emitted
  by a sync route, a dependency or the store while handling it carries the id.
* :class:`RequestIdFilter` sits on the *handler* (not on a logger), so every record that reaches
  the server's stderr handler gets ``record.request_id`` (``"-"`` outside a request).
* :func:`log_config` is the ``logging.config.dictConfig`` dict handed to uvicorn (``log_config=``):
  uvicorn applies it in the server process and again in every ``--workers`` child.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "JsonFormatter",
    "RequestIdFilter",
    "log_config",
    "request_id_from_header",
]

#: The id of the request being handled in this context (``None`` outside a request).
REQUEST_ID: ContextVar[str | None] = ContextVar("flowml_request_id", default=None)

#: One INFO record per request: method, route template, status, duration.
ACCESS_LOGGER = "flowml.server.access"

# An incoming X-Request-ID is reused only when it cannot forge or bloat a log line.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:=+/@-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is emitted.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


def request_id_from_header(value: bytes | None) -> str:
    """The caller's ``X-Request-ID`` when it is short and plain, else a fresh random id."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value.decode("ascii")
    return os.urandom(16).hex()  # as unique as a uuid4's hex, a quarter of the cost


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``"-"`` outside a request); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``request_id`` and any
    ``extra=`` fields (the access log's ``method``, ``route``, ``status``, ``duration_ms``...)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id and request_id != "-":
            out["request_id"] = request_id
        attrs = record.__dict__
        for key in attrs.keys() - _RECORD_ATTRS:  # the ``extra=`` fields
            if not key.startswith("_"):
                out[key] = attrs[key]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """The ``dictConfig`` for the server process: one stderr handler on the root logger.

    uvicorn's loggers propagate to it (so its start-up and error lines are JSON too when ``json``
    is chosen); uvicorn's own access logger is left off because flowml writes its own access line
    (with the route template and the request id) on :data:`ACCESS_LOGGER`.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    level = level.upper()
    # Factories by dotted name: a --workers child unpickles this dict before it can answer uvicorn's
    # health check, and must not import anything heavy to do so.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "flowml.server.logs.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "flowml.server.logs.JsonFormatter"},
            "text": {"format": TEXT_FORMAT},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": log_format,
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }
