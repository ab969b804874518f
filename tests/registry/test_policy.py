"""Promotion policies: parsing and evaluation (pure), and ``flowml.registry.promote`` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

import flowml
from flowml import registry
from flowml.exceptions import FlowmlError, InvalidParameterValue
from flowml.store._registry_policy import Candidate, evaluate_policy, parse_policy

POLICY = {
    "to": ["production", "@champion"],
    "rules": [
        {"metric": "rmse", "op": "<=", "compare_to": "champion"},
        {"metric": "accuracy", "op": ">=", "value": 0.8},
        {"tag": "validated", "equals": True},
    ],
}


def test_parse_normalises_targets_and_values() -> None:
    policy = parse_policy(POLICY)
    assert policy.targets == ("Production", "@champion")
    assert policy.rules[2]["equals"] == "True"
    assert policy.applies_to("PRODUCTION") and policy.applies_to("@champion")
    assert not policy.applies_to("Staging") and not policy.applies_to("@challenger")
    assert parse_policy(policy.to_json()) == policy
    with pytest.raises(InvalidParameterValue):
        parse_policy({"to": ["Production"], "rules": [{"metric": "x", "op": "<", "value": True}]})


def test_evaluate_reports_every_rule() -> None:
    policy = parse_policy({**POLICY, "rules": [*POLICY["rules"][:2], {"tag": "validated", "equals": "true"}]})
    cand = Candidate("2", "r2", {"rmse": 0.4, "accuracy": 0.9}, {"validated": "true"}, {})
    champ = Candidate("1", "r1", {"rmse": 0.5})
    report = evaluate_policy(policy, "m", "Production", cand, champ)
    assert report.gated and report.passed and report.champion_version == "1"
    worse = Candidate("3", "r3", {"rmse": 0.6, "accuracy": 0.7}, {}, {"validated": "false"})
    report = evaluate_policy(policy, "m", "@champion", worse, champ)
    assert [r.passed for r in report.results] == [False, False, False]
    assert "0.6 <= 0.5" in report.results[0].message
    assert report.to_dict()["passed"] is False
    missing = Candidate("4", None)
    assert "missing" in evaluate_policy(policy, "m", "Production", missing, None).results[0].message
    nan = Candidate("5", "r5", {"rmse": float("nan"), "accuracy": 0.9}, {"validated": "true"})
    assert not evaluate_policy(policy, "m", "Production", nan, champ).passed
    assert not evaluate_policy(policy, "m", "Staging", worse, champ).gated


def test_load_policy_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text("to: [Production]\nrules:\n  - {metric: rmse, op: '<=', compare_to: champion}\n")
    assert registry.load_policy(yaml_file)["to"] == ["Production"]
    assert registry.load_policy(str(yaml_file))["rules"][0]["metric"] == "rmse"
    assert registry.load_policy('{"to": "@champion", "rules": []}')["to"] == "@champion"
    with pytest.raises(InvalidParameterValue):
        registry.load_policy("- just\n- a list\n")


def _candidate_run(rmse: float, validated: bool) -> str:
    with flowml.start_run() as run:
        flowml.log_metric("rmse", rmse)
        flowml.log_metric("accuracy", 0.9)
        if validated:
            flowml.set_tag("validated", "true")
    return run.info.run_id


def test_promote_through_the_gate(flowml_env: str, tmp_path: Path) -> None:
    client = flowml.FlowmlClient()
    policy_file = tmp_path / "fraud.json"
    policy_file.write_text(
        '{"to": ["Production", "@champion"], "rules": ['
        '{"metric": "rmse", "op": "<=", "compare_to": "champion"}, {"tag": "validated", "equals": "true"}]}'
    )
    v1 = registry.register_model(f"runs:/{_candidate_run(0.5, True)}/model", "fraud")
    registry.set_promotion_policy("fraud", policy_file)
    assert registry.get_promotion_policy("fraud")["to"] == ["Production", "@champion"]
    assert registry.promote("fraud", v1.version, reason="first").current_stage == "Production"
    assert registry.promote("fraud", v1.version, to="@champion").aliases == ("champion",)
    v2 = registry.register_model(f"runs:/{_candidate_run(0.7, True)}/model", "fraud")
    assert not registry.evaluate_promotion("fraud", v2.version).passed
    with pytest.raises(FlowmlError) as err:
        registry.promote("fraud", v2.version, to="@champion")
    assert err.value.error_code == "INVALID_STATE"
    assert err.value.details["report"]["rules"][0]["passed"] is False
    v3 = registry.register_model(f"runs:/{_candidate_run(0.3, False)}/model", "fraud")
    with pytest.raises(FlowmlError):
        registry.promote("fraud", v3.version)
    client.set_model_version_tag("fraud", v3.version, "validated", "true")  # version tag counts too
    assert registry.promote("fraud", v3.version).current_stage == "Production"
    assert client.get_model_version("fraud", v1.version).current_stage == "Archived"
    kinds = [(h.kind, h.version) for h in client.get_registry_history("fraud") if h.kind != "created"]
    assert kinds == [
        ("stage", "1"),
        ("alias", "1"),
        ("promotion_refused", "2"),
        ("promotion_refused", "3"),
        ("stage", "3"),
        ("stage", "1"),
    ]
    registry.set_promotion_policy("fraud", None)
    assert registry.get_promotion_policy("fraud") is None
    assert registry.promote("fraud", v2.version, to="staging").current_stage == "Staging"
