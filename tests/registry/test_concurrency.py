"""Several processes promoting versions of one model at once never leave two in Production."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import flowml

_PROMOTER = textwrap.dedent(
    """
    import sys
    import flowml
    client = flowml.FlowmlClient()
    versions = sys.argv[1].split(",")
    for _ in range(int(sys.argv[2])):
        for v in versions:
            client.transition_model_version_stage("m", v, "Production", archive_existing_versions=True)
            client.set_registered_model_alias("m", "champion", v)
    """
)


@pytest.mark.slow
def test_processes_racing_archive_existing_transitions(flowml_env: str, artifact_root: str) -> None:
    client = flowml.FlowmlClient()
    client.create_registered_model("m")
    run = client.create_run("0")
    n_procs, per_proc = 4, 3
    for _ in range(n_procs * per_proc):
        client.create_model_version("m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env.update(FLOWML_TRACKING_URI=flowml_env, FLOWML_ARTIFACT_ROOT=artifact_root)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PROMOTER,
                ",".join(str(p * per_proc + i + 1) for i in range(per_proc)),
                "3",
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(n_procs)
    ]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * n_procs, errors
    versions = client.search_model_versions("name = 'm'")
    assert sum(mv.current_stage == "Production" for mv in versions) == 1
    # replay the outbox in id order: it must end in the state the table holds
    stages: dict[str, str] = {mv.version: "None" for mv in versions}
    champion = None
    for event in client.list_registry_events(name="m", max_results=10_000):
        if event.event_type == "model_version.stage_changed":
            assert stages[event.version] == event.payload["from_stage"]
            stages[event.version] = event.payload["to_stage"]
        elif event.event_type == "alias.moved":
            assert event.payload["from_version"] == champion
            champion = event.payload["to_version"]
    assert stages == {mv.version: mv.current_stage for mv in versions}
    assert champion == client.get_model_version_by_alias("m", "champion").version
