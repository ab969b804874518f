"""Fluent artifact and input logging and ``search_runs`` (MLflow's ``mlflow.log_artifact``,
``mlflow.log_image``, ``mlflow.log_input``, ``mlflow.search_runs``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flowml.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, Run, ViewType
from flowml.exceptions import InvalidParameterValue
from flowml.tracking.fluent import _active_experiment_id, _client, _target, active_run

__all__ = [
    "get_artifact_uri",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_table",
    "log_text",
    "search_runs",
]

_SEARCH_PAGE = 50_000
#: The input tag MLflow gives a dataset's role in a run ("training", "eval", ...).
DATASET_CONTEXT_TAG = "mlflow.data.context"


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _, rid, client = _target(run_id)
    client.log_artifact(rid, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _, rid, client = _target(run_id)
    client.log_artifacts(rid, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _, rid, client = _target(run_id)
    client.log_text(rid, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    _, rid, client = _target(run_id)
    client.log_dict(rid, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None) -> None:
    _, rid, client = _target(None)
    client.log_figure(rid, figure, artifact_file, save_kwargs=save_kwargs)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    """Log an image to the active run (started if none): as ``artifact_file``, or as step ``step`` of
    the image series ``key`` (MLflow's UI image charts). See :meth:`FlowmlClient.log_image`."""
    _, rid, client = _target(None)
    client.log_image(rid, image, artifact_file, key, step, timestamp, synchronous)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    active = active_run()
    if active is None:
        raise InvalidParameterValue("No active run: call start_run() first")
    root = active.info.artifact_uri
    return f"{root.rstrip('/')}/{artifact_path.lstrip('/')}" if artifact_path else root


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching ``filter_string`` as a pandas DataFrame (MLflow's columns) or a list of Runs."""
    if output_format not in ("pandas", "list"):
        raise InvalidParameterValue(f"Unsupported output_format {output_format!r}: use 'pandas' or 'list'")
    client = _client()
    ids = [str(e) for e in experiment_ids or ()]
    for name in experiment_names or ():
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            ids.append(experiment.experiment_id)
    if not ids and not experiment_names:
        if search_all_experiments:
            ids = [
                e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=50_000)
            ]
        else:
            ids = [_active_experiment_id(client)]
    runs: list[Run] = []
    token: str | None = None
    while ids and len(runs) < max_results:
        page = client.search_runs(
            ids, filter_string, run_view_type, min(_SEARCH_PAGE, max_results - len(runs)), order_by, token
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs if output_format == "list" else _to_frame(runs)


def _ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _to_frame(runs: list[Run]) -> Any:
    import pandas as pd

    records = []
    for run in runs:
        info = run.info
        record: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": _ms_to_datetime(info.start_time),
            "end_time": _ms_to_datetime(info.end_time),
        }
        record.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.data.params.items()})
        record.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        records.append(record)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    return frame


def _dataset_input(dataset: Any, context: str | None, tags: Mapping[str, str] | None) -> DatasetInput | None:
    """A ``flowml.data`` dataset (or MLflow's own: anything with ``_to_mlflow_entity``) as a run input,
    with MLflow's checks: context and tags need a dataset; an empty context is no tag."""
    if dataset is None:
        if context or tags:
            raise InvalidParameterValue("`dataset` must be specified if `context` or `tags` is specified.")
        return None
    to_entity = getattr(dataset, "_to_mlflow_entity", None)
    if to_entity is None:
        raise InvalidParameterValue(
            "log_input takes a dataset from flowml.data (from_pandas, from_numpy), "
            f"not {type(dataset).__name__}"
        )
    e = to_entity()
    entity = (
        e
        if isinstance(e, Dataset)
        else Dataset(e.name, e.digest, e.source_type, e.source, e.schema, e.profile)
    )
    input_tags = [InputTag(str(k), str(v)) for k, v in (tags or {}).items()]
    if context:
        input_tags.append(InputTag(DATASET_CONTEXT_TAG, context))
    return DatasetInput(entity, input_tags)


def log_input(
    dataset: Any = None,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    model: LoggedModelInput | None = None,
) -> None:
    """Record that the active run (started if none) used ``dataset`` — e.g. ``flowml.data.from_pandas(df)``
    — in the role ``context`` ("training", "eval", ...), and/or the logged ``model``."""
    item = _dataset_input(dataset, context, tags)
    _, rid, client = _target(None)
    client.log_inputs(rid, [item] if item else [], [LoggedModelInput(model.model_id)] if model else [])


def log_inputs(
    datasets: Sequence[Any] | None = None,
    contexts: Sequence[str | None] | None = None,
    tags_list: Sequence[Mapping[str, str] | None] | None = None,
    models: Sequence[LoggedModelInput | None] | None = None,
) -> None:
    """Several datasets at once; as in MLflow, ``datasets``, ``contexts`` and ``tags_list`` pair by
    position and must have the same length (entries may be ``None``). Unlike MLflow outside Databricks,
    ``models`` (logged models the run used) are recorded too."""
    found, roles, tag_maps = list(datasets or ()), list(contexts or ()), list(tags_list or ())
    if not len(found) == len(roles) == len(tag_maps):
        raise InvalidParameterValue(
            "`log_inputs` requires `datasets`, `contexts`, `tags_list` to be non-empty lists of the same "
            f"length (got {len(found)}, {len(roles)}, {len(tag_maps)})"
        )
    inputs = [_dataset_input(d, c, t) for d, c, t in zip(found, roles, tag_maps, strict=True)]
    used = [LoggedModelInput(m.model_id) for m in models or () if m is not None]
    _, rid, client = _target(None)
    client.log_inputs(rid, [i for i in inputs if i is not None], used)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a DataFrame or dict as the table artifact ``artifact_file`` (``.json`` or ``.parquet``) of the
    active run (or ``run_id``), after the rows it already holds."""
    _, rid, client = _target(run_id)
    client.log_table(rid, data, artifact_file)


def load_table(
    artifact_file: str, run_ids: Sequence[str] | None = None, extra_columns: Sequence[str] | None = None
) -> Any:
    """The table ``artifact_file`` of the active experiment's runs (or of ``run_ids``) as one DataFrame."""
    client = _client()
    return client.load_table(_active_experiment_id(client), artifact_file, run_ids, extra_columns)
