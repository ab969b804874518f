"""Entities ⇄ MLflow REST JSON (the protobuf JSON shapes MLflow's client reads and writes).

Doubles follow protobuf's JSON mapping: NaN and ±inf travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``. Unset optional fields are omitted, as protobuf does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import Response

from flowml.entities import DatasetInput, Experiment, FileInfo, Metric, ModelMetric, Run, RunInfo
from flowml.exceptions import InvalidParameterValue

__all__ = [
    "experiment_json",
    "fast_json",
    "file_info_json",
    "metric_json",
    "parse_double",
    "run_info_json",
    "run_json",
    "tags_json",
]


def fast_json(payload: Any, status_code: int = 200) -> Response:
    """A JSON response serialised by orjson, skipping FastAPI's generic encoder (hot endpoints).

    Payloads are plain dicts/lists/str/int/float built by this module (doubles already encoded).
    """
    import orjson

    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def encode_double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def parse_double(value: Any, field: str = "value") -> float:
    """A JSON double: a number or protobuf's "NaN"/"Infinity"/"-Infinity" strings."""
    if isinstance(value, bool):
        raise InvalidParameterValue(f"Invalid value {value!r} for parameter '{field}': expected a double")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity", "inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidParameterValue(f"Invalid value {value!r} for parameter '{field}': expected a double")


def tags_json(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def experiment_json(exp: Experiment) -> dict[str, Any]:
    return _drop_none(
        {
            "experiment_id": exp.experiment_id,
            "name": exp.name,
            "artifact_location": exp.artifact_location,
            "lifecycle_stage": exp.lifecycle_stage,
            "last_update_time": exp.last_update_time,
            "creation_time": exp.creation_time,
            "tags": tags_json(exp.tags) or None,
        }
    )


def run_info_json(info: RunInfo) -> dict[str, Any]:
    return _drop_none(
        {
            "run_id": info.run_id,
            "run_uuid": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage,
        }
    )


def metric_json(metric: Metric | ModelMetric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": encode_double(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def model_metric_json(point: ModelMetric) -> dict[str, Any]:
    """A logged model's metric point: MLflow's ``Metric`` with the model, run and dataset fields."""
    datasets = _drop_none({"dataset_name": point.dataset_name, "dataset_digest": point.dataset_digest})
    return {**metric_json(point), "model_id": point.model_id, "run_id": point.run_id, **datasets}


def dataset_input_json(item: DatasetInput) -> dict[str, Any]:
    d = item.dataset
    dataset = {"name": d.name, "digest": d.digest, "source_type": d.source_type, "source": d.source}
    return {
        "tags": [{"key": t.key, "value": t.value} for t in item.tags],
        "dataset": _drop_none({**dataset, "schema": d.schema, "profile": d.profile}),
    }


def run_json(run: Run) -> dict[str, Any]:
    points = run.data.latest_metrics
    metrics = [metric_json(points.get(k) or Metric(k, v, 0, 0)) for k, v in run.data.metrics.items()]
    data: dict[str, Any] = {}
    if metrics:
        data["metrics"] = metrics
    if run.data.params:
        data["params"] = tags_json(run.data.params)
    if run.data.tags:
        data["tags"] = tags_json(run.data.tags)
    out = {"info": run_info_json(run.info), "data": data, "inputs": {}}
    links = run.links
    if links.dataset_inputs:
        out["inputs"]["dataset_inputs"] = [dataset_input_json(i) for i in links.dataset_inputs]
    if links.model_inputs:
        out["inputs"]["model_inputs"] = [{"model_id": m} for m in links.model_inputs]
    if links.model_outputs:  # MLflow 3: the logged models this run produced
        out["outputs"] = {"model_outputs": [{"model_id": m, "step": step} for m, step in links.model_outputs]}
    return out


def file_info_json(info: FileInfo) -> dict[str, Any]:
    return _drop_none({"path": info.path, "is_dir": info.is_dir, "file_size": info.file_size})


def runs_json(runs: Iterable[Run]) -> list[dict[str, Any]]:
    return [run_json(r) for r in runs]
