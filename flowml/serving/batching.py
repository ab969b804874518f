"""Micro-batching for ``/invocations``: concurrent compatible requests share one ``predict()``.

BentoML batches only its own ``@bentoml.api(batchable=True)`` methods, behind its HTTP input
validation; ``/invocations`` is MLflow's protocol on a mounted ASGI route, so it is batched here.

How a request goes (:meth:`InvocationBatcher.score`):

1. It is parsed (:func:`~flowml.serving.protocol.parse_request`; JSON floats for a signature of
   ``double`` columns straight into an array, :func:`~flowml.serving.protocol.parse_double_rows`) and
   checked against the model's signature (:func:`~flowml.serving.protocol.prepare_input`) on its own:
   bad input is answered at once and never joins a batch.
2. Requests with ``params``, an input that is not a 2-D-like frame/array with a default index, or a
   model that is not batched (:func:`batching_enabled`) are predicted on their own, as without batching.
3. The rest are queued. Nothing waits for a window: when no predict is running, the queue is dispatched
   on the next event-loop turn — one request alone is predicted right there on the event loop while
   lone predicts are fast (``inline_predict_ms``: no thread hand-off, so one client sees no added
   latency), else in the single predict thread; two or more always go to the predict thread.
   While that predict runs, new requests are parsed on the event loop and queue up; when it finishes,
   the whole queue (up to ``max_batch_size`` rows) is the next batch. The wait of a request is bounded
   by the predict in flight.
4. A batch is grouped by input layout (columns + dtypes, or array dtype + row shape); each group is
   concatenated, predicted once and the output split back by row counts, in order. If the batched
   predict raises, every request of the group is predicted on its own, so each gets its own answer or
   error. If the output is not row-aligned (its length is not the number of input rows), the group
   falls back the same way and batching is switched off for the model.

Batching assumes a prediction for a row does not depend on the other rows. That holds for the sklearn
and xgboost flavors, which are batched by default (``FLOWML_SERVING_INVOCATIONS_BATCHING=auto``); a
custom ``PythonModel`` is batched only with ``FLOWML_SERVING_INVOCATIONS_BATCHING=on``; ``off`` turns
it off for every model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from flowml.serving.protocol import (
    JSON,
    _input_schema,
    double_columns,
    error_response,
    model_predict,
    parse_content_type,
    parse_double_rows,
    parse_request,
    prepare_input,
    serialize_predictions,
)

__all__ = ["ROW_WISE_LOADERS", "InvocationBatcher", "ServingSettings", "batch_key", "batching_enabled"]

_log = logging.getLogger(__name__)

#: pyfunc loader modules whose ``predict`` is row-wise (one output row per input row, independent rows)
ROW_WISE_LOADERS = frozenset(
    {
        "mlflow.sklearn",
        "mlflow.xgboost",
        "flowml.models.flavors.sklearn",
        "flowml.models.flavors.xgboost",
    }
)


class ServingSettings(BaseSettings):
    """``FLOWML_SERVING_*``: how the served model batches ``/invocations``."""

    model_config = SettingsConfigDict(env_prefix="FLOWML_SERVING_", extra="ignore")

    #: ``auto``: batch the row-wise flavors (sklearn, xgboost); ``on``: any model (custom PythonModels
    #: must then be row-wise); ``off``: never.
    invocations_batching: Literal["auto", "on", "off"] = "auto"
    #: at most this many rows per batched predict (a larger single request is predicted alone)
    max_batch_size: int = 128
    #: a lone request is predicted on the event loop (no thread hand-off) while lone predicts take less
    #: than this many milliseconds (a moving average); slower models always predict in the thread, so
    #: requests keep arriving and queueing meanwhile. 0: always in the thread.
    inline_predict_ms: float = 5.0
    #: keep /invocations in BentoML's OpenTelemetry tracing. Off by default: BentoML samples no traces
    #: unless tracing is configured, but its middleware still costs ~30% of a batched request's CPU.
    #: Set true when BentoML tracing is turned on (``tracing.sample_rate`` > 0).
    trace_invocations: bool = False


def batching_enabled(model: Any, mode: str) -> bool:
    """Whether ``/invocations`` requests for ``model`` may be batched under ``mode`` (auto/on/off)."""
    if mode == "off" or not hasattr(model, "predict_prepared"):
        return False
    return mode == "on" or getattr(model, "loader_module", None) in ROW_WISE_LOADERS


def batch_key(data: Any) -> Hashable | None:
    """The layout key of a batchable model input (equal keys concatenate losslessly), or None.

    Batchable: a non-empty DataFrame with a default index and unique string column names (key: columns
    and dtypes), or a non-empty numeric/boolean ndarray of at least one dimension (key: dtype and the
    shape of a row).
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        index = data.index
        if (
            len(data) == 0
            or not isinstance(index, pd.RangeIndex)
            or index.start != 0
            or index.step != 1
            or not data.columns.is_unique
            or not all(isinstance(c, str) for c in data.columns)
        ):
            return None
        return ("frame", tuple(data.columns), tuple(data.dtypes))
    if isinstance(data, np.ndarray) and data.ndim >= 1 and len(data) and data.dtype.kind in "biuf":
        return ("array", data.dtype, data.shape[1:])
    return None


def _model_input(key: Hashable, parts: Sequence[Any]) -> Any:
    """The one model input for the inputs ``parts`` of layout ``key``, concatenated in order."""
    import numpy as np
    import pandas as pd

    if isinstance(key, tuple) and key[0] == "rows":  # float64 rows of the signature's double columns
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return pd.DataFrame(rows, columns=list(key[1]))
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    dtypes = set(first.dtypes)
    if len(dtypes) == 1 and isinstance(next(iter(dtypes)), np.dtype):  # one numpy block: skip pd.concat
        return pd.DataFrame(np.concatenate([p.to_numpy() for p in parts]), columns=first.columns)
    return pd.concat(parts, ignore_index=True)


def _split(output: Any, sizes: Sequence[int]) -> list[Any] | None:
    """``output`` cut into consecutive pieces of ``sizes`` rows, or None when it is not row-aligned."""
    import numpy as np
    import pandas as pd

    total = sum(sizes)
    if isinstance(output, np.ndarray) and output.ndim >= 1 and output.shape[0] == total:
        take: Callable[[int, int], Any] = lambda a, b: output[a:b]  # noqa: E731
    elif isinstance(output, pd.DataFrame | pd.Series) and len(output) == total:
        take = lambda a, b: output.iloc[a:b]  # noqa: E731
    elif isinstance(output, list) and len(output) == total:
        take = lambda a, b: output[a:b]  # noqa: E731
    else:
        return None
    pieces, start = [], 0
    for size in sizes:
        pieces.append(take(start, start + size))
        start += size
    return pieces


@dataclass
class _Item:
    data: Any
    key: Hashable
    rows: int
    future: asyncio.Future[Any]


@dataclass
class _Outcome:
    ok: bool
    value: Any  # the predictions, or the exception


@dataclass
class _Group:
    items: list[_Item] = field(default_factory=list)


class InvocationBatcher:
    """Scores ``/invocations`` bodies for one model, batching concurrent compatible requests.

    ``on_batch(requests, rows)`` is called (on the event loop) for every predict of queued requests;
    the generated service feeds it to a Prometheus histogram. Use from one event loop.
    """

    def __init__(
        self,
        model: Any,
        *,
        enabled: bool = True,
        max_batch_size: int = 128,
        inline_predict_ms: float = 5.0,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.model = model
        self.enabled = enabled
        self.max_batch_size = max(1, max_batch_size)
        self.on_batch = on_batch
        self._schema = _input_schema(model)
        self._columns = double_columns(self._schema) if hasattr(model, "predict_prepared") else None
        self._queue: list[_Item] = []
        self._busy = False  # a batch is being predicted in the thread
        self._flush_scheduled = False
        self.inline_predict_ms = inline_predict_ms
        self._lone_ms = 0.0  # moving average of lone predict times
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(
        cls, model: Any, settings: ServingSettings, on_batch: Callable[[int, int], None] | None = None
    ) -> InvocationBatcher:
        enabled = batching_enabled(model, settings.invocations_batching)
        return cls(
            model,
            enabled=enabled,
            max_batch_size=settings.max_batch_size,
            inline_predict_ms=settings.inline_predict_ms,
            on_batch=on_batch,
        )

    async def score(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """One ``/invocations`` request → (status, JSON body), the same answer as unbatched scoring."""
        try:
            rows = None
            if self._columns is not None and parse_content_type(content_type) == JSON:
                rows = parse_double_rows(body, self._columns)  # float rows of exactly the signature
            if rows is not None:
                data: Any = rows
                key: Hashable | None = ("rows", self._columns)
            else:
                data, params = parse_request(body, content_type, self._schema)
                if not self.enabled or params is not None:
                    return 200, serialize_predictions(model_predict(self.model, data, params))
                data = prepare_input(self.model, data)  # bad input fails here, alone
                key = batch_key(data)
                if key is None:
                    return 200, serialize_predictions(self.model.predict_prepared(data))
            if not self.enabled:
                return 200, serialize_predictions(self.model.predict_prepared(_model_input(key, [data])))
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append(_Item(data, key, len(data), future))
            self._schedule_flush()
            return 200, serialize_predictions(await future)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an MLflow error JSON
            return error_response(exc)

    def close(self) -> None:
        """Stop the predict thread (queued work finishes first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- dispatch (event loop) -------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if not self._busy and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _take(self) -> list[_Group]:
        """Up to ``max_batch_size`` rows from the head of the queue, grouped by layout, in order."""
        groups: dict[Hashable, _Group] = {}
        rows = 0
        taken = 0
        for item in self._queue:
            if taken and rows + item.rows > self.max_batch_size:
                break
            groups.setdefault(item.key, _Group()).items.append(item)
            rows += item.rows
            taken += 1
        del self._queue[:taken]
        return list(groups.values())

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._busy or not self._queue:
            return
        groups = self._take()
        alone = len(groups) == 1 and len(groups[0].items) == 1
        if alone and self._lone_ms < self.inline_predict_ms:  # fast and alone: no thread hand-off
            item = groups[0].items[0]
            self._report(groups)
            self._resolve(item, self._predict_one(item))
            if self._queue:
                self._schedule_flush()
            return
        self._busy = True
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flowml-predict")
        self._report(groups)
        pending = asyncio.get_running_loop().run_in_executor(self._executor, self._predict_groups, groups)
        pending.add_done_callback(functools.partial(self._finished, groups))

    def _finished(self, groups: list[_Group], pending: asyncio.Future[list[list[_Outcome]]]) -> None:
        self._busy = False
        try:
            results = pending.result()
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer every request
            _log.exception("Batched predict failed unexpectedly")
            results = [[_Outcome(False, exc)] * len(g.items) for g in groups]
        for group, outcomes in zip(groups, results, strict=True):
            for item, outcome in zip(group.items, outcomes, strict=True):
                self._resolve(item, outcome)
        if self._queue:
            self._flush()

    def _report(self, groups: list[_Group]) -> None:
        if self.on_batch is None:
            return
        for group in groups:
            try:
                self.on_batch(len(group.items), sum(i.rows for i in group.items))
            except Exception:  # noqa: BLE001 - metrics must never fail a request
                _log.debug("on_batch hook failed", exc_info=True)

    @staticmethod
    def _resolve(item: _Item, outcome: _Outcome) -> None:
        if item.future.done():  # the request was cancelled (client gone, timeout)
            return
        if outcome.ok:
            item.future.set_result(outcome.value)
        else:
            item.future.set_exception(outcome.value)

    # -- predict (the predict thread; or the event loop for a lone request) ----------------------
    def _predict_one(self, item: _Item) -> _Outcome:
        started = time.perf_counter()
        try:
            return _Outcome(True, self.model.predict_prepared(_model_input(item.key, [item.data])))
        except Exception as exc:  # noqa: BLE001 - answered to this request alone
            return _Outcome(False, exc)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self._lone_ms = 0.8 * self._lone_ms + 0.2 * elapsed_ms

    def _predict_groups(self, groups: list[_Group]) -> list[list[_Outcome]]:
        return [self._predict_group(group.items) for group in groups]

    def _predict_group(self, items: list[_Item]) -> list[_Outcome]:
        if len(items) == 1 or not self.enabled:
            return [self._predict_one(item) for item in items]
        try:
            output = self.model.predict_prepared(_model_input(items[0].key, [item.data for item in items]))
        except Exception as exc:  # noqa: BLE001 - each request is retried alone for its own answer
            _log.debug("Batched predict of %d requests failed (%s); predicting each alone", len(items), exc)
            return [self._predict_one(item) for item in items]
        pieces = _split(output, [item.rows for item in items])
        if pieces is None:
            _log.warning(
                "The model's output (%s) is not row-aligned with its input; /invocations batching is "
                "switched off for this model",
                type(output).__name__,
            )
            self.enabled = False
            return [self._predict_one(item) for item in items]
        return [_Outcome(True, piece) for piece in pieces]
