"""Projects compiled to Prefect flows and run in process against the session's Prefect server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import pytest
from click.testing import CliRunner

import flowml.projects as projects
from flowml.client import FlowmlClient
from flowml.entities import Run
from flowml.projects._execute import FLOW_RUN_ID_TAG, FLOW_RUN_URL_TAG, state_hook
from tests.projects.conftest import WINE, MakeProject

pytestmark = pytest.mark.usefixtures("prefect_api", "tracking")

SEED_TRAIN = """
    import argparse
    import flowml as mlflow

    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float)
    parser.add_argument("--batch_size", type=int)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    with mlflow.start_run():
        mlflow.log_metric("lr_times_batch", args.learning_rate * args.batch_size)
        mlflow.set_tag("note", args.note)
    print("trained", args.learning_rate, args.batch_size)
"""


def _runs(experiment: str = "0") -> list[Run]:
    return list(FlowmlClient().search_runs([experiment], max_results=100))


def _flow_run_state(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    assert state is not None
    return str(state.type.value)


def test_example_project_logs_params_metrics_and_project_tags(prefect_api: str) -> None:
    submitted = projects.run(str(WINE), parameters={"C": "0.5", "max_iter": 300}, experiment_name="wine")
    run = FlowmlClient().get_run(submitted.run_id or "")
    assert run.info.status == "FINISHED" and submitted.status == "FINISHED"
    assert run.data.params == {"C": "0.5", "max_iter": "300", "test_size": "0.25", "data": ""}
    assert run.data.metrics["accuracy"] > 0.8 and set(run.data.metrics) >= {"f1_macro", "log_loss"}
    tags = run.data.tags
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.source.name"]
    assert tags["mlflow.source.git.commit"]  # the example lives in flowml's repository
    assert tags[FLOW_RUN_ID_TAG] == submitted.flow_run_id
    assert tags[FLOW_RUN_URL_TAG].startswith(prefect_api.removesuffix("/api"))
    assert tags[FLOW_RUN_URL_TAG].endswith(f"/runs/flow-run/{submitted.flow_run_id}")
    assert FlowmlClient().get_experiment(run.info.experiment_id).name == "wine"
    assert _flow_run_state(submitted.flow_run_id or "") == "COMPLETED"


def test_seed_style_project_runs_unchanged(make_project: MakeProject) -> None:
    root = make_project(
        """
        name: my_project

        conda_env: conda.yaml

        entry_points:
          main:
            parameters:
              learning_rate: float
              batch_size: int
            command: "python train.py --learning_rate {learning_rate} --batch_size {batch_size}"
        """,
        conda__yaml="name: my_project\ndependencies: [python=3.7, scikit-learn, mlflow]\n",
        train__py=SEED_TRAIN,
    )
    params = {"learning_rate": "0.01", "batch_size": "32", "note": "extra param, appended"}
    submitted = projects.run(str(root), parameters=params)
    run = FlowmlClient().get_run(submitted.run_id or "")
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {"lr_times_batch": pytest.approx(0.32)}
    assert run.data.params == {"learning_rate": "0.01", "batch_size": "32", "note": "extra param, appended"}
    assert run.data.tags["note"] == "extra param, appended"
    assert run.data.tags["mlflow.project.env"] == "local"  # conda_env is ignored by env_manager=local


def test_bad_parameter_fails_before_anything_runs(make_project: MakeProject) -> None:
    root = make_project("name: p\nentry_points: {main: {parameters: {n: int}, command: 'touch ran'}}\n")
    with pytest.raises(projects.ProjectSpecError, match="parameter 'n' expects an int, got 'ten'"):
        projects.run(str(root), parameters={"n": "ten"})
    with pytest.raises(projects.ProjectSpecError, match="Could not find entry point 'train'"):
        projects.run(str(root), "train", parameters={"n": 1})
    assert _runs() == [] and not (root / "ran").exists()


def test_failing_command_fails_the_flow_and_the_run(make_project: MakeProject) -> None:
    root = make_project(None, fail__sh="echo about to fail\necho boom >&2\nexit 3\n")
    with pytest.raises(
        projects.ExecutionError, match=r"exited with code 3\. Last output:\nabout to fail\nboom"
    ):
        projects.run(str(root), "fail.sh")
    (run,) = _runs()
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.project.entryPoint"] == "fail.sh"
    assert _flow_run_state(run.data.tags[FLOW_RUN_ID_TAG]) == "FAILED"


DAG = """
    name: dag
    entry_points:
      make:
        parameters: {n: int}
        command: 'echo "value=$(({n} * 2))" >> "$FLOWML_STEP_OUTPUTS"'
      use:
        parameters: {value: int, upstream_run: string, tag: {type: string, default: x}}
        command: "python use.py {value} {upstream_run} {tag}"
      fail:
        command: "exit 1"
    flowml:
      parameters: {n: {type: int, default: 4}, tag: {type: string, default: from-pipeline}}
      steps:
        make: {parameters: {n: "{n}"}}
        left:
          entry_point: use
          depends_on: [make]
          parameters: {value: "{steps.make.outputs.value}", upstream_run: "{steps.make.run_id}"}
        right:
          entry_point: use
          depends_on: [make]
          parameters: {value: "{n}", upstream_run: "{steps.make.run_id}", tag: literal}
"""
USE = """
    import sys
    import flowml as mlflow
    with mlflow.start_run():
        mlflow.log_metric("value", float(sys.argv[1]))
        mlflow.set_tag("upstream", sys.argv[2])
        mlflow.set_tag("tag", sys.argv[3])
"""


def test_steps_run_as_a_dag_with_child_runs_and_passed_values(make_project: MakeProject) -> None:
    root = make_project(DAG, use__py=USE)
    submitted = projects.run(str(root), "pipeline", parameters={"n": 5})
    assert submitted.result is not None
    steps = submitted.result["steps"]
    assert set(steps) == {"make", "left", "right"} and steps["make"]["outputs"] == {"value": "10"}
    parent = FlowmlClient().get_run(submitted.run_id or "")
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"n": "5", "tag": "from-pipeline"}
    assert parent.data.tags["mlflow.project.entryPoint"] == "pipeline"
    children = {r.data.tags["flowml.project.step"]: r for r in _runs() if r.info.run_id != submitted.run_id}
    assert set(children) == {"make", "left", "right"}
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        assert child.info.run_name == name
        assert child.data.tags["mlflow.parentRunId"] == submitted.run_id
        assert child.data.tags[FLOW_RUN_ID_TAG] == submitted.flow_run_id
        assert child.data.tags["flowml.prefect.task_run_id"]
    make_id = children["make"].info.run_id
    assert children["left"].data.metrics == {"value": 10.0}  # output of `make`
    assert children["left"].data.tags["upstream"] == make_id
    assert children["left"].data.tags["tag"] == "from-pipeline"  # same-named pipeline parameter flows in
    assert (
        children["right"].data.metrics == {"value": 5.0} and children["right"].data.tags["tag"] == "literal"
    )
    assert children["left"].data.tags["mlflow.project.entryPoint"] == "use"


def test_a_failing_step_fails_the_parent_and_skips_its_dependents(make_project: MakeProject) -> None:
    text = DAG.replace("right:\n", "boom: {entry_point: fail, depends_on: [make]}\n        after:\n").replace(
        'depends_on: [make]\n          parameters: {value: "{n}"',
        'depends_on: [boom]\n          parameters: {value: "{n}"',
    )
    root = make_project(text, use__py=USE)
    with pytest.raises(projects.ExecutionError, match="exit 1"):
        projects.run(str(root), "pipeline")
    by_step = {r.data.tags.get("flowml.project.step"): r.info.status for r in _runs()}
    assert by_step == {None: "FAILED", "make": "FINISHED", "left": "FINISHED", "boom": "FAILED"}


def test_asynchronous_run_and_state_hooks(make_project: MakeProject) -> None:
    root = make_project(None, slow__sh="sleep 0.5\n")
    submitted = projects.run(str(root), "slow.sh", synchronous=False)
    assert submitted.run_id is not None and submitted.get_status() == "RUNNING"
    assert submitted.wait(timeout=60) and submitted.status == "FINISHED"
    # A flow run cancelled or crashed from outside: the runner calls the hooks with keywords.
    client = FlowmlClient()
    run = client.create_run("0", tags={FLOW_RUN_ID_TAG: "fr-123"})
    state_hook("KILLED")(flow=None, flow_run=SimpleNamespace(id="fr-123"), state=None)
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    state_hook("FAILED")(None, SimpleNamespace(id="fr-123"), None)  # already ended: left alone
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_git_project_runs_with_version_and_git_tags(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "proj").mkdir(parents=True)
    (repo / "proj" / "MLproject").write_text("name: g\nentry_points: {main: {command: 'python run.py'}}\n")
    (repo / "proj" / "run.py").write_text(
        "import flowml as mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('m', 1)\n"
    )
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "c"],
        ["branch", "release"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    submitted = projects.run(f"file://{repo}#proj", version="release")
    run = FlowmlClient().get_run(submitted.run_id or "")
    assert run.data.metrics == {"m": 1.0}
    assert run.data.tags["mlflow.source.git.branch"] == "release"
    assert run.data.tags["mlflow.source.git.repoURL"] == f"file://{repo}"
    assert run.data.tags["mlflow.source.name"] == f"file://{repo}"
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40


def test_cli_run(make_project: MakeProject) -> None:
    from flowml.cli_projects import run as run_command

    root = make_project(None, hello__py="import sys\nprint('args', sys.argv[1:])\n")
    started = time.monotonic()
    result = CliRunner().invoke(
        run_command, [str(root), "-e", "hello.py", "-P", "who=world", "--experiment-name", "cli"]
    )
    assert result.exit_code == 0, result.output
    assert "finished" in result.output
    (run,) = _runs(FlowmlClient().get_experiment_by_name("cli").experiment_id)  # type: ignore[union-attr]
    assert run.data.params == {"who": "world"} and run.info.status == "FINISHED"
    bad = CliRunner().invoke(run_command, [str(root), "-e", "hello.py", "-P", "novalue"])
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output
    failing = CliRunner().invoke(run_command, [str(root), "-e", "missing.py"])
    assert failing.exit_code == 1 and "Could not find entry point 'missing.py'" in failing.output
    assert time.monotonic() - started < 30
