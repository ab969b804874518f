"""@flowml.flow / @flowml.task on a real Prefect server, logging to a real SQLite store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect import Flow, Task
from prefect import flow as prefect_flow
from prefect import task as prefect_task

import flowml
from flowml.client import FlowmlClient
from flowml.entities import Run
from flowml.orchestration import FlowmlTask, flow, task
from flowml.orchestration._hooks import flow_hooks

pytestmark = pytest.mark.usefixtures("pipeline_env")


def runs_of(experiment: str) -> list[Run]:
    client = FlowmlClient()
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment!r} was not created"
    return list(client.search_runs([found.experiment_id], "", max_results=1000))


def by_parent(runs: list[Run], parent: str) -> list[Run]:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]


def flow_run_of(runs: list[Run]) -> Run:
    (top,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return top


# -- decorator shapes ----------------------------------------------------------------------------------
def test_bare_and_called_decorators_return_real_prefect_objects() -> None:
    @flow
    def bare_flow(x: int = 1) -> int:
        return x

    @flow(name="called", retries=1, experiment="e")
    def called_flow(x: int, y: str = "a") -> int:
        return x

    @task
    def bare_task(a: int) -> int:
        return a

    @task(retries=2, name="renamed", log="parent")
    def called_task(a: int, **extra: Any) -> int:
        return a

    assert isinstance(bare_flow, Flow) and isinstance(called_flow, Flow)
    assert called_flow.name == "called" and called_flow.retries == 1
    assert set(called_flow.parameters.properties) == {"x", "y"}  # the UI's parameter form
    assert called_flow.parameters.required == ["x"]
    assert isinstance(bare_task, Task) and isinstance(bare_task, FlowmlTask)
    assert called_task.name == "renamed" and called_task.retries == 2 and called_task.flowml_log == "parent"
    again = called_task.with_options(retries=0)
    assert isinstance(again, FlowmlTask) and again.flowml_log == "parent"
    assert bare_task.fn.__wrapped__(3) == 3  # type: ignore[attr-defined]


def test_misuse_raises_clear_errors() -> None:
    @prefect_task
    def plain_task() -> None: ...

    @prefect_flow
    def plain_flow() -> None: ...

    with pytest.raises(TypeError, match=r"replace @prefect\.task with @flowml\.task"):
        task(plain_task)
    with pytest.raises(TypeError, match="not a Prefect flow"):
        flow(plain_flow)
    with pytest.raises(TypeError, match="pass options by keyword"):
        task("train")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="log must be 'child'"):
        task(log="both")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="reserves the parameter name 'flowml_context'"):

        @task
        def clash(flowml_context: int) -> None: ...

    with pytest.raises(TypeError, match="generator"):

        @task
        def gen() -> Any:
            yield 1


# -- flows ---------------------------------------------------------------------------------------------
def test_flow_run_opens_tracking_run_with_params_tags_and_fluent_logging() -> None:
    @flow(experiment="decorated")
    def pipeline(n: int = 3, label: str = "a", sizes: list[int] | None = None) -> str:
        flowml.log_metric("inside", 1.5)
        flowml.set_tag("custom", "yes")
        active = flowml.active_run()
        assert active is not None
        return active.run_id

    run_id = pipeline(n=4, sizes=[1, 2])
    run = FlowmlClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.data.params == {"n": "4", "label": "a", "sizes": "[1, 2]"}
    assert run.data.metrics["inside"] == 1.5
    tags = run.data.tags
    assert tags["custom"] == "yes" and tags["flowml.prefect.flow_name"] == "pipeline"
    assert run.info.run_name == tags["flowml.prefect.flow_run_name"]
    flow_run_id = tags["flowml.prefect.flow_run_id"]
    assert tags["flowml.prefect.flow_run_url"].endswith(f"/runs/flow-run/{flow_run_id}")
    assert runs_of("decorated")[0].info.run_id == run_id
    assert flowml.active_run() is None  # the flow's run is not left active in the caller


def test_failed_flow_and_failed_final_state_mark_the_run_failed() -> None:
    @task
    def boom() -> None:
        raise ValueError("bad")

    @flow(experiment="fails")
    def raises() -> None:
        raise RuntimeError("flow body failed")

    @flow(experiment="fails")
    def returns_failed_future() -> Any:
        return boom.submit()  # the body returns normally, the final state is Failed

    with pytest.raises(RuntimeError):
        raises()
    with pytest.raises(ValueError, match="bad"):
        returns_failed_future()
    statuses = sorted(r.info.status for r in runs_of("fails"))
    assert statuses == ["FAILED", "FAILED", "FAILED"]  # two flow runs, one task child run


def test_runner_side_hooks_end_running_runs_of_the_flow_run() -> None:
    """The runner (serve / worker) calls on_cancellation with keywords in a process that never saw the run."""
    client = FlowmlClient()
    exp = client.create_experiment("cancelled")
    tag = {"flowml.prefect.flow_run_id": "11111111-2222-3333-4444-555555555555"}
    parent = client.create_run(exp, tags=tag).info.run_id
    child = client.create_run(exp, tags={**tag, "mlflow.parentRunId": parent}).info.run_id
    other = client.create_run(exp).info.run_id
    fake_run = SimpleNamespace(id=tag["flowml.prefect.flow_run_id"])
    flow_hooks()["on_cancellation"](flow=None, flow_run=fake_run, state=None)
    assert client.get_run(parent).info.status == "KILLED"
    assert client.get_run(child).info.status == "KILLED"
    assert client.get_run(other).info.status == "RUNNING"
    flow_hooks()["on_crashed"](None, SimpleNamespace(id="no-such-run"), None)  # never raises


def test_subflow_and_flow_fn_nest_under_the_callers_run() -> None:
    @flow
    def inner(k: int) -> str:
        active = flowml.active_run()
        assert active is not None
        return active.run_id

    @flow(experiment="nesting")
    def outer() -> tuple[str, str]:
        active = flowml.active_run()
        assert active is not None
        return active.run_id, inner(2)

    outer_id, inner_id = outer()
    inner_run = FlowmlClient().get_run(inner_id)
    assert inner_run.data.tags["mlflow.parentRunId"] == outer_id
    assert inner_run.info.experiment_id == FlowmlClient().get_run(outer_id).info.experiment_id
    assert inner_run.info.status == "FINISHED"

    direct_id = inner.fn(5)  # no engine: the wrapper ends the run itself
    direct = FlowmlClient().get_run(direct_id)
    assert direct.info.status == "FINISHED" and direct.data.params == {"k": "5"}


# -- tasks ---------------------------------------------------------------------------------------------
def test_task_child_runs_for_call_submit_and_map() -> None:
    @task(log_outputs=True)
    def train(x: int, name: str = "m", data: list[int] | None = None) -> dict[str, Any]:
        flowml.log_metric("seen", x)
        return {"score": x * 2, "label": "text", "flag": True}

    @flow(experiment="tasks")
    def pipeline() -> str:
        train(1, data=[1, 2])
        train.submit(2).wait()
        train.map([3, 4]).wait()
        active = flowml.active_run()
        assert active is not None
        return active.run_id

    parent_id = pipeline()
    runs = runs_of("tasks")
    children = by_parent(runs, parent_id)
    assert sorted(int(r.data.params["x"]) for r in children) == [1, 2, 3, 4]
    for child in children:
        x = int(child.data.params["x"])
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == {"x", "name"}  # the list input is not a scalar
        assert child.data.metrics["seen"] == x and child.data.metrics["score"] == 2 * x
        assert set(child.data.metrics) == {"seen", "score", "duration_s"}
        assert child.data.tags["flowml.prefect.attempt"] == "1"
        assert child.data.tags["flowml.prefect.task_name"] == "train"
        assert child.info.run_name == child.data.tags["flowml.prefect.task_run_name"]
        assert (
            child.data.tags["flowml.prefect.flow_run_id"]
            == flow_run_of(runs).data.tags["flowml.prefect.flow_run_id"]
        )


def test_retries_open_one_child_run_per_attempt() -> None:
    attempts: list[int] = []

    @task(retries=2, retry_delay_seconds=0)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)} fails")
        return x

    @flow(experiment="retries")
    def pipeline() -> int:
        return flaky(7)

    assert pipeline() == 7
    children = [r for r in runs_of("retries") if "mlflow.parentRunId" in r.data.tags]
    by_attempt = {r.data.tags["flowml.prefect.attempt"]: r.info.status for r in children}
    assert by_attempt == {"1": "FAILED", "2": "FAILED", "3": "FINISHED"}
    assert len({r.data.tags["flowml.prefect.task_run_id"] for r in children}) == 1


def test_parent_mode_logs_into_the_flow_run() -> None:
    @task(log="parent", log_outputs=True)
    def evaluate(x: float) -> dict[str, float]:
        flowml.log_metric("from_task", x)
        return {"accuracy": x}

    @flow(experiment="parent-mode")
    def pipeline() -> None:
        evaluate(0.25)
        evaluate.submit(0.5).wait()

    pipeline()
    (run,) = runs_of("parent-mode")
    assert run.data.metrics["accuracy"] in (0.25, 0.5) and run.data.metrics["from_task"] in (0.25, 0.5)
    history = FlowmlClient().get_metric_history(run.info.run_id, "accuracy")
    assert sorted(m.value for m in history) == [0.25, 0.5]
    assert run.data.params == {}


def test_async_flow_and_async_tasks() -> None:
    @task(log_outputs=True)
    async def fetch(i: int) -> dict[str, int]:
        await asyncio.sleep(0)
        flowml.log_metric("i", i)
        return {"double": 2 * i}

    @flow(experiment="async")
    async def pipeline() -> int:
        first = await fetch(1)
        rest = [f.result() for f in fetch.map([2, 3])]
        return first["double"] + sum(r["double"] for r in rest)

    assert asyncio.run(pipeline()) == 12
    runs = runs_of("async")
    children = by_parent(runs, flow_run_of(runs).info.run_id)
    assert sorted(r.data.metrics["double"] for r in children) == [2, 4, 6]
    assert all(r.data.metrics["i"] * 2 == r.data.metrics["double"] for r in children)
    assert flow_run_of(runs).info.status == "FINISHED"


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs")
def test_task_outside_a_flow_logs_a_standalone_or_nested_run() -> None:
    @task
    def step(x: int) -> int:
        return x + 1

    assert step(1) == 2
    client = FlowmlClient()
    (standalone,) = client.search_runs(["0"], "tags.`flowml.orchestration.standalone` = 'true'")
    assert standalone.data.params == {"x": "1"} and standalone.info.status == "FINISHED"

    with flowml.start_run() as outer:
        step(2)
    (nested,) = client.search_runs(["0"], f"tags.`mlflow.parentRunId` = '{outer.info.run_id}'")
    assert nested.data.params == {"x": "2"}
    assert "flowml.orchestration.standalone" not in nested.data.tags


PROCESS_POOL_SCRIPT = """
import os
import flowml
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner
from flowml.orchestration import flow, task

@task(log_outputs=True)
def square(x: int) -> dict:
    flowml.set_tag("pid", os.getpid())
    return {"square": x * x}

@flow(experiment="processes", task_runner=ProcessPoolTaskRunner(max_workers=2))
def pipeline() -> None:
    square.map([1, 2, 3]).wait()
    print("PARENT", flowml.active_run().run_id, os.getpid())

if __name__ == "__main__":
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        pipeline()
"""


@pytest.mark.slow
def test_process_pool_task_runner_receives_the_context_by_value(
    prefect_api: str, tmp_path: Path, tracking: str
) -> None:
    """In a fresh process whose environment names the Prefect API (worker processes read it from there)."""
    script = tmp_path / "process_pool_flow.py"
    script.write_text(PROCESS_POOL_SCRIPT)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parent_id, parent_pid = next(
        line.split()[1:] for line in done.stdout.splitlines() if line.startswith("PARENT")
    )
    children = by_parent(runs_of("processes"), parent_id)
    assert sorted(r.data.metrics["square"] for r in children) == [1, 4, 9]
    assert parent_pid not in {r.data.tags["pid"] for r in children}  # they ran in worker processes
