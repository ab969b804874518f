"""Promotion policies (gates): parsing and evaluation. Pure: no SQL, no I/O.

A policy is plain JSON (or YAML loaded into the same shape) stored on the registered model as the
tag :data:`POLICY_TAG`::

    {"to": ["Production", "@champion"],
     "rules": [{"metric": "rmse", "op": "<=", "compare_to": "champion"},
               {"metric": "accuracy", "op": ">=", "value": 0.8},
               {"tag": "validated", "equals": "true"}]}

* ``to``: the stages (case-insensitive) and ``@aliases`` the gate guards; promotions elsewhere pass.
* metric rules compare the candidate run's latest metric with a fixed ``value`` or with the current
  champion's run (``compare_to: "champion"``: the version now holding the target stage / alias).
  A candidate without the metric fails; with no champion, or a champion without the metric, the
  comparison passes (there is nothing to be worse than).
* tag rules check a model-version tag or run tag (``on``: ``version``, ``run`` or ``any``, the
  default: the version's tag, else the run's).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowml.entities_registry import GateReport, GateRuleResult, canonical_stage
from flowml.exceptions import InvalidParameterValue

__all__ = [
    "POLICY_TAG",
    "Candidate",
    "PromotionPolicy",
    "evaluate_policy",
    "normalize_target",
    "parse_policy",
]

POLICY_TAG = "flowml.promotion_policy"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_METRIC_KEYS = {"metric", "op", "compare_to", "value"}
_TAG_KEYS = {"tag", "equals", "on"}


def normalize_target(target: str) -> str:
    """``"@alias"`` stays as is; a stage is spelled canonically (``production`` → ``Production``)."""
    if not isinstance(target, str) or not target.strip():
        raise InvalidParameterValue(f"Invalid promotion target {target!r}")
    if target.startswith("@"):
        if len(target) == 1:
            raise InvalidParameterValue("Invalid promotion target '@': an alias name is required")
        return target
    try:
        return canonical_stage(target)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    targets: tuple[str, ...]
    rules: tuple[Mapping[str, Any], ...]

    def applies_to(self, target: str) -> bool:
        return normalize_target(target) in self.targets

    def to_json(self) -> str:
        return json.dumps({"to": list(self.targets), "rules": [dict(r) for r in self.rules]}, sort_keys=True)


def _bad(why: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Invalid promotion policy: {why}")


def _check_rule(rule: Any) -> Mapping[str, Any]:
    if not isinstance(rule, Mapping):
        raise _bad(f"a rule must be an object, got {rule!r}")
    if "metric" in rule:
        if set(rule) - _METRIC_KEYS:
            raise _bad(f"unknown keys {sorted(set(rule) - _METRIC_KEYS)} in metric rule")
        if not isinstance(rule["metric"], str) or not rule["metric"]:
            raise _bad("'metric' must be a metric key")
        if rule.get("op") not in _OPS:
            raise _bad(f"'op' must be one of {sorted(_OPS)}, got {rule.get('op')!r}")
        has_value = "value" in rule
        if has_value == ("compare_to" in rule):
            raise _bad("a metric rule needs exactly one of 'value' or 'compare_to'")
        if "compare_to" in rule and rule["compare_to"] != "champion":
            raise _bad("'compare_to' can only be 'champion'")
        value = rule.get("value")
        if has_value and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _bad("'value' must be a number")
        return dict(rule)
    if "tag" in rule:
        if set(rule) - _TAG_KEYS:
            raise _bad(f"unknown keys {sorted(set(rule) - _TAG_KEYS)} in tag rule")
        if not isinstance(rule["tag"], str) or "equals" not in rule:
            raise _bad("a tag rule needs 'tag' (a key) and 'equals'")
        if rule.get("on", "any") not in ("any", "version", "run"):
            raise _bad("'on' must be 'any', 'version' or 'run'")
        return {**rule, "equals": str(rule["equals"])}
    raise _bad(f"a rule needs 'metric' or 'tag': {dict(rule)!r}")


def parse_policy(policy: Mapping[str, Any] | str) -> PromotionPolicy:
    """A validated policy from its JSON text or the decoded object (INVALID_PARAMETER_VALUE if bad)."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as exc:
            raise _bad(f"not JSON: {exc}") from exc
    if not isinstance(policy, Mapping):
        raise _bad("expected an object with 'to' and 'rules'")
    if set(policy) - {"to", "rules"}:
        raise _bad(f"unknown keys {sorted(set(policy) - {'to', 'rules'})}")
    targets = policy.get("to")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, list) or not targets:
        raise _bad("'to' must list the stages and @aliases it guards")
    rules = policy.get("rules", [])
    if not isinstance(rules, list):
        raise _bad("'rules' must be a list")
    return PromotionPolicy(
        tuple(dict.fromkeys(normalize_target(t) for t in targets)), tuple(_check_rule(r) for r in rules)
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a gate looks at for one version: its run's latest metrics and tags, its own tags."""

    version: str
    run_id: str | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    run_tags: Mapping[str, str] = field(default_factory=dict)
    version_tags: Mapping[str, str] = field(default_factory=dict)


def _metric_rule(rule: Mapping[str, Any], cand: Candidate, champ: Candidate | None) -> GateRuleResult:
    key, op = rule["metric"], rule["op"]
    value = cand.metrics.get(key)
    if value is None or math.isnan(value):
        where = f"run {cand.run_id}" if cand.run_id else "the candidate (it has no run)"
        return GateRuleResult(rule, False, f"metric {key!r} is missing on {where}")
    if "value" in rule:
        threshold, what = float(rule["value"]), "threshold"
    elif champ is None:
        return GateRuleResult(rule, True, f"metric {key!r}: no current champion to compare with")
    else:
        champ_value = champ.metrics.get(key)
        if champ_value is None or math.isnan(champ_value):
            return GateRuleResult(
                rule, True, f"metric {key!r}: champion version {champ.version} has no value to compare with"
            )
        threshold, what = champ_value, f"champion version {champ.version}"
    passed = _OPS[op](value, threshold)
    verdict = "passes" if passed else "fails"
    return GateRuleResult(rule, passed, f"metric {key!r} {value!r} {op} {threshold!r} ({what}) {verdict}")


def _tag_rule(rule: Mapping[str, Any], cand: Candidate) -> GateRuleResult:
    key, expected, on = rule["tag"], rule["equals"], rule.get("on", "any")
    actual: str | None = None
    if on in ("any", "version"):
        actual = cand.version_tags.get(key)
    if actual is None and on in ("any", "run"):
        actual = cand.run_tags.get(key)
    passed = actual == expected
    return GateRuleResult(rule, passed, f"tag {key!r} is {actual!r}, required {expected!r}")


def evaluate_policy(
    policy: PromotionPolicy | None, name: str, target: str, candidate: Candidate, champion: Candidate | None
) -> GateReport:
    """Every rule of ``policy`` for promoting ``candidate`` to ``target`` (not gated: no rules)."""
    target = normalize_target(target)
    champion_version = champion.version if champion is not None else None
    if policy is None or not policy.applies_to(target):
        return GateReport(name, candidate.version, target, champion_version, (), gated=False)
    results = tuple(
        _metric_rule(rule, candidate, champion) if "metric" in rule else _tag_rule(rule, candidate)
        for rule in policy.rules
    )
    return GateReport(name, candidate.version, target, champion_version, results)
