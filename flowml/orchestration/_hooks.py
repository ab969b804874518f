"""Prefect state hooks that set a flow's tracking run status from the flow run's final state.

==================  ===========
final Prefect state  run status
==================  ===========
Completed            FINISHED
Failed               FAILED
Crashed              FAILED (the same mapping as compiled projects)
Cancelled            KILLED
==================  ===========

The flow wrapper records ``flow run id -> (tracking run id, context)`` when it opens the run; the engine calls
``on_completion`` / ``on_failure`` / ``on_crashed`` in that same process. The runner (``serve``, a worker)
calls ``on_cancellation`` / ``on_crashed`` in *its* process, which never saw the flow run: there the hook
finds the still-RUNNING runs by their ``flowml.prefect.flow_run_id`` tag. Crash and cancellation also end the
task runs' child runs that were left RUNNING. A hook never raises: a tracking error must not change the flow
run's state."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flowml.entities import RunStatus
from flowml.orchestration._context import TrackingContext

__all__ = [
    "FLOW_RUN_ID_TAG",
    "FLOW_RUN_NAME_TAG",
    "FLOW_RUN_URL_TAG",
    "flow_hooks",
    "flow_run_tags",
    "forget",
    "remember",
]

FLOW_RUN_ID_TAG = "flowml.prefect.flow_run_id"
FLOW_RUN_NAME_TAG = "flowml.prefect.flow_run_name"
FLOW_RUN_URL_TAG = "flowml.prefect.flow_run_url"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_open: dict[str, tuple[str, TrackingContext]] = {}


def flow_run_tags(flow_run: Any, flow_name: str | None = None) -> dict[str, str]:
    """``flowml.prefect.*`` tags of a flow run (the UI URL only when a Prefect UI is configured)."""
    from flowml.projects._execute import flow_run_facts  # the projects runner's helper: one URL rule

    tags = flow_run_facts()
    tags[FLOW_RUN_ID_TAG] = str(flow_run.id)
    tags[FLOW_RUN_NAME_TAG] = str(flow_run.name)
    tags["flowml.prefect.flow_name"] = flow_name or ""
    return {k: v for k, v in tags.items() if v}


def remember(flow_run_id: str, run_id: str, ctx: TrackingContext) -> None:
    with _lock:
        _open[flow_run_id] = (run_id, ctx)


def forget(flow_run_id: str) -> tuple[str, TrackingContext] | None:
    with _lock:
        return _open.pop(flow_run_id, None)


def _finish(flow_run: Any, status: str, *, sweep_children: bool) -> None:
    flow_run_id = str(flow_run.id)
    entry = forget(flow_run_id)
    try:
        if entry is not None:
            run_id, ctx = entry
            ctx.client().set_terminated(run_id, status)
        if entry is None or sweep_children:
            from flowml.projects._execute import finish_runs_of_flow_run

            finish_runs_of_flow_run(flow_run_id, status)
    except Exception:  # noqa: BLE001 - a hook must never change the flow run's final state
        _log.exception("flowml: could not set the tracking run of flow run %s to %s", flow_run_id, status)


def _hook(status: str, *, sweep_children: bool = False) -> Any:
    # The engine calls hooks positionally, the runner with keywords: the names must be flow, flow_run, state.
    def hook(flow: Any, flow_run: Any, state: Any) -> None:
        _finish(flow_run, status, sweep_children=sweep_children)

    hook.__name__ = hook.__qualname__ = f"flowml_run_{status.lower()}"
    return hook


def flow_hooks() -> dict[str, Any]:
    """One hook per final state, keyed by the ``prefect.flow`` keyword that takes it."""
    return {
        "on_completion": _hook(RunStatus.FINISHED),
        "on_failure": _hook(RunStatus.FAILED),
        "on_crashed": _hook(RunStatus.FAILED, sweep_children=True),
        "on_cancellation": _hook(RunStatus.KILLED, sweep_children=True),
    }
