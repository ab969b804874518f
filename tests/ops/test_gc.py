"""``flowml gc`` on a local artifact store, on SQLite and PostgreSQL.

The scenario (``populate`` in conftest.py), experiment gc-a unless noted, "old" = deleted 40 days ago:

* ``registered``: old, deleted; ``model/`` is registered as m1 v1 → only ``model/`` survives, rows kept.
* ``plain``: old, deleted, nothing uses it → all its files go (and its rows with ``delete_rows``).
* ``recent``: deleted 1 day ago → untouched with ``--older-than 30d``.
* ``active``: never deleted → untouched.
* ``deployed``: old, deleted; m2 v1 (``runs:/deployed/model``) was deleted from the registry but a
  SERVING deployment record still names it → ``model/`` survives (found through the outbox event).
* experiment gc-b, deleted 40 days ago: run ``in_deleted_exp`` goes; logged model
  ``lm_active_in_deleted_exp`` goes; ``lm_registered`` (source of m3 v1) stays, so gc-b's row stays.
* ``lm_deleted``: a deleted logged model in gc-a → its files go.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.ops.gc import GarbageCollector, parse_older_than
from tests.ops.conftest import Store, age, populate, row_count, snapshot


@pytest.fixture
def scenario(flowml_env: str) -> tuple[Any, Store]:
    from flowml.client import FlowmlClient

    client = FlowmlClient()
    return client, populate(client, flowml_env)


def _files(path: Path) -> set[str]:
    return (
        {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} if path.exists() else set()
    )


def test_parse_older_than_follows_mlflow() -> None:
    assert parse_older_than("1d2h3m4s") == ((24 + 2) * 3600 + 3 * 60 + 4) * 1000
    assert parse_older_than("30d") == 30 * 24 * 3600 * 1000
    assert parse_older_than("1.5h") == 90 * 60 * 1000
    assert parse_older_than(None) is None
    for bad in ("", "abc", "3w", "1d-2h", "d"):
        with pytest.raises(InvalidParameterValue) as err:
            parse_older_than(bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_dry_run_lists_everything_and_deletes_nothing(
    scenario: tuple[Any, Store], flowml_env: str, artifact_root: str
) -> None:
    _client, s = scenario
    before, rows_before = snapshot(artifact_root), row_count(flowml_env, "runs")
    gc = GarbageCollector(flowml_env)
    report = gc.run(gc.plan("30d"), dry_run=True, delete_rows=True)
    gc.close()
    assert snapshot(artifact_root) == before
    assert row_count(flowml_env, "runs") == rows_before
    by_id = {o.item.id: o for o in report.outcomes}
    assert set(by_id) == {
        s.runs["registered"], s.runs["plain"], s.runs["deployed"], s.runs["in_deleted_exp"],
        s.models["lm_active_in_deleted_exp"].model_id, s.models["lm_registered"].model_id,
        s.models["lm_deleted"].model_id,
    }  # fmt: skip
    assert by_id[s.runs["plain"]].result.files == 2
    assert by_id[s.runs["registered"]].result.files == 2  # plots/loss.txt, data/big.bin
    assert by_id[s.runs["registered"]].result.kept_files == 2
    assert by_id[s.runs["registered"]].item.keep == ("model",)
    assert by_id[s.models["lm_registered"].model_id].item.keep == ("",)
    assert report.rows == {"runs": 2, "logged_models": 2, "experiments": 1}


def test_gc_deletes_unused_files_and_keeps_what_models_and_deployments_use(
    scenario: tuple[Any, Store], flowml_env: str
) -> None:
    client, s = scenario
    gc = GarbageCollector(flowml_env)
    report = gc.run(gc.plan("30d"), dry_run=False)
    gc.close()
    assert not report.errors and not report.rows

    assert _files(s.dirs["registered"]) == {"model/MLmodel", "model/model.pkl"}
    assert not s.dirs["plain"].exists() and not s.dirs["plain"].parent.exists()  # <exp>/<run_id> too
    assert _files(s.dirs["recent"]) == {"c.txt"}
    assert _files(s.dirs["active"]) == {"d.txt"}
    assert _files(s.dirs["deployed"]) == {"model/MLmodel", "model/model.pkl"}
    assert not s.dirs["in_deleted_exp"].exists()
    for key, survives in (
        ("lm_active_in_deleted_exp", False),
        ("lm_registered", True),
        ("lm_deleted", False),
    ):
        assert Path(s.models[key].artifact_location).exists() is survives, key

    # What the registry serves still loads: m1 v1's files and m3 v1's logged model.
    m1 = Path(client.get_model_version_download_uri("m1", "1"))
    assert (m1 / "MLmodel").read_text() == "flavors: {}\n"
    assert (Path(client.get_model_version_download_uri("m3", "1")) / "model.bin").stat().st_size == 100
    # gc without delete_rows leaves every row in place
    assert row_count(flowml_env, "runs", "run_id = :r", r=s.runs["plain"]) == 1


def test_delete_rows_removes_unprotected_rows_only_and_a_rerun_is_a_no_op(
    scenario: tuple[Any, Store], flowml_env: str, artifact_root: str
) -> None:
    _client, s = scenario
    gc = GarbageCollector(flowml_env)
    report = gc.run(gc.plan("30d"), dry_run=False, delete_rows=True)
    assert not report.errors
    assert report.rows == {"runs": 2, "logged_models": 2, "experiments": 0}  # gc-b still holds lm_registered

    def exists(name: str) -> bool:
        return row_count(flowml_env, "runs", "run_id = :r", r=s.runs[name]) == 1

    assert not exists("plain") and not exists("in_deleted_exp")
    assert exists("registered") and exists("deployed") and exists("recent") and exists("active")
    assert row_count(flowml_env, "metrics", "run_id = :r", r=s.runs["plain"]) == 0
    assert row_count(flowml_env, "metrics", "run_id = :r", r=s.runs["in_deleted_exp"]) == 0
    assert row_count(flowml_env, "metrics", "run_id = :r", r=s.runs["recent"]) == 1
    assert row_count(flowml_env, "artifact_files", "run_id = :r", r=s.runs["plain"]) == 0
    assert row_count(flowml_env, "logged_models", "model_id = :m", m=s.models["lm_deleted"].model_id) == 0
    assert row_count(flowml_env, "logged_models", "model_id = :m", m=s.models["lm_registered"].model_id) == 1
    assert row_count(flowml_env, "experiments", "experiment_id = :e", e=int(s.experiments["b"])) == 1

    after = snapshot(artifact_root)
    again = gc.run(gc.plan("30d"), dry_run=False, delete_rows=True)
    gc.close()
    assert not again.errors
    assert snapshot(artifact_root) == after
    assert sum(o.result.files for o in again.outcomes if o.result) == 0
    assert again.rows == {"runs": 0, "logged_models": 0, "experiments": 0}


def test_an_experiment_is_hard_deleted_once_nothing_in_it_is_protected(flowml_env: str) -> None:
    from flowml.client import FlowmlClient

    client = FlowmlClient()
    exp = client.create_experiment("gone")
    run_id = client.create_run(exp).info.run_id
    client.log_text(run_id, "x", "x.txt")
    client.delete_experiment(exp)
    age(flowml_env, days=2, experiments=[exp])
    gc = GarbageCollector(flowml_env)
    report = gc.run(gc.plan("1d", experiment_ids=[exp]), dry_run=False, delete_rows=True)
    gc.close()
    assert report.rows == {"runs": 1, "logged_models": 0, "experiments": 1}
    assert row_count(flowml_env, "experiments", "experiment_id = :e", e=int(exp)) == 0
    assert row_count(flowml_env, "experiments", "experiment_id = 0") == 1


def test_a_run_restored_after_the_plan_is_skipped(scenario: tuple[Any, Store], flowml_env: str) -> None:
    client, s = scenario
    gc = GarbageCollector(flowml_env)
    plan = gc.plan("30d")
    client.restore_run(s.runs["plain"])
    report = gc.run(plan, dry_run=False, delete_rows=True)
    gc.close()
    skipped = {o.item.id: o.skipped for o in report.outcomes if o.skipped}
    assert skipped == {s.runs["plain"]: "no longer deleted (restored since the plan)"}
    assert _files(s.dirs["plain"]) == {"a.txt", "sub/b.txt"}
    assert row_count(flowml_env, "runs", "run_id = :r", r=s.runs["plain"]) == 1


def test_explicit_ids_follow_mlflow_rules(scenario: tuple[Any, Store], flowml_env: str) -> None:
    _client, s = scenario
    gc = GarbageCollector(flowml_env)
    with pytest.raises(InvalidParameterValue, match="not in `deleted` lifecycle stage"):
        gc.plan(run_ids=[s.runs["active"]])
    with pytest.raises(InvalidParameterValue, match="not older than"):
        gc.plan("30d", run_ids=[s.runs["recent"]])
    with pytest.raises(ResourceDoesNotExist):
        gc.plan(run_ids=["0" * 32])
    with pytest.raises(InvalidParameterValue, match="not in the deleted lifecycle stage"):
        gc.plan(experiment_ids=[s.experiments["a"]])
    plan = gc.plan("30d", run_ids=[s.runs["plain"]])
    assert [i.id for i in plan.items] == [s.runs["plain"]]
    plan = gc.plan(run_ids=[s.runs["recent"]])  # no age limit: any deleted run
    assert [i.id for i in plan.items] == [s.runs["recent"]]
    gc.close()


def test_gc_never_creates_a_store(tmp_path: Path) -> None:
    gc = GarbageCollector(f"sqlite:///{tmp_path / 'typo.db'}")
    with pytest.raises(ResourceDoesNotExist):
        gc.plan()
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_cli_is_a_dry_run_unless_yes(
    scenario: tuple[Any, Store], flowml_env: str, artifact_root: str
) -> None:
    _client, s = scenario
    before = snapshot(artifact_root)
    cmd = [sys.executable, "-m", "flowml.cli", "gc", "--backend-store-uri", flowml_env, "--older-than", "30d"]
    dry = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "Nothing was deleted" in dry.stdout
    assert f"would delete run {s.runs['plain']}" in dry.stdout
    assert "kept: registered model 'm1' version 1 uses model" in dry.stdout
    assert snapshot(artifact_root) == before
    real = subprocess.run([*cmd, "--yes", "--delete-rows"], capture_output=True, text=True, check=True)
    assert f"deleted run {s.runs['plain']}" in real.stdout
    assert "database rows deleted: 2 runs, 2 logged models, 0 experiments" in real.stdout
    assert not s.dirs["plain"].exists()
    bad = subprocess.run([*cmd, "--run-ids", s.runs["active"]], capture_output=True, text=True)
    assert bad.returncode != 0 and "INVALID_PARAMETER_VALUE" in bad.stderr
    both = subprocess.run([*cmd, "--dry-run", "--yes"], capture_output=True, text=True)
    assert both.returncode == 2


def test_canonical_locations_follow_symlinks_with_and_without_the_cache(tmp_path: Path) -> None:
    from flowml.artifacts.sweep import canonical_location

    real = tmp_path / "real" / "root"
    (real / "1" / "run" / "artifacts").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (real / "1" / "alias").symlink_to(real / "1" / "run")
    cache: dict[str, str] = {}
    for uri in (
        f"{tmp_path}/link/root/1/run/artifacts",
        f"file://{tmp_path}/link/root/1/alias/artifacts/model",
        f"{tmp_path}/link/root/1/missing/artifacts",
    ):
        plain = uri.removeprefix("file://")
        assert canonical_location(uri, cache) == canonical_location(uri) == os.path.realpath(plain)
    assert canonical_location(f"{tmp_path}/link/root/1/alias/artifacts", cache) == str(
        real / "1" / "run" / "artifacts"
    )
    assert canonical_location("s3://bucket/a/b/") == "s3://bucket/a/b"
    assert canonical_location("mlflow-artifacts:/1/x") is None
    assert canonical_location("relative/path") is None


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_runs_logged_through_the_server_proxy_need_the_artifacts_destination(
    flowml_env: str, tmp_path: Path
) -> None:
    """A server that proxies artifacts gives runs mlflow-artifacts:/ URIs; gc resolves them against the
    server's --artifacts-destination, and refuses to guess without it."""
    from flowml.client import FlowmlClient
    from tests.fixtures.server import serve_in_thread

    dest = tmp_path / "server-artifacts"
    dest.mkdir()
    with serve_in_thread(flowml_env, str(dest)) as url:
        client = FlowmlClient(url)
        exp = client.create_experiment("proxied")
        kept, gone = (client.create_run(exp).info.run_id for _ in range(2))
        for run_id in (kept, gone):
            client.log_text(run_id, "flavors: {}\n", "model/MLmodel")
            client.log_text(run_id, "big", "checkpoints/1.bin")
        assert client.get_run(kept).info.artifact_uri.startswith("mlflow-artifacts:/")
        client.create_registered_model("proxied-model")
        client.create_model_version("proxied-model", f"runs:/{kept}/model", run_id=kept)
        client.delete_run(kept)
        client.delete_run(gone)
    age(flowml_env, days=2, runs=[kept, gone])
    before = snapshot(str(dest))

    with pytest.raises(InvalidParameterValue, match="--artifacts-destination"):
        GarbageCollector(flowml_env).plan("1d")
    assert snapshot(str(dest)) == before

    gc = GarbageCollector(flowml_env, artifacts_destination=str(dest))
    report = gc.run(gc.plan("1d"), dry_run=False, delete_rows=True)
    gc.close()
    assert not report.errors and report.rows["runs"] == 1
    left = set(snapshot(str(dest)))
    assert left == {f"{exp}/{kept}/artifacts/model/MLmodel"}
