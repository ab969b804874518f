"""Model-registry semantics every client must share (runs once per backend: SQLite, PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from flowml.client._registry_backend import RegistryBackend
from flowml.entities_registry import ModelVersionStatus, RegistryEventType
from flowml.exceptions import FlowmlError


@pytest.fixture(autouse=True)
def _registry_backend(client) -> None:  # type: ignore[no-untyped-def]
    """Every backend (SQL and REST) implements the registry."""
    assert isinstance(client.backend, RegistryBackend)


def _err(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FlowmlError:
    with pytest.raises(FlowmlError) as err:
        fn(*args, **kwargs)
    return err.value


def _run(client, **metrics: float) -> Any:  # type: ignore[no-untyped-def]
    run = client.create_run("0")
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    return run


def _version(client, name: str, **metrics: float) -> Any:  # type: ignore[no-untyped-def]
    run = _run(client, **metrics)
    return client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)


# -- registered models --------------------------------------------------------------------------
def test_create_get_update_and_tags(client) -> None:
    model = client.create_registered_model("fraud", tags={"team": "risk", "n": 3}, description="d")
    assert model.name == "fraud" and model.description == "d"
    assert model.tags == {"team": "risk", "n": "3"}
    assert model.creation_timestamp == model.last_updated_timestamp
    assert model.latest_versions == () and model.aliases == {}
    assert client.update_registered_model("fraud", description="new").description == "new"
    client.set_registered_model_tag("fraud", "team", "ops")
    client.delete_registered_model_tag("fraud", "n")
    client.delete_registered_model_tag("fraud", "never-set")  # MLflow's SQL store: no error
    assert client.get_registered_model("fraud").tags == {"team": "ops"}


def test_duplicate_and_lookalike_names_are_refused(client) -> None:
    client.create_registered_model("prod-model")
    err = _err(client.create_registered_model, "prod-model")
    assert (err.error_code, err.http_status) == ("RESOURCE_ALREADY_EXISTS", 400)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "prod")  # NFKC folds it to "prod"
    for lookalike in ("PROD-MODEL", f"{fullwidth}-model"):
        assert _err(client.create_registered_model, lookalike).error_code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "..", " padded", "padded ", "prod%2Dmodel", "x\ny"])
def test_invalid_model_names(client, name: str) -> None:
    assert _err(client.create_registered_model, name).error_code == "INVALID_PARAMETER_VALUE"


def test_unknown_model_is_404(client) -> None:
    err = _err(client.get_registered_model, "nope")
    assert (err.error_code, err.http_status) == ("RESOURCE_DOES_NOT_EXIST", 404)
    assert _err(client.get_model_version, "nope", "1").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert (
        _err(client.create_model_version, "nope", "runs:/abc/model").error_code == "RESOURCE_DOES_NOT_EXIST"
    )


def test_rename_moves_versions_and_aliases(client) -> None:
    client.create_registered_model("old")
    _version(client, "old")
    client.set_registered_model_alias("old", "champion", "1")
    renamed = client.rename_registered_model("old", "new")
    assert renamed.name == "new" and renamed.aliases == {"champion": "1"}
    assert client.get_model_version("new", "1").name == "new"
    assert _err(client.get_registered_model, "old").error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model("other")
    assert _err(client.rename_registered_model, "new", "other").error_code == "RESOURCE_ALREADY_EXISTS"


def test_delete_registered_model_is_hard_and_keeps_the_audit(client) -> None:
    client.create_registered_model("gone")
    _version(client, "gone")
    client.delete_registered_model("gone")
    assert _err(client.get_registered_model, "gone").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_model_versions("name = 'gone'") == []
    types = [e.event_type for e in client.list_registry_events() if e.name == "gone"]
    assert types == [RegistryEventType.MODEL_VERSION_CREATED, RegistryEventType.REGISTERED_MODEL_DELETED]
    client.create_registered_model("gone")  # the name is free again, with a fresh history
    assert client.get_registry_history("gone") == []


# -- model versions -----------------------------------------------------------------------------
def test_create_model_version_from_a_run(client) -> None:
    client.create_registered_model("m")
    run = _run(client)
    mv = client.create_model_version(
        "m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags={"k": 1}, description="first"
    )
    assert (mv.name, mv.version, mv.current_stage, mv.status) == ("m", "1", "None", ModelVersionStatus.READY)
    assert mv.run_id == run.info.run_id and mv.tags == {"k": "1"} and mv.description == "first"
    assert mv.source == f"runs:/{run.info.run_id}/model"
    assert client.get_model_version_download_uri("m", 1) == f"{run.info.artifact_uri}/model"
    second = client.create_model_version("m", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    assert second.version == "2"
    assert client.get_model_version_download_uri("m", "2") == f"{run.info.artifact_uri}/model"


def test_update_delete_and_tags_of_versions(client) -> None:
    client.create_registered_model("m")
    _version(client, "m")
    _version(client, "m")
    assert client.update_model_version("m", 1, description="better").description == "better"
    client.set_model_version_tag("m", "1", "validated", "true")
    client.set_model_version_tag("m", "1", "gone", "x")
    client.delete_model_version_tag("m", "1", "gone")
    client.delete_model_version_tag("m", "1", "never-set")
    assert client.get_model_version("m", "1").tags == {"validated": "true"}
    client.set_registered_model_alias("m", "champion", "2")
    client.delete_model_version("m", "2")
    assert _err(client.get_model_version, "m", "2").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model("m").aliases == {}
    assert _version(client, "m").version == "3"  # deleted numbers are never reused
    assert _err(client.get_model_version, "m", "abc").error_code == "INVALID_PARAMETER_VALUE"


def test_get_latest_versions(client) -> None:
    client.create_registered_model("m")
    for _ in range(4):
        _version(client, "m")
    client.transition_model_version_stage("m", 1, "Production")
    client.transition_model_version_stage("m", 2, "staging")
    client.transition_model_version_stage("m", 3, "STAGING")
    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions("m")}
    assert latest == {"None": "4", "Staging": "3", "Production": "1"}
    assert [mv.version for mv in client.get_latest_versions("m", ["production", "Staging"])] == ["1", "3"]
    assert _err(client.get_latest_versions, "m", ["Live"]).error_code == "INVALID_PARAMETER_VALUE"
    model = client.get_registered_model("m")
    assert [(v.current_stage, v.version) for v in model.latest_versions] == [
        ("None", "4"),
        ("Staging", "3"),
        ("Production", "1"),
    ]


# -- sources ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "file:///etc",
        "/etc",
        "//etc",
        "file://localhost/etc",
        "file:/etc/passwd",
        "s3://bucket/x/../../y",
        "../x",
        "mlflow-artifacts://evil.example/x",
        "C:\\Windows",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_sources_outside_the_store_are_refused(client, source: str) -> None:
    client.create_registered_model("m")
    assert _err(client.create_model_version, "m", source).error_code == "INVALID_PARAMETER_VALUE"


def test_traversal_out_of_the_artifact_root_is_refused(client, artifact_root: str) -> None:
    client.create_registered_model("m")
    run, other = _run(client), _run(client)
    for source in (
        f"{artifact_root}/../../etc",
        f"{artifact_root}/%2e%2e/%2e%2e/etc",
        f"{artifact_root}/%252e%252e/etc",
        f"{run.info.artifact_uri}/model#/../../x",
    ):
        assert _err(client.create_model_version, "m", source).error_code == "INVALID_PARAMETER_VALUE"
    # with a run_id, only that run's artifacts (or its runs:/ URI) qualify
    rid = run.info.run_id
    assert (
        _err(client.create_model_version, "m", f"{other.info.artifact_uri}/model", run_id=rid).error_code
        == "INVALID_PARAMETER_VALUE"
    )
    assert (
        _err(client.create_model_version, "m", f"runs:/{other.info.run_id}/model", run_id=rid).error_code
        == "INVALID_PARAMETER_VALUE"
    )
    unknown = "0123456789abcdef0123456789abcdef"
    assert (
        _err(client.create_model_version, "m", f"runs:/{unknown}/m").error_code == "RESOURCE_DOES_NOT_EXIST"
    )


def test_accepted_sources(client) -> None:
    # The store's artifact root: a local directory in-process, mlflow-artifacts: behind a server.
    root = client.get_experiment("0").artifact_location.rsplit("/", 1)[0]
    client.create_registered_model("m")
    run = _run(client)
    assert client.create_model_version("m", f"{root}/shared/model").version == "1"
    second = f"file://{root}/shared/model" if root.startswith("/") else f"{root}/other/model"
    assert client.create_model_version("m", second).version == "2"
    assert client.create_model_version("m", "mlflow-artifacts:/0/abc/artifacts/model").version == "3"
    assert client.create_model_version("m", f"runs:/{run.info.run_id}/model").run_id is None
    client.set_registered_model_alias("m", "champion", "1")
    copy = client.create_model_version("m", "models:/m@champion")
    assert client.get_model_version_download_uri("m", copy.version) == f"{root}/shared/model"
    assert _err(client.create_model_version, "m", "models:/m/99").error_code == "RESOURCE_DOES_NOT_EXIST"


# -- search -----------------------------------------------------------------------------------
def test_search_registered_models(client) -> None:
    for name, team in (("alpha", "risk"), ("beta", "ops"), ("Gamma", "risk"), ("delta", "ops")):
        client.create_registered_model(name, tags={"team": team})
    assert [m.name for m in client.search_registered_models()] == ["Gamma", "alpha", "beta", "delta"]
    assert [m.name for m in client.search_registered_models("name LIKE '%a'")] == [
        "Gamma",
        "alpha",
        "beta",
        "delta",
    ]
    assert [m.name for m in client.search_registered_models("name ILIKE 'g%'")] == ["Gamma"]
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'")] == ["Gamma", "alpha"]
    assert [m.name for m in client.search_registered_models("name IN ('beta', 'delta')")] == ["beta", "delta"]
    client.update_registered_model("alpha", description="touched")
    newest = client.search_registered_models(order_by=["last_updated_timestamp DESC"], max_results=1)
    assert [m.name for m in newest] == ["alpha"]
    pages, token = [], None
    while True:
        page = client.search_registered_models(max_results=3, page_token=token, order_by=["name DESC"])
        pages.append([m.name for m in page])
        token = page.token
        if not token:
            break
    assert pages == [["delta", "beta", "alpha"], ["Gamma"]]
    assert _err(client.search_registered_models, "name > 'a'").error_code == "INVALID_PARAMETER_VALUE"
    assert _err(client.search_registered_models, max_results=1001).error_code == "INVALID_PARAMETER_VALUE"
    assert (
        _err(client.search_registered_models, order_by=["creation_timestamp"]).error_code
        == "INVALID_PARAMETER_VALUE"
    )


def test_search_model_versions(client) -> None:
    client.create_registered_model("a")
    client.create_registered_model("b")
    runs = [_run(client) for _ in range(3)]
    for r in runs:
        client.create_model_version("a", f"runs:/{r.info.run_id}/model", run_id=r.info.run_id)
    client.create_model_version("b", f"runs:/{runs[0].info.run_id}/model", run_id=runs[0].info.run_id)
    client.set_model_version_tag("a", "2", "validated", "true")
    keys = [(mv.name, mv.version) for mv in client.search_model_versions()]
    assert keys == [("a", "3"), ("a", "2"), ("a", "1"), ("b", "1")]
    assert [mv.version for mv in client.search_model_versions("name = 'a' AND version_number >= 2")] == [
        "3",
        "2",
    ]
    assert [mv.version for mv in client.search_model_versions("version_number > '2'")] == ["3"]
    assert [mv.version for mv in client.search_model_versions("tags.validated = 'true'")] == ["2"]
    rid = runs[0].info.run_id
    assert [(m.name, m.version) for m in client.search_model_versions(f"run_id IN ('{rid}')")] == [
        ("a", "1"),
        ("b", "1"),
    ]
    assert len(client.search_model_versions("source_path LIKE 'runs:/%'")) == 4
    ordered = client.search_model_versions("name = 'a'", order_by=["version_number ASC"])
    assert [mv.version for mv in ordered] == ["1", "2", "3"]
    client.delete_model_version("a", "3")
    seen, token = [], None
    while True:
        page = client.search_model_versions(max_results=1, page_token=token)
        seen += [(mv.name, mv.version) for mv in page]
        token = page.token
        if not token:
            break
    assert seen == [("a", "2"), ("a", "1"), ("b", "1")]
    assert (
        _err(client.search_model_versions, "current_stage = 'None'").error_code == "INVALID_PARAMETER_VALUE"
    )


# -- stages and aliases -------------------------------------------------------------------------
def test_transition_stages(client) -> None:
    client.create_registered_model("m")
    for _ in range(3):
        _version(client, "m")
    assert client.transition_model_version_stage("m", 1, "production").current_stage == "Production"
    assert client.transition_model_version_stage("m", 2, "Production").current_stage == "Production"
    moved = client.transition_model_version_stage("m", 3, "PRODUCTION", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")}
    assert stages == {"1": "Archived", "2": "Archived", "3": "Production"}
    err = _err(client.transition_model_version_stage, "m", 1, "Live")
    assert err.error_code == "INVALID_PARAMETER_VALUE"
    err = _err(client.transition_model_version_stage, "m", 1, "Archived", archive_existing_versions=True)
    assert err.error_code == "INVALID_PARAMETER_VALUE"
    assert (
        _err(client.transition_model_version_stage, "m", 9, "Staging").error_code == "RESOURCE_DOES_NOT_EXIST"
    )


def test_aliases(client) -> None:
    client.create_registered_model("m")
    for _ in range(3):
        _version(client, "m")
    client.set_registered_model_alias("m", "champion", 1)
    client.set_registered_model_alias("m", "challenger", "2")
    assert client.get_model_version_by_alias("m", "champion").version == "1"
    client.set_registered_model_alias("m", "champion", "2")  # moves
    assert client.get_model_version("m", "2").aliases == ("challenger", "champion")
    assert client.get_model_version("m", "1").aliases == ()
    assert client.get_registered_model("m").aliases == {"champion": "2", "challenger": "2"}
    assert client.get_model_version_by_alias("m", "latest").version == "3"
    assert client.get_model_version_by_alias("m", "LATEST").version == "3"
    for reserved in ("latest", "Latest", "v1", "V12"):
        assert (
            _err(client.set_registered_model_alias, "m", reserved, "1").error_code
            == "INVALID_PARAMETER_VALUE"
        )
    assert (
        _err(client.set_registered_model_alias, "m", "bad alias", "1").error_code == "INVALID_PARAMETER_VALUE"
    )
    assert _err(client.set_registered_model_alias, "m", "x", "9").error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model_alias("m", "challenger")
    client.delete_registered_model_alias("m", "challenger")  # already gone: no error
    err = _err(client.get_model_version_by_alias, "m", "challenger")
    assert (err.error_code, err.http_status) == ("INVALID_PARAMETER_VALUE", 400)


def test_models_uris_resolve(client) -> None:
    client.create_registered_model("m")
    for _ in range(3):
        _version(client, "m")
    client.transition_model_version_stage("m", 2, "Production")
    client.set_registered_model_alias("m", "champion", 1)
    resolve = client.resolve_model_uri
    assert resolve("models:/m/Production").version == "2"
    assert resolve("models:/m/production").version == "2"
    assert resolve("models:/m@champion").version == "1"
    assert resolve("models:/m/3").version == "3"
    assert resolve("models:/m/latest").version == "3"
    assert _err(resolve, "models:/m/Staging").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _err(resolve, "models:/m").error_code == "INVALID_PARAMETER_VALUE"


# -- history and events -------------------------------------------------------------------------
def test_history_records_who_moved_what_and_why(client) -> None:
    client.create_registered_model("m")
    _version(client, "m")
    _version(client, "m")
    client.transition_model_version_stage("m", 1, "Production", reason="first deploy")
    client.transition_model_version_stage(
        "m", 2, "Production", archive_existing_versions=True, reason="better"
    )
    client.set_registered_model_alias("m", "champion", "1")
    client.set_registered_model_alias("m", "champion", "2", reason="promote")
    client.delete_registered_model_alias("m", "champion", reason="rollback")
    rows = [
        (h.kind, h.version, h.alias, h.from_value, h.to_value, h.reason)
        for h in client.get_registry_history("m")
    ]
    assert rows == [
        ("created", "1", None, None, "None", None),
        ("created", "2", None, None, "None", None),
        ("stage", "1", None, "None", "Production", "first deploy"),
        ("stage", "2", None, "None", "Production", "better"),
        (
            "stage",
            "1",
            None,
            "Production",
            "Archived",
            "archive_existing_versions: version 2 moved to Production",
        ),
        ("alias", "1", "champion", None, "1", None),
        ("alias", "2", "champion", "1", "2", "promote"),
        ("alias", "2", "champion", "2", None, "rollback"),
    ]
    history = client.get_registry_history("m")
    assert all(h.user_id and h.timestamp > 0 for h in history)
    assert [h.kind for h in client.get_registry_history("m", version=1)] == [
        "created",
        "stage",
        "stage",
        "alias",
    ]


def test_events_in_commit_order_with_payloads(client) -> None:
    client.create_registered_model("m")
    run = _run(client)
    client.create_model_version("m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.transition_model_version_stage("m", 1, "Staging", reason="qa")
    client.set_registered_model_alias("m", "champion", 1)
    client.delete_registered_model_alias("m", "champion")
    client.create_registered_model("other")
    _version(client, "other")
    events = client.list_registry_events(name="m")
    assert [e.event_type for e in events] == [
        "model_version.created",
        "model_version.stage_changed",
        "alias.moved",
        "alias.deleted",
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    created, staged, moved, deleted = events
    assert created.payload["run_id"] == run.info.run_id
    assert created.payload["storage_location"] == f"{run.info.artifact_uri}/model"
    assert (staged.payload["from_stage"], staged.payload["to_stage"], staged.payload["reason"]) == (
        "None",
        "Staging",
        "qa",
    )
    assert (moved.payload["alias"], moved.payload["from_version"], moved.payload["to_version"]) == (
        "champion",
        None,
        "1",
    )
    assert (deleted.payload["from_version"], deleted.payload["to_version"]) == ("1", None)
    assert all(e.payload["actor"] and e.delivered_time is None and e.attempts == 0 for e in events)
    assert [e.name for e in client.list_registry_events(after_id=events[-1].id)] == ["other"]


# -- promotion gates --------------------------------------------------------------------------
_POLICY = {
    "to": ["Production", "@champion"],
    "rules": [
        {"metric": "rmse", "op": "<=", "compare_to": "champion"},
        {"tag": "validated", "equals": "true"},
    ],
}


def test_promotion_gate_refuses_with_a_report_and_audits(client) -> None:
    client.create_registered_model("m")
    client.set_promotion_policy("m", _POLICY)
    assert client.get_promotion_policy("m") == {"to": ["Production", "@champion"], "rules": _POLICY["rules"]}
    _version(client, "m", rmse=0.5)
    _version(client, "m", rmse=0.7)
    err = _err(client.transition_model_version_stage, "m", 1, "Production")
    assert (err.error_code, err.http_status) == ("INVALID_STATE", 400)
    report = err.details["report"]
    assert report["passed"] is False
    assert [r["passed"] for r in report["rules"]] == [True, False]  # no champion yet; tag missing
    assert "validated" in err.message
    client.set_model_version_tag("m", "1", "validated", "true")
    client.set_model_version_tag("m", "2", "validated", "true")
    client.transition_model_version_stage("m", 1, "Production")
    err = _err(client.transition_model_version_stage, "m", 2, "Production", archive_existing_versions=True)
    assert err.details["report"]["champion_version"] == "1"
    assert [r["passed"] for r in err.details["report"]["rules"]] == [False, True]  # 0.7 > 0.5
    assert client.get_model_version("m", "1").current_stage == "Production"  # unchanged
    assert client.get_model_version("m", "2").current_stage == "None"
    assert client.transition_model_version_stage("m", 2, "Staging").current_stage == "Staging"  # not gated
    refusals = [h for h in client.get_registry_history("m") if h.kind == "promotion_refused"]
    assert [(h.version, h.to_value) for h in refusals] == [("1", "Production"), ("2", "Production")]
    assert refusals[1].details["rules"][0]["passed"] is False
    assert [e.event_type for e in client.list_registry_events(name="m")].count(
        "model_version.stage_changed"
    ) == 2
    report = client.check_promotion("m", 2, "@champion")
    assert report.gated and report.passed  # nobody holds @champion yet
    client.set_registered_model_alias("m", "champion", "1")
    assert not client.check_promotion("m", 2, "@champion").passed
    assert _err(client.set_registered_model_alias, "m", "champion", "2").error_code == "INVALID_STATE"
    client.set_promotion_policy("m", None)
    client.set_registered_model_alias("m", "champion", "2")


@pytest.mark.parametrize(
    "policy",
    [
        {"rules": []},
        {"to": ["Live"], "rules": []},
        {"to": ["Production"], "rules": [{"metric": "rmse", "op": "~", "value": 1}]},
        {"to": ["Production"], "rules": [{"metric": "rmse", "op": "<", "compare_to": "best"}]},
        {"to": ["Production"], "rules": [{"metric": "rmse", "op": "<"}]},
        {"to": ["Production"], "rules": [{"params": "x"}]},
    ],
)
def test_invalid_policies_are_refused(client, policy: dict[str, Any]) -> None:
    client.create_registered_model("m")
    assert _err(client.set_promotion_policy, "m", policy).error_code == "INVALID_PARAMETER_VALUE"
    assert (
        _err(client.set_registered_model_tag, "m", "flowml.promotion_policy", "{").error_code
        == "INVALID_PARAMETER_VALUE"
    )


# -- concurrency ------------------------------------------------------------------------------
def test_concurrent_archive_existing_transitions_leave_one_production(client) -> None:
    client.create_registered_model("m")
    n = 8
    for _ in range(n):
        _version(client, "m")
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def promote(version: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                client.transition_model_version_stage(
                    "m", version, "Production", archive_existing_versions=True
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in range(1, n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    production = [
        mv.version for mv in client.search_model_versions("name = 'm'") if mv.current_stage == "Production"
    ]
    assert len(production) == 1
    # Replaying the events in id order reproduces the final stages: id order is commit order.
    stages = {str(v): "None" for v in range(1, n + 1)}
    for event in client.list_registry_events(name="m"):
        if event.event_type == "model_version.stage_changed":
            assert stages[event.version] == event.payload["from_stage"]
            stages[event.version] = event.payload["to_stage"]
    assert stages == {mv.version: mv.current_stage for mv in client.search_model_versions("name = 'm'")}


def test_prompts_share_the_tables_but_stay_out_of_model_searches(client) -> None:
    """MLflow's rule: mlflow 3 clients append ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every
    model search; a model without the tag must still be found, and prompts only when asked for."""
    client.create_registered_model("plain")
    client.create_registered_model("prompt", tags={"mlflow.prompt.is_prompt": "true"})
    client.create_registered_model("marked-false", tags={"mlflow.prompt.is_prompt": "false"})
    for name in ("plain", "prompt"):
        run = _run(client)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_model_version_tag("prompt", "1", "mlflow.prompt.is_prompt", "true")

    def models(filter_string: str | None) -> list[str]:
        return [m.name for m in client.search_registered_models(filter_string)]

    def versions(filter_string: str | None) -> list[str]:
        return [m.name for m in client.search_model_versions(filter_string)]

    assert models(None) == ["marked-false", "plain"]
    assert models("name LIKE 'p%' AND tag.`mlflow.prompt.is_prompt` != 'true'") == ["plain"]
    assert models("tags.`mlflow.prompt.is_prompt` = 'true'") == ["prompt"]
    assert models("tags.`mlflow.prompt.is_prompt` != 'false'") == ["prompt"]
    assert versions(None) == ["plain"]
    assert versions("tag.`mlflow.prompt.is_prompt` != 'true'") == ["plain"]
    assert versions("tags.`mlflow.prompt.is_prompt` = 'true'") == ["prompt"]
