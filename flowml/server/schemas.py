"""Request bodies of MLflow's REST API 2.0 (field names as in MLflow's protos)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flowml.entities import ViewType
from flowml.exceptions import InvalidParameterValue

__all__ = [
    "CreateExperiment",
    "CreateRun",
    "DeleteTag",
    "ExperimentId",
    "ExperimentTag",
    "KeyValue",
    "LogBatch",
    "LogMetric",
    "LogParam",
    "RunIdBody",
    "SearchExperiments",
    "SearchRuns",
    "SetTag",
    "UpdateExperiment",
    "UpdateRun",
    "body_schema",
    "parse_view_type",
    "require_run_id",
]


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body of a route that parses its own body
    (the schema inlined: its ``$defs`` would not resolve inside the OpenAPI document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def require_run_id(run_id: str | None, run_uuid: str | None) -> str:
    """MLflow clients send ``run_id`` and/or the legacy ``run_uuid``; one of them is required."""
    rid = run_id or run_uuid
    if not rid:
        raise InvalidParameterValue("Missing value for required parameter 'run_id'.")
    return rid


def parse_view_type(value: Any) -> ViewType:
    if value is None or value == "":
        return ViewType.ACTIVE_ONLY
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return ViewType(int(value))
        return ViewType[str(value).upper()]
    except (KeyError, ValueError) as exc:
        raise InvalidParameterValue(f"Invalid view type {value!r}") from exc


class KeyValue(_Body):
    key: str
    value: str

    @field_validator("value", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        return "" if v is None else str(v) if not isinstance(v, str) else v


class CreateExperiment(_Body):
    name: str = Field(min_length=1)
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentId(_Body):
    experiment_id: str = Field(min_length=1)


class UpdateExperiment(ExperimentId):
    new_name: str | None = None


class ExperimentTag(ExperimentId):
    key: str
    value: str = ""


class SearchExperiments(_Body):
    max_results: int = 1000
    page_token: str | None = None
    filter: str | None = None
    order_by: list[str] = Field(default_factory=list)
    view_type: Any = None


class _RunRef(_Body):
    run_id: str | None = None
    run_uuid: str | None = None

    def rid(self) -> str:
        return require_run_id(self.run_id, self.run_uuid)


class RunIdBody(_RunRef):
    pass


class DatasetBody(_Body):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None


class DatasetInputBody(_Body):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetBody


class ModelInputBody(_Body):
    model_id: str


class LogInputs(_RunRef):
    datasets: list[DatasetInputBody] = Field(default_factory=list)
    models: list[ModelInputBody] = Field(default_factory=list)


class CreateRun(_Body):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(_RunRef):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class LogMetric(_RunRef):
    key: str
    value: Any
    timestamp: int
    step: int = 0
    #: MLflow 3: the logged model the point is also a metric of, and the dataset it was measured on.
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogParam(_RunRef):
    key: str
    value: Any


class SetTag(_RunRef):
    key: str
    value: Any


class DeleteTag(_RunRef):
    key: str


class MetricBody(_Body):
    key: str
    value: Any
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LogBatch(_RunRef):
    metrics: list[MetricBody] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class SearchRuns(_Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    run_view_type: Any = None
    max_results: int = 1000
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None
