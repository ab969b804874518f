"""Public data types returned by every flowml client, shaped like MLflow's entities.

They are plain frozen dataclasses: cheap to build (the store makes thousands per search), safe to
share between threads, and free of any database or HTTP dependency.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "InputTag",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelInput",
    "LoggedModelOutput",
    "LoggedModelStatus",
    "Metric",
    "ModelMetric",
    "PagedList",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunLinks",
    "RunOutputs",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]

T = TypeVar("T")


class ViewType(enum.IntEnum):
    """Which lifecycle stages a search returns (MLflow's numeric values)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def from_string(cls, value: str) -> ViewType:
        return cls[value.upper()]

    @classmethod
    def to_string(cls, value: int) -> str:
        return cls(value).name


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"

    @staticmethod
    def for_view(view_type: ViewType | int) -> tuple[str, ...]:
        view = ViewType(view_type)
        if view is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if view is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


class RunStatus:
    """Run states as MLflow names them; the strings are what the store and REST carry."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    _BY_NUMBER = {1: RUNNING, 2: SCHEDULED, 3: FINISHED, 4: FAILED, 5: KILLED}
    ALL = tuple(_BY_NUMBER.values())
    TERMINATED = (FINISHED, FAILED, KILLED)

    @classmethod
    def from_string(cls, status: str) -> str:
        upper = status.upper()
        if upper not in cls.ALL:
            raise ValueError(f"Invalid run status {status!r}; expected one of {', '.join(cls.ALL)}")
        return upper

    @classmethod
    def to_number(cls, status: str) -> int:
        return {v: k for k, v in cls._BY_NUMBER.items()}[status]

    @classmethod
    def from_number(cls, number: int) -> str:
        return cls._BY_NUMBER[number]

    @classmethod
    def is_terminated(cls, status: str) -> bool:
        return status in cls.TERMINATED


class LoggedModelStatus(enum.StrEnum):
    """A logged model's status as MLflow 3's ``LoggedModelStatus`` names it (``"READY"``...); the
    store and the REST API carry the protobuf names (``LOGGED_MODEL_READY``...)."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"

    def to_proto(self) -> str:
        return _LOGGED_MODEL_PROTO[self]

    @classmethod
    def parse(cls, status: str) -> LoggedModelStatus:
        """From MLflow's name, the protobuf name, or a member; ``ValueError`` for anything else."""
        if isinstance(status, cls):
            return status
        text = str(status).upper()
        for member, proto in _LOGGED_MODEL_PROTO.items():
            if text in (member.value, proto):
                return member
        raise ValueError(f"Invalid logged model status {status!r}")

    @staticmethod
    def is_finalized(status: str) -> bool:
        return status in (LoggedModelStatus.READY, LoggedModelStatus.FAILED)


_LOGGED_MODEL_PROTO = {
    LoggedModelStatus.UNSPECIFIED: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}


class SourceType:
    NOTEBOOK = "NOTEBOOK"
    JOB = "JOB"
    PROJECT = "PROJECT"
    LOCAL = "LOCAL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of an artifact listing; ``path`` is relative to the listed root."""

    path: str
    is_dir: bool
    file_size: int | None = None


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: Mapping[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def run_uuid(self) -> str:
        """MLflow's legacy name for :attr:`run_id`."""
        return self.run_id


@dataclass(frozen=True, slots=True)
class RunData:
    """Latest metric values, params and tags of a run, each keyed by name.

    ``latest_metrics`` holds the full latest point (value, timestamp, step) per metric key.
    """

    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    latest_metrics: Mapping[str, Metric] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset a run used (MLflow's ``Dataset`` entity): identified per experiment by name + digest."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class InputTag:
    """A tag of one dataset input of a run (MLflow's ``InputTag``), e.g. ``mlflow.data.context``."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset as one run's input, with the input's tags (e.g. ``mlflow.data.context``).

    ``tags`` is MLflow's list of :class:`InputTag` (kept as a tuple); a ``{key: value}`` mapping, or
    MLflow's own ``InputTag`` objects, are accepted too and converted."""

    dataset: Dataset
    tags: Sequence[InputTag] = ()

    def __post_init__(self) -> None:
        given: Any = self.tags
        pairs = given.items() if isinstance(given, Mapping) else ((t.key, t.value) for t in given)
        object.__setattr__(self, "tags", tuple(InputTag(k, v) for k, v in pairs))

    def tag_dict(self) -> dict[str, str]:
        """The tags as ``{key: value}``."""
        return {t.key: t.value for t in self.tags}


@dataclass(frozen=True, slots=True)
class RunLinks:
    """What a run used and produced besides its data: MLflow's run ``inputs`` (datasets and MLflow 3
    logged models) and ``outputs`` (the logged models it produced, with the step)."""

    dataset_inputs: tuple[DatasetInput, ...] = ()
    model_inputs: tuple[str, ...] = ()
    model_outputs: tuple[tuple[str, int], ...] = ()


#: A run that used and produced nothing (shared: the entity is immutable).
NO_LINKS = RunLinks()


@dataclass(frozen=True, slots=True)
class LoggedModelInput:
    """A logged model a run used (MLflow 3's ``LoggedModelInput``)."""

    model_id: str


@dataclass(frozen=True, slots=True)
class LoggedModelOutput:
    """A logged model a run produced, at a step (MLflow 3's ``LoggedModelOutput``)."""

    model_id: str
    step: int


@dataclass(frozen=True, slots=True)
class RunInputs:
    """MLflow's ``run.inputs``: the datasets and logged models a run used (lists, as MLflow's)."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[LoggedModelInput] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunOutputs:
    """MLflow's ``run.outputs``: the logged models a run produced."""

    model_outputs: list[LoggedModelOutput] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Run:
    """A run: its info, its data, and (``links``) the datasets and logged models it used and produced,
    read by MLflow's names ``inputs`` and ``outputs``."""

    info: RunInfo
    data: RunData = field(default_factory=RunData)
    links: RunLinks = NO_LINKS

    @property
    def inputs(self) -> RunInputs:
        links = self.links
        return RunInputs(list(links.dataset_inputs), [LoggedModelInput(m) for m in links.model_inputs])

    @property
    def outputs(self) -> RunOutputs:
        return RunOutputs([LoggedModelOutput(m, step) for m, step in self.links.model_outputs])

    def to_dictionary(self) -> dict[str, Any]:
        info = {name: getattr(self.info, name) for name in RunInfo.__dataclass_fields__}
        links = self.links
        datasets = [
            {
                "dataset": {f: getattr(i.dataset, f) for f in Dataset.__dataclass_fields__},
                "tags": i.tag_dict(),
            }
            for i in links.dataset_inputs
        ]
        return {
            "info": info,
            "data": {
                "metrics": dict(self.data.metrics),
                "params": dict(self.data.params),
                "tags": dict(self.data.tags),
            },
            "inputs": {
                "model_inputs": [{"model_id": m} for m in links.model_inputs],
                "dataset_inputs": datasets,
            },
            "outputs": {"model_outputs": [{"model_id": m, "step": step} for m, step in links.model_outputs]},
        }


@dataclass(frozen=True, slots=True)
class ModelMetric:
    """A metric point of a logged model (MLflow 3 ``Metric`` with ``model_id``): which run logged it
    and, when it was measured on one, the dataset's name and digest."""

    key: str
    value: float
    timestamp: int
    step: int
    model_id: str
    run_id: str
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """An MLflow 3 logged model: a model's files plus its metadata, produced by a run."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    status: str
    creation_timestamp: int
    last_updated_timestamp: int
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    #: Every metric point logged for the model, ordered by key, step and timestamp.
    metrics: Sequence[ModelMetric] = ()


class PagedList(list[T]):
    """A page of results; ``token`` fetches the next page and is ``None`` on the last one."""

    def __init__(self, items: Iterable[T] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token
