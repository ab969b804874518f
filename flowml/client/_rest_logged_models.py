"""MLflow 3 logged models over MLflow's REST routes (``/logged-models...``, ``/runs/outputs``)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowml.client._logged_models_backend import LoggedModelBackend, ModelOrderSpec
from flowml.entities import LoggedModel, LoggedModelStatus, ModelMetric, PagedList
from flowml.exceptions import InvalidParameterValue
from flowml.validation import validate_metric

if TYPE_CHECKING:
    from flowml.client.rest import RestBackend

__all__ = ["RestLoggedModels", "logged_model_from_json"]


def _kv(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in items or ()}


def _kv_json(items: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items.items()]


def _point(d: Mapping[str, Any]) -> ModelMetric:
    return ModelMetric(
        d["key"],
        float(d["value"]),  # "NaN" / "Infinity" strings parse too
        int(d.get("timestamp", 0)),
        int(d.get("step", 0)),
        d.get("model_id", ""),
        d.get("run_id", ""),
        d.get("dataset_name") or None,
        d.get("dataset_digest") or None,
    )


def logged_model_from_json(d: Mapping[str, Any]) -> LoggedModel:
    """MLflow's ``LoggedModel`` JSON (``{"info": ..., "data": ...}``) as the entity."""
    info, data = d.get("info") or {}, d.get("data") or {}
    return LoggedModel(
        model_id=info["model_id"],
        experiment_id=str(info["experiment_id"]),
        name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        status=LoggedModelStatus.parse(info.get("status", "LOGGED_MODEL_STATUS_UNSPECIFIED")),
        creation_timestamp=int(info.get("creation_timestamp_ms", 0)),
        last_updated_timestamp=int(info.get("last_updated_timestamp_ms", 0)),
        model_type=info.get("model_type") or None,
        source_run_id=info.get("source_run_id") or None,
        status_message=info.get("status_message") or None,
        tags=_kv(info.get("tags")),
        params=_kv(data.get("params")),
        metrics=tuple(_point(m) for m in data.get("metrics") or ()),
    )


def _encode(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _order_json(entry: ModelOrderSpec) -> dict[str, Any]:
    if isinstance(entry, Mapping):
        return {k: v for k, v in entry.items() if v is not None}
    field, _, direction = entry.strip().rpartition(" ")
    if direction.upper() in ("ASC", "DESC") and field:
        return {"field_name": field.strip().strip("`"), "ascending": direction.upper() == "ASC"}
    return {"field_name": entry.strip().strip("`"), "ascending": True}


class RestLoggedModels(LoggedModelBackend):
    """Talks to a flowml or MLflow 3 server through ``backend.call``."""

    def __init__(self, backend: RestBackend) -> None:
        self._backend = backend

    def _path(self, model_id: str, *rest: str) -> str:
        if not model_id or "/" in model_id:
            raise InvalidParameterValue(f"Invalid logged model ID {model_id!r}")
        return "/".join(("logged-models", urllib.parse.quote(model_id, safe=""), *rest))

    def create(
        self,
        experiment_id: str,
        name: str | None,
        source_run_id: str | None,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        model_type: str | None,
    ) -> LoggedModel:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "tags": _kv_json(tags),
            "params": _kv_json(params),
        }
        for key, value in (("name", name), ("source_run_id", source_run_id), ("model_type", model_type)):
            if value:
                body[key] = value
        return logged_model_from_json(self._backend.call("POST", "logged-models", json=body)["model"])

    def get(self, model_id: str) -> LoggedModel:
        return logged_model_from_json(self._backend.call("GET", self._path(model_id))["model"])

    def finalize(self, model_id: str, status: str) -> LoggedModel:
        try:
            proto = LoggedModelStatus.parse(status).to_proto()
        except ValueError as exc:
            raise InvalidParameterValue(f"Invalid logged model status {status!r}") from exc
        body = {"model_id": model_id, "status": proto}
        return logged_model_from_json(self._backend.call("PATCH", self._path(model_id), json=body)["model"])

    def delete(self, model_id: str) -> None:
        self._backend.call("DELETE", self._path(model_id))

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self._backend.call("PATCH", self._path(model_id, "tags"), json={"tags": _kv_json(tags)})

    def delete_tag(self, model_id: str, key: str) -> None:
        self._backend.call("DELETE", self._path(model_id, "tags", urllib.parse.quote(key, safe="")))

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        body = {"model_id": model_id, "params": _kv_json(params)}
        self._backend.call("POST", self._path(model_id, "params"), json=body)

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        body = {"run_id": run_id, "models": [{"model_id": m, "step": step} for m, step in models]}
        self._backend.call("POST", "runs/outputs", json=body)

    def log_metrics(self, run_id: str, points: Sequence[ModelMetric]) -> None:
        metrics = []
        for p in points:
            validate_metric(p.key, p.value, p.timestamp, p.step)
            metric: dict[str, Any] = {
                "key": p.key,
                "value": _encode(p.value),
                "timestamp": p.timestamp,
                "step": p.step,
                "model_id": p.model_id,
            }
            if p.dataset_name:
                metric["dataset_name"] = p.dataset_name
            if p.dataset_digest:
                metric["dataset_digest"] = p.dataset_digest
            metrics.append(metric)
        for i in range(0, len(metrics), 1000):
            body = {"run_id": run_id, "metrics": metrics[i : i + 1000], "params": [], "tags": []}
            self._backend.call("POST", "runs/log-batch", json=body)

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int | None,
        order_by: Sequence[ModelOrderSpec] | None,
        page_token: str | None,
        datasets: Sequence[Mapping[str, str]] | None = None,
    ) -> PagedList[LoggedModel]:
        body: dict[str, Any] = {"experiment_ids": list(experiment_ids)}
        if filter_string:
            body["filter"] = filter_string
        if datasets:
            body["datasets"] = [dict(d) for d in datasets]
        if max_results is not None:
            body["max_results"] = max_results
        if order_by:
            body["order_by"] = [_order_json(o) for o in order_by]
        if page_token:
            body["page_token"] = page_token
        out = self._backend.call("POST", "logged-models/search", json=body)
        return PagedList(
            [logged_model_from_json(m) for m in out.get("models") or ()], out.get("next_page_token") or None
        )
