"""The REST backend: MLflow's REST API 2.0 over one kept-alive httpx connection pool.

Error JSON is turned back into the same :class:`FlowmlError` classes the SQL backend raises.
Retries are bounded and only where a repeat is safe: reads and MLflow's retry-safe writes
(log-batch/metric/param, set/delete tag, update/delete/restore run), on connection errors and
HTTP 429/503. Creates are never retried after the request may have reached the server.
"""

from __future__ import annotations

import getpass
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from flowml.client._rest_logged_models import RestLoggedModels
from flowml.client._rest_registry import RestRegistryMixin
from flowml.client.base import TrackingBackend
from flowml.entities import (
    NO_LINKS,
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    ModelMetric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunLinks,
    RunTag,
    ViewType,
)
from flowml.exceptions import FlowmlError, TemporarilyUnavailable, error_from_code
from flowml.validation import validate_metric

__all__ = ["RestBackend"]

logger = logging.getLogger(__name__)

_API = "/api/2.0/mlflow"
_RETRY_STATUS = {429, 503}
_SAFE_POSTS = {
    "registered-models/set-tag",
    "model-versions/set-tag",
    "registered-models/get-latest-versions",
    "runs/log-batch",
    "runs/log-metric",
    "runs/log-parameter",
    "runs/set-tag",
    "runs/delete-tag",
    "runs/update",
    "runs/delete",
    "runs/restore",
    "runs/search",
    "experiments/search",
    "experiments/set-experiment-tag",
    "logged-models/search",
}


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _double(value: Any) -> float:
    return float(value)  # float("NaN"), float("Infinity") and numbers all parse


def _kv(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in items or ()}


def _experiment(d: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(d["experiment_id"]),
        name=d["name"],
        artifact_location=d.get("artifact_location", ""),
        lifecycle_stage=d.get("lifecycle_stage", "active"),
        tags=_kv(d.get("tags")),
        creation_time=d.get("creation_time"),
        last_update_time=d.get("last_update_time"),
    )


def _run_info(d: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=d.get("run_id") or d["run_uuid"],
        experiment_id=str(d["experiment_id"]),
        run_name=d.get("run_name", ""),
        user_id=d.get("user_id", ""),
        status=d.get("status", "RUNNING"),
        start_time=d.get("start_time"),
        end_time=d.get("end_time"),
        artifact_uri=d.get("artifact_uri", ""),
        lifecycle_stage=d.get("lifecycle_stage", "active"),
    )


def _run(d: Mapping[str, Any]) -> Run:
    data = d.get("data") or {}
    points = {
        m["key"]: Metric(m["key"], _double(m["value"]), int(m.get("timestamp", 0)), int(m.get("step", 0)))
        for m in data.get("metrics") or ()
    }
    metrics = {k: p.value for k, p in points.items()}
    run_data = RunData(metrics, _kv(data.get("params")), _kv(data.get("tags")), points)
    return Run(_run_info(d["info"]), run_data, _links(d.get("inputs") or {}, d.get("outputs") or {}))


def _dataset_input(d: Mapping[str, Any]) -> DatasetInput:
    ds = d.get("dataset") or {}
    dataset = Dataset(
        ds["name"], ds["digest"], ds["source_type"], ds["source"], ds.get("schema"), ds.get("profile")
    )
    return DatasetInput(dataset, [InputTag(t["key"], t.get("value", "")) for t in d.get("tags") or ()])


def _links(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> RunLinks:
    """A run's ``inputs`` / ``outputs`` JSON (absent when it has none)."""
    if not inputs and not outputs:
        return NO_LINKS
    return RunLinks(
        tuple(_dataset_input(i) for i in inputs.get("dataset_inputs") or ()),
        tuple(m["model_id"] for m in inputs.get("model_inputs") or ()),
        tuple((m["model_id"], int(m.get("step", 0))) for m in outputs.get("model_outputs") or ()),
    )


def _dataset_input_json(item: DatasetInput) -> dict[str, Any]:
    d = item.dataset
    dataset = {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source}
    dataset.update({k: v for k, v in (("schema", d.schema), ("profile", d.profile)) if v is not None})
    return {"tags": [{"key": t.key, "value": t.value} for t in item.tags], "dataset": dataset}


def _metric_json(m: Metric) -> dict[str, Any]:
    value: float | str = m.value
    if m.value != m.value:
        value = "NaN"
    elif m.value in (float("inf"), float("-inf")):
        value = "Infinity" if m.value > 0 else "-Infinity"
    return {"key": m.key, "value": value, "timestamp": m.timestamp, "step": m.step}


class RestBackend(RestRegistryMixin, TrackingBackend):
    """Talks to ``flowml server`` or ``mlflow server`` at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        artifact_root: str = "",
        *,
        timeout: float = 120.0,
        max_retries: int = 5,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.artifact_root = artifact_root
        self._timeout = timeout
        self._max_retries = max_retries
        self._headers = {"X-Flowml-User": _local_user(), **dict(headers or {})}
        self._http: httpx.Client | None = None
        self._artifact_http: httpx.Client | None = None
        self.logged_models = RestLoggedModels(self)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=self._timeout, headers=self._headers)
        return self._http

    @property
    def artifact_http(self) -> httpx.Client:
        """One pooled client for the server's artifact proxy (longer timeout: whole files stream)."""
        if self._artifact_http is None:
            self._artifact_http = httpx.Client(base_url=self.base_url, timeout=300.0, headers=self._headers)
        return self._artifact_http

    def close(self) -> None:
        for client in (self._http, self._artifact_http):
            if client is not None:
                client.close()
        self._http = self._artifact_http = None

    # -- transport -----------------------------------------------------------------------------
    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        api: str = _API,
    ) -> dict[str, Any]:
        safe = method == "GET" or endpoint in _SAFE_POSTS
        delay = 0.2
        for attempt in range(self._max_retries + 1):
            try:
                response = self.http.request(method, f"{api}/{endpoint}", params=params, json=json)
            except httpx.ConnectError as exc:  # nothing was sent: always safe to retry
                if attempt == self._max_retries:
                    raise TemporarilyUnavailable(f"Cannot reach {self.base_url}: {exc}") from exc
            except httpx.TransportError as exc:
                if not safe or attempt == self._max_retries:
                    raise TemporarilyUnavailable(f"Request to {self.base_url} failed: {exc}") from exc
            else:
                if response.status_code in _RETRY_STATUS and safe and attempt < self._max_retries:
                    logger.debug("retrying %s %s after HTTP %s", method, endpoint, response.status_code)
                else:
                    return self._decode(response)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        if isinstance(body, dict) and "error_code" in body:
            details = {k: v for k, v in body.items() if k not in ("error_code", "message")}
            raise error_from_code(body["error_code"], body.get("message", ""), **details)
        raise FlowmlError(
            f"HTTP {response.status_code} from {response.request.url}: {response.text[:500]}",
            error_code="INTERNAL_ERROR" if response.status_code >= 500 else "BAD_REQUEST",
        )

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None, tags: Mapping[str, str] | None
    ) -> str:
        body: dict[str, Any] = {
            "name": name,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self.call("POST", "experiments/create", json=body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return _experiment(
            self.call("GET", "experiments/get", params={"experiment_id": experiment_id})["experiment"]
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            body = self.call("GET", "experiments/get-by-name", params={"experiment_name": name})
        except FlowmlError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return _experiment(body["experiment"])

    def search_experiments(
        self,
        view_type: ViewType,
        max_results: int,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Experiment]:
        body = self.call(
            "POST",
            "experiments/search",
            json={
                "view_type": ViewType(view_type).name,
                "max_results": max_results,
                "filter": filter_string,
                "order_by": list(order_by or ()),
                "page_token": page_token,
            },
        )
        return PagedList([_experiment(e) for e in body.get("experiments", ())], body.get("next_page_token"))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.call("POST", "experiments/update", json={"experiment_id": experiment_id, "new_name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        self.call("POST", "experiments/delete", json={"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self.call("POST", "experiments/restore", json={"experiment_id": experiment_id})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.call(
            "POST",
            "experiments/set-experiment-tag",
            json={"experiment_id": experiment_id, "key": key, "value": value},
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.call(
            "POST", "experiments/delete-experiment-tag", json={"experiment_id": experiment_id, "key": key}
        )

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> Run:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time if start_time is not None else time.time_ns() // 1_000_000,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }
        if run_name:
            body["run_name"] = run_name
        return _run(self.call("POST", "runs/create", json=body)["run"])

    def get_run(self, run_id: str) -> Run:
        return _run(self.call("GET", "runs/get", params={"run_id": run_id, "run_uuid": run_id})["run"])

    def update_run_info(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        body: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id}
        for key, value in (("status", status), ("end_time", end_time), ("run_name", run_name)):
            if value is not None:
                body[key] = value
        return _run_info(self.call("POST", "runs/update", json=body)["run_info"])

    def delete_run(self, run_id: str) -> None:
        self.call("POST", "runs/delete", json={"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self.call("POST", "runs/restore", json={"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
        model_points: Sequence[ModelMetric] = (),
    ) -> None:
        for m in metrics:  # the wire would turn a bad value into a string the server may accept
            validate_metric(m.key, m.value, m.timestamp, m.step)
        # a model point is its metric again with MLflow 3's model_id / dataset fields (the server
        # stores the run's point once: identical points are one row)
        linked = [
            {**_metric_json(Metric(p.key, p.value, p.timestamp, p.step)), "model_id": p.model_id}
            | {k: v for k, v in (("dataset_name", p.dataset_name), ("dataset_digest", p.dataset_digest)) if v}
            for p in model_points
        ]
        self.call(
            "POST",
            "runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [_metric_json(m) for m in metrics] + linked,
                "params": [{"key": p.key, "value": p.value} for p in params],
                "tags": [{"key": t.key, "value": t.value} for t in tags],
            },
        )

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput], model_ids: Sequence[str] = ()) -> None:
        body: dict[str, Any] = {"run_id": run_id, "datasets": [_dataset_input_json(i) for i in inputs]}
        if model_ids:
            body["models"] = [{"model_id": m} for m in model_ids]
        self.call("POST", "runs/log-inputs", json=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.call("POST", "runs/delete-tag", json={"run_id": run_id, "key": key})

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, page_token: str | None
    ) -> PagedList[Metric]:
        params: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id, "metric_key": key}
        if max_results:
            params["max_results"] = max_results
        if page_token:
            params["page_token"] = page_token
        body = self.call("GET", "metrics/get-history", params=params)
        points = [
            Metric(m["key"], _double(m["value"]), int(m.get("timestamp", 0)), int(m.get("step", 0)))
            for m in body.get("metrics", ())
        ]
        return PagedList(points, body.get("next_page_token"))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]:
        body = self.call(
            "POST",
            "runs/search",
            json={
                "experiment_ids": list(experiment_ids),
                "filter": filter_string or "",
                "run_view_type": ViewType(run_view_type).name,
                "max_results": max_results,
                "order_by": list(order_by or ()),
                "page_token": page_token,
            },
        )
        return PagedList([_run(r) for r in body.get("runs", ())], body.get("next_page_token"))

    # -- flowml extensions ---------------------------------------------------------------------
    def record_artifact_files(self, run_id: str, records: Iterable[tuple[str, int, str]]) -> None:
        files = [{"path": p, "file_size": s, "sha256": h} for p, s, h in records]
        if files:
            self.call(
                "POST", "runs/artifact-files", json={"run_id": run_id, "files": files}, api="/api/flowml"
            )

    def list_artifact_files(self, run_id: str) -> dict[str, tuple[int, str]]:
        body = self.call("GET", "runs/artifact-files", params={"run_id": run_id}, api="/api/flowml")
        return {f["path"]: (int(f["file_size"]), f["sha256"]) for f in body.get("files", ())}
