"""``flowml deploy rollback NAME [--to VERSION]``: serve an earlier version's Bento again, no rebuild.

The Bento comes from that version's last successful deployment record. Once it serves, the registry
follows: the version is moved back to the stage (Production, archiving the rolled-back one) and/or the
alias (``champion``) that the rolled-back version held, audited with reason ``"rollback"``. The events
those moves emit find the version already serving, so a running dispatcher does not redeploy it.
"""

from __future__ import annotations

from typing import Any

from flowml.deploy.pipeline import deploy_version
from flowml.deploy.records import DeploymentRecord, records
from flowml.deploy.records import actor as actor_name

__all__ = ["rollback"]

_SERVED = ("SERVING", "SUPERSEDED", "STOPPED")


def rollback(
    name: str,
    to: str | int | None = None,
    *,
    target: str = "local",
    aliases: tuple[str, ...] = ("champion",),
    client: Any = None,
    actor: str | None = None,
) -> DeploymentRecord:
    """Redeploy ``to`` (default: the version that served before the current one) and move the registry.

    ``actor`` is who asked (recorded on the deployment and in the registry history; default: this
    process's user). Raises :class:`ValueError` when there is nothing to roll back to."""
    from flowml.client import FlowmlClient

    client = client or FlowmlClient()
    who = actor or actor_name()
    history = [r for r in records(client).list(name=name, max_results=1000) if r.target == target]
    current = next((r for r in history if r.status == "SERVING"), None)
    served = [r for r in history if r.status in _SERVED and r.bento_tag]
    if to is None:
        if current is None:
            raise ValueError(f"{name!r} is not serving on {target!r}: say which version (--to VERSION)")
        choice = next((r for r in served if r.version != current.version), None)
    else:
        choice = next((r for r in served if r.version == str(to)), None)
    if choice is None:
        raise ValueError(
            f"no earlier deployment of {name!r} {'v' + str(to) if to else ''} with a Bento to roll back to"
        )
    record = deploy_version(
        name, choice.version, target=target, bento_tag=choice.bento_tag, client=client, actor=who
    )
    if record.status != "SERVING":
        return record
    if current is not None and current.version != choice.version:
        registry = client.backend  # the backend's registry calls take the actor
        rolled_back = client.get_model_version(name, current.version)
        if rolled_back.current_stage == "Production":
            registry.transition_model_version_stage(name, choice.version, "Production", True, "rollback", who)
        for alias in aliases:
            if alias in rolled_back.aliases:
                registry.set_registered_model_alias(name, alias, choice.version, "rollback", who)
    return records(client).update(record.id, details={"rollback_from": current.version if current else None})
