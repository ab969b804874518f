"""MLflow's scoring protocol for ``/invocations``, as pure functions (no server inside).

Used by the generated BentoML service (:mod:`flowml.deploy.bento`) and by anything else that
answers MLflow scoring requests. See :mod:`flowml.serving.protocol`.
"""

from __future__ import annotations

from flowml.serving.protocol import (
    FORMAT_KEYS,
    SUPPORTED_CONTENT_TYPES,
    ScoringError,
    UnsupportedMediaType,
    error_response,
    invoke,
    model_predict,
    parse_content_type,
    parse_csv_input,
    parse_json_input,
    parse_request,
    serialize_predictions,
    to_jsonable,
)

__all__ = [
    "FORMAT_KEYS",
    "SUPPORTED_CONTENT_TYPES",
    "ScoringError",
    "UnsupportedMediaType",
    "error_response",
    "invoke",
    "model_predict",
    "parse_content_type",
    "parse_csv_input",
    "parse_json_input",
    "parse_request",
    "serialize_predictions",
    "to_jsonable",
]
