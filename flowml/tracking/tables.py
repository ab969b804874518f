"""MLflow's table artifacts: ``log_table`` writes a DataFrame (or dict) as a run artifact, appending to
it when the file exists, and ``load_table`` reads it back from one run or from every run of an
experiment that logged it.

Files and tags are MLflow's, so either tool reads what the other wrote: ``.json`` files hold pandas'
``orient="split"`` (no index, ISO dates), ``.parquet`` files pandas' parquet; the run tag
``mlflow.loggedArtifacts`` lists ``{"path": ..., "type": "table"}`` per table.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    import pandas as pd

    from flowml.client import FlowmlClient

__all__ = ["LOGGED_ARTIFACTS_TAG", "load_table", "log_table"]

logger = logging.getLogger(__name__)

#: The run tag listing a run's table artifacts (MLflow's ``mlflow.loggedArtifacts``).
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
_SUFFIXES = (".json", ".parquet")


def _check_file(artifact_file: str) -> None:
    if not artifact_file.endswith(_SUFFIXES):
        raise InvalidParameterValue(
            f"Invalid artifact file path '{artifact_file}': a table is logged to a '.json' or '.parquet' file"
        )


def _frame(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, dict):
        raise InvalidParameterValue("data must be a pandas.DataFrame or a dictionary")
    try:
        return pd.DataFrame(data)
    except ValueError:  # all scalars ({"inputs": "What is MLflow?"}): one row
        return pd.DataFrame([data])


def _is_image(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("save", "resize")) and hasattr(value, "size")


def _read(path: str) -> pd.DataFrame:
    import pandas as pd

    if path.endswith(".json"):
        return pd.read_json(path, orient="split")
    return pd.read_parquet(path)


def _stored(client: FlowmlClient, run_id: str, artifact_file: str) -> bool:
    directory = posixpath.dirname(posixpath.normpath(artifact_file)) or None
    return any(f.path == artifact_file and not f.is_dir for f in client.list_artifacts(run_id, directory))


def _download(client: FlowmlClient, run_id: str, artifact_file: str, tmp: str) -> pd.DataFrame:
    return _read(client.download_artifacts(run_id, artifact_file, tmp))


def log_table(client: FlowmlClient, run_id: str, data: Any, artifact_file: str) -> None:
    """Write ``data`` to the run's ``artifact_file`` (after the rows already there, if any)."""
    import pandas as pd

    _check_file(artifact_file)
    frame = _frame(data)
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(_is_image).any():
            raise InvalidParameterValue(
                f"Column `{column}` holds images: flowml's log_table stores plain values only "
                "(log images with log_artifact)"
            )
    with tempfile.TemporaryDirectory() as tmp:
        if _stored(client, run_id, artifact_file):
            frame = pd.concat([_download(client, run_id, artifact_file, tmp), frame], ignore_index=True)
            logger.debug("Appending to the table %s of run %s", artifact_file, run_id)
        local = os.path.join(tmp, "upload", posixpath.basename(artifact_file))
        os.makedirs(os.path.dirname(local))
        try:
            if artifact_file.endswith(".json"):
                frame.to_json(local, orient="split", index=False, date_format="iso")
            else:
                frame.to_parquet(local, index=False)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidParameterValue(f"The table cannot be saved as {artifact_file}: {exc}") from exc
        client.log_artifact(run_id, local, posixpath.dirname(artifact_file) or None)
    logged = json.loads(client.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    entry = {"path": artifact_file, "type": "table"}
    if entry not in logged:
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))


def load_table(
    client: FlowmlClient,
    experiment_id: str,
    artifact_file: str,
    run_ids: Sequence[str] | None = None,
    extra_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The table ``artifact_file`` of every run of ``experiment_id`` that logged it (or of ``run_ids``
    only), rows concatenated; ``extra_columns`` (e.g. ``["run_id"]``) add run fields to each row."""
    import pandas as pd

    _check_file(artifact_file)
    tag = f'"path"%:%"{artifact_file}",%"type"%:%"table"'
    filter_string = f"tags.`{LOGGED_ARTIFACTS_TAG}` LIKE '%{tag}%'"
    if run_ids:
        filter_string += " and attributes.run_id IN ({})".format(",".join(f"'{r}'" for r in run_ids))
    runs = client.search_runs([experiment_id], filter_string, max_results=50_000)
    if run_ids and len(runs) != len(run_ids):
        logger.warning("Not all runs have the table %s; the others are skipped", artifact_file)
    if not runs:
        raise ResourceDoesNotExist("No runs found with the corresponding table artifact.")
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(runs):
            if not _stored(client, run.info.run_id, artifact_file):
                raise ResourceDoesNotExist(f"Artifact {artifact_file} not found for run {run.info.run_id}.")
            frame = _download(client, run.info.run_id, artifact_file, os.path.join(tmp, str(i)))
            for column in extra_columns or ():
                name = f"{column}_" if column in frame else column
                frame[name] = _run_field(run, column)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _run_field(run: Any, column: str) -> Any:
    """A run's value for an ``extra_columns`` name: an info field (``run_id``, ``status``, ...) or a
    ``params.`` / ``metrics.`` / ``tags.`` entry, as in MLflow's search frame."""
    for prefix, values in (
        ("params.", run.data.params),
        ("metrics.", run.data.metrics),
        ("tags.", run.data.tags),
    ):
        if column.startswith(prefix):
            return values.get(column[len(prefix) :])
    if hasattr(run.info, column):
        return getattr(run.info, column)
    raise InvalidParameterValue(f"Unknown extra column {column!r}: a run field or params./metrics./tags. key")
