"""The generic BentoML service for one flowml pyfunc model.

:func:`flowml.deploy.bento.build_bento` copies this module into a Bento's build context as
``flowml_bento_service.py`` and writes ``flowml_service.json`` next to it (model tag, service name,
signature, labels, batching). It is a real module so it is linted, type-checked and tested like the rest
of flowml; imported from the package (without a config file next to it) it falls back to the model tag
in ``FLOWML_BENTO_MODEL``. ``flowml models serve`` writes ``model_path`` instead of ``model_tag``: the
service then loads the resolved model directory in place (no BentoML model store, a faster start).

Endpoints:

- ``POST /invocations`` — MLflow's scoring protocol (``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``, optional ``params``; JSON or CSV) via :mod:`flowml.serving`; concurrent
  requests are micro-batched (:mod:`flowml.serving.batching`, ``FLOWML_SERVING_*`` settings; batch sizes
  in ``/metrics`` as ``flowml_invocations_batch_requests``);
- ``POST /predict`` — typed from the model's signature: ``{"records": [{col: value, ...}, ...]}``
  validated by a pydantic model built from the column specs (without a signature, any JSON records/rows);
- ``GET /ping``, ``GET /health`` (MLflow's: 200 once the model is loaded), ``GET /version``;
- BentoML's own ``/livez``, ``/readyz``, ``/healthz``, ``/metrics``, ``/docs.json``.

At start-up the model is loaded with :func:`flowml.pyfunc.load_model` from the BentoML model's
``mlmodel/`` directory (integrity-checked against its manifest) and ``smoke_test()`` is run on the saved
input example, so a worker that cannot score its own example never becomes ready.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import Any

import anyio.to_thread
import bentoml
import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONFIG_FILE = "flowml_service.json"
MODEL_SUBDIR = "mlmodel"
#: /invocations bodies up to this size are parsed on the event loop (no thread hand-off: small requests
#: are faster) and micro-batched; larger ones are scored alone in a worker thread so /ping stays responsive.
INLINE_MAX_BYTES = 16 * 1024

_log = logging.getLogger("flowml.serving")


def _load_config() -> dict[str, Any]:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), CONFIG_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            config: dict[str, Any] = json.load(fh)
            return config
    return {"model_tag": os.environ.get("FLOWML_BENTO_MODEL", "flowml-model:latest")}


CONFIG = _load_config()
# One compute thread per worker: for small requests OpenMP thread hand-offs (xgboost, sklearn forests)
# cost more than they save, and several workers/requests already use the cores. Set before the model
# libraries are imported; an explicit OMP_NUM_THREADS in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", str(CONFIG.get("threads", 1)))
SERVICE_NAME: str = CONFIG.get("service_name", "flowml_model")
BATCHING: dict[str, Any] = CONFIG.get("batching") or {}

_PY_TYPES: dict[str, Any] = {
    "double": float,
    "float": float,
    "long": int,
    "integer": int,
    "boolean": bool,
    "string": str,
    "binary": str,
    "datetime": str,
}


def record_model(signature: dict[str, Any] | None) -> Any:
    """The pydantic model of one input row from a signature dict, or ``Any`` when there is none to use."""
    inputs = (signature or {}).get("inputs")
    if not inputs:
        return Any
    specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    if not specs or any(s.get("type") == "tensor" or not s.get("name") for s in specs):
        return Any
    fields: dict[str, Any] = {}
    for spec in specs:
        py = _PY_TYPES.get(str(spec.get("type")), Any)
        if spec.get("required", True):
            fields[str(spec["name"])] = (py, ...)
        else:
            fields[str(spec["name"])] = (py | None, None)
    return pydantic.create_model("Record", **fields)


Record = record_model(CONFIG.get("signature"))


def _rows_to_input(rows: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    if rows and all(isinstance(r, pydantic.BaseModel) for r in rows):
        return pd.DataFrame.from_records([r.model_dump() for r in rows])
    if rows and all(isinstance(r, dict) for r in rows):
        return pd.DataFrame.from_records(rows)
    return np.asarray(rows)


async def _invocations(request: Request) -> Response:
    body = await request.body()
    status, payload = await _service().score(body, request.headers.get("content-type"))
    return Response(payload, status_code=status, media_type="application/json")


async def _ping(request: Request) -> Response:
    _service()  # raises (→ 500) until the model is loaded
    return Response(b"\n", media_type="application/json")


async def _version(request: Request) -> Response:
    import flowml

    info = {
        "flowml_version": getattr(flowml, "__version__", None),
        "bentoml_version": bentoml.__version__,
        "model_tag": CONFIG.get("model_tag"),
        "labels": CONFIG.get("labels", {}),
    }
    return Response(json.dumps(info), media_type="application/json")


app = Starlette(
    routes=[
        Route("/invocations", _invocations, methods=["POST"]),
        Route("/ping", _ping, methods=["GET"]),
        Route("/health", _ping, methods=["GET"]),
        Route("/version", _version, methods=["GET"]),
    ]
)


@functools.cache
def _batch_histogram() -> Any:
    # created on first use, in the worker, after BentoML has set up prometheus' multiprocess mode
    import prometheus_client

    return prometheus_client.Histogram(
        "flowml_invocations_batch_requests",
        "Requests per model predict() on /invocations (1 = not batched)",
        buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    )


def _observe_batch(requests: int, rows: int) -> None:
    _batch_histogram().observe(requests)


def _tracing_config() -> dict[str, Any]:
    """BentoML's tracing config: /invocations is left out unless FLOWML_SERVING_TRACE_INVOCATIONS=true.

    BentoML samples no traces unless tracing is configured (``sample_rate`` 0), yet its OpenTelemetry
    middleware still builds a (non-recording) span per request, about a third of a batched request's CPU.
    """
    from flowml.serving.batching import ServingSettings

    if ServingSettings().trace_invocations:
        return {}
    return {"tracing": {"excluded_urls": ["/invocations"]}}


def _service() -> FlowmlModelService:
    service: FlowmlModelService = bentoml.get_current_service()
    return service


@bentoml.asgi_app(app, path="/")
@bentoml.service(
    name=SERVICE_NAME,
    workers=int(CONFIG.get("workers", 1)),
    traffic={"timeout": int(CONFIG.get("timeout", 60))},
    logging={"access": {"enabled": bool(CONFIG.get("access_log", False))}},
    **_tracing_config(),
)
class FlowmlModelService:
    """One pyfunc model behind MLflow's /invocations and a typed /predict."""

    if not CONFIG.get("model_path"):  # a Bento: the model lives in the BentoML model store
        bento_model = bentoml.models.BentoModel(CONFIG["model_tag"])

    def __init__(self) -> None:
        from flowml.pyfunc import load_model
        from flowml.serving.batching import InvocationBatcher, ServingSettings

        started = time.perf_counter()
        if CONFIG.get("model_path"):  # `flowml models serve`: the resolved model directory, in place
            path = str(CONFIG["model_path"])
        else:
            path = os.path.join(self.bento_model.path, MODEL_SUBDIR)
        self.model = load_model(path)
        self.model.smoke_test()
        self.batcher = InvocationBatcher.from_settings(self.model, ServingSettings(), _observe_batch)
        _log.info("flowml model %s loaded and smoke-tested in %.2fs", path, time.perf_counter() - started)

    async def score(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """An MLflow /invocations request → (status, JSON body)."""
        from flowml.serving import invoke

        if len(body) <= INLINE_MAX_BYTES:  # parsed on the event loop; predicted in micro-batches
            return await self.batcher.score(body, content_type)
        return await anyio.to_thread.run_sync(invoke, self.model, body, content_type)

    @bentoml.api(  # type: ignore[untyped-decorator]
        route="/predict",
        batchable=bool(BATCHING.get("enabled", False)),
        max_batch_size=int(BATCHING.get("max_batch_size", 64)),
        max_latency_ms=int(BATCHING.get("max_latency_ms", 20)),
    )
    def predict(self, records: list[Record]) -> list[Any]:  # type: ignore[valid-type]
        """Predict on a list of rows typed from the model signature; answers one prediction per row."""
        from flowml.serving import to_jsonable

        result = to_jsonable(self.model.predict(_rows_to_input(records)))
        return result if isinstance(result, list) else [result]
