"""Runtime pieces of a compiled project: tracking runs, the command subprocess, flow-run facts.

Everything here goes through :class:`flowml.client.FlowmlClient`, so it works against a local store and a
flowml server alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowml.client import FlowmlClient
from flowml.entities import Param
from flowml.exceptions import FlowmlError
from flowml.projects.env import Environment
from flowml.projects.spec import ExecutionError
from flowml.settings import get_settings

__all__ = [
    "FLOW_RUN_ID_TAG",
    "FLOW_RUN_URL_TAG",
    "create_tracking_run",
    "experiment_id_for",
    "finish_runs_of_flow_run",
    "flow_run_facts",
    "run_command",
    "tracking_env",
]

FLOW_RUN_ID_TAG = "flowml.prefect.flow_run_id"
FLOW_RUN_URL_TAG = "flowml.prefect.flow_run_url"
STEP_TAG = "flowml.project.step"

_log = logging.getLogger(__name__)


def experiment_id_for(client: FlowmlClient, name: str | None, experiment_id: str | None) -> str:
    """An explicit id, else the named experiment (created if missing), else the environment's, else
    ``"0"``."""
    if experiment_id:
        return str(experiment_id)
    env = os.environ
    name = name or env.get("FLOWML_EXPERIMENT_NAME") or env.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        return env.get("FLOWML_EXPERIMENT_ID") or env.get("MLFLOW_EXPERIMENT_ID") or "0"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except FlowmlError as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        again = client.get_experiment_by_name(name)
        assert again is not None
        return again.experiment_id


def flow_run_facts() -> dict[str, str]:
    """``flowml.prefect.*`` tags for the current flow run (the UI URL only when an API URL is configured)."""
    from prefect.context import FlowRunContext
    from prefect.utilities.urls import url_for

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return {}
    tags = {FLOW_RUN_ID_TAG: str(ctx.flow_run.id)}
    with contextlib.suppress(Exception):  # no UI configured (ephemeral API): no link
        url = url_for(ctx.flow_run)
        if url:
            tags[FLOW_RUN_URL_TAG] = url
    return tags


def create_tracking_run(
    client: FlowmlClient,
    experiment_id: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    run_name: str | None = None,
) -> str:
    run = client.create_run(experiment_id, tags=dict(tags), run_name=run_name)
    run_id = run.info.run_id
    if params:
        client.log_batch(run_id, params=[Param(str(k), str(v)) for k, v in params.items()])
    return run_id


def tracking_env(client: FlowmlClient, run_id: str, experiment_id: str) -> dict[str, str]:
    """What the command needs to log into ``run_id`` with ``flowml`` or ``mlflow``.

    ``MLFLOW_TRACKING_URI`` is only set for a server URI: ``mlflow`` cannot write to flowml's SQL schema.
    """
    uri = client.tracking_uri
    env = {
        "FLOWML_RUN_ID": run_id,
        "FLOWML_TRACKING_URI": uri,
        "FLOWML_EXPERIMENT_ID": experiment_id,
        "FLOWML_ARTIFACT_ROOT": get_settings().artifact_root,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
    }
    if uri.startswith(("http://", "https://")):
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _terminate(proc: subprocess.Popen[str]) -> None:
    """Stop the command's process group: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _read_outputs(path: Path) -> dict[str, str]:
    """``key=value`` lines the command wrote to ``$FLOWML_STEP_OUTPUTS`` (like ``$GITHUB_OUTPUT``)."""
    outputs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                outputs[key.strip()] = value.strip()
    return outputs


def run_command(
    command: str,
    environment: Environment,
    workdir: Path,
    env: Mapping[str, str],
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> dict[str, str]:
    """Run ``command`` in a subprocess, streaming its output to ``logger``; returns its step outputs.

    A non-zero exit raises :class:`ExecutionError` with the last lines of output. If this thread is
    interrupted (cancellation, Ctrl-C) the command's whole process group is stopped.
    """
    with tempfile.TemporaryDirectory(prefix="flowml-step-") as tmp:
        outputs_file = Path(tmp) / "outputs"
        full_env = {**env, "FLOWML_STEP_OUTPUTS": str(outputs_file), "PYTHONUNBUFFERED": "1"}
        argv, process_env = environment.argv(command, full_env, workdir)
        logger.info("Running command: %s", command)
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        tail: deque[str] = deque(maxlen=20)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                text = line.rstrip("\n")
                tail.append(text)
                logger.info("%s", text)
            code = proc.wait()
        except BaseException:
            _terminate(proc)
            raise
        if code != 0:
            last = "\n".join(tail)
            detail = f"Last output:\n{last}" if last else "It printed nothing."
            raise ExecutionError(f"Command {command!r} exited with code {code}. {detail}")
        return _read_outputs(outputs_file)


def finish_runs_of_flow_run(flow_run_id: str, status: str) -> list[str]:
    """Mark every still-RUNNING tracking run of ``flow_run_id`` as ``status``; returns their ids."""
    client = FlowmlClient()
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not experiments:
        return []
    found = client.search_runs(
        experiments, f"tags.`{FLOW_RUN_ID_TAG}` = '{flow_run_id}' and attributes.status = 'RUNNING'"
    )
    for run in found:
        client.set_terminated(run.info.run_id, status)
    return [r.info.run_id for r in found]


def state_hook(status: str) -> Any:
    """A Prefect flow state hook (``on_cancellation`` / ``on_crashed``) that ends the flow run's tracking
    runs.

    The runner calls hooks with keywords, the engine positionally: the names must be ``flow, flow_run,
    state``.
    """

    def hook(flow: Any, flow_run: Any, state: Any) -> None:
        try:
            finish_runs_of_flow_run(str(flow_run.id), status)
        except Exception:  # noqa: BLE001 - a hook must never fail the flow run's final state
            _log.exception("flowml: could not mark the tracking runs of flow run %s %s", flow_run.id, status)

    hook.__name__ = f"flowml_mark_{status.lower()}"
    return hook
