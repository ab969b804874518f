"""Promotion gates: per-model policies kept in the registry, and ``promote``.

A policy is plain JSON or YAML (so it can live in the repo next to ``deployments/``)::

    to: [Production, "@champion"]
    rules:
      - {metric: rmse, op: "<=", compare_to: champion}   # candidate's run vs the current holder's
      - {metric: accuracy, op: ">=", value: 0.8}           # fixed threshold
      - {tag: validated, equals: "true"}                  # version tag, else run tag

The store evaluates it inside the transaction that changes the stage or alias, so it holds for
every path (this module, ``FlowmlClient``, an MLflow client through the server). A refused
promotion raises :class:`flowml.exceptions.InvalidState` (HTTP 400) whose ``details["report"]``
lists each rule and whether it passed; the refusal is recorded in the registry history.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowml.entities_registry import ACTIVE_STAGES, GateReport, ModelVersion, canonical_stage
from flowml.exceptions import InvalidParameterValue

if TYPE_CHECKING:
    from flowml.client import FlowmlClient

__all__ = ["evaluate_promotion", "get_promotion_policy", "load_policy", "promote", "set_promotion_policy"]

PolicySource = Mapping[str, Any] | str | os.PathLike[str]


def _client(client: FlowmlClient | None) -> FlowmlClient:
    if client is not None:
        return client
    from flowml.client import FlowmlClient

    return FlowmlClient()


def load_policy(policy: PolicySource) -> dict[str, Any]:
    """A policy from a mapping, a JSON/YAML string, or a ``.json``/``.yaml``/``.yml`` file path."""
    if isinstance(policy, Mapping):
        return dict(policy)
    text = str(policy)
    path = Path(text)
    if isinstance(policy, os.PathLike) or (
        "\n" not in text and path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file()
    ):
        text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except ValueError:
        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameterValue(f"Invalid promotion policy: neither JSON nor YAML ({exc})") from exc
    if not isinstance(loaded, Mapping):
        raise InvalidParameterValue("Invalid promotion policy: expected an object with 'to' and 'rules'")
    return dict(loaded)


def set_promotion_policy(
    name: str, policy: PolicySource | None, *, client: FlowmlClient | None = None
) -> None:
    """Store (validated by the registry) or clear (``None``) the promotion policy of ``name``."""
    _client(client).set_promotion_policy(name, None if policy is None else load_policy(policy))


def get_promotion_policy(name: str, *, client: FlowmlClient | None = None) -> dict[str, Any] | None:
    return _client(client).get_promotion_policy(name)


def evaluate_promotion(
    name: str, version: str | int, to: str = "Production", *, client: FlowmlClient | None = None
) -> GateReport:
    """Dry run: what the gate would say about promoting ``version`` to ``to`` now."""
    return _client(client).check_promotion(name, version, to)


def promote(
    name: str,
    version: str | int,
    to: str = "Production",
    *,
    reason: str | None = None,
    archive_existing_versions: bool = True,
    client: FlowmlClient | None = None,
) -> ModelVersion:
    """Promote ``version`` to a stage (``"Production"``) or an alias (``"@champion"``), gated.

    Moving to Staging/Production archives the previous holders unless
    ``archive_existing_versions=False``. Raises INVALID_STATE with the gate report when refused.
    """
    c = _client(client)
    if to.startswith("@"):
        c.set_registered_model_alias(name, to[1:], version, reason=reason)
        return c.get_model_version(name, version)
    try:
        stage = canonical_stage(to)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    archive = archive_existing_versions and stage in ACTIVE_STAGES
    return c.transition_model_version_stage(name, version, stage, archive, reason=reason)
