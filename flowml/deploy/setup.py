"""Wire registry events to the deployment flow on a Prefect server (``flowml deploy setup``).

* :func:`setup` registers ``deploy_model_version`` as the Prefect deployment ``flowml-deploy`` (module-path
  entrypoint, so any process with flowml installed can run it) — served by ``flowml deploy worker``, or,
  with ``work_pool``, run by that pool's workers (a ``process`` pool's ``prefect worker start``, next to
  project deployments; flow-run processes get the worker's environment) — and one Automation per watched
  stage / alias:
  an ``EventTrigger`` on ``flowml.model-version.stage-changed`` with label ``flowml.to_stage`` (or on
  ``flowml.alias.moved`` with ``flowml.alias``) whose ``RunDeployment`` action passes the event's model
  name, version and flowml event id. Automation templates render as strings: the flow takes them as ``str``.
* :func:`serve` runs the deployment (``flowml deploy worker``): it polls the server for runs to execute.
* :func:`dispatcher` is ``flowml deploy dispatch``: the outbox → Prefect events (a server is configured) or,
  without one, the embedded deployer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

from flowml.registry.dispatch import Dispatcher, PrefectEventTarget, prefect_event_name

__all__ = ["automation_name", "dispatcher", "serve", "setup"]

STAGE_EVENT = prefect_event_name("model_version.stage_changed")
ALIAS_EVENT = prefect_event_name("alias.moved")


def automation_name(kind: str, value: str) -> str:
    return f"flowml-deploy-on-{kind}-{value}"


def _runner_deployment(target: str) -> Any:
    from prefect.types.entrypoint import EntrypointType

    from flowml.deploy.flows import DEPLOYMENT_NAME, deploy_model_version

    return deploy_model_version.to_deployment(
        name=DEPLOYMENT_NAME, entrypoint_type=EntrypointType.MODULE_PATH, parameters={"target": target},
        tags=["flowml"], description="flowml: put a registered model version behind an endpoint",
    )  # fmt: skip


def _replace_automation(automation: Any) -> Any:
    from prefect.automations import Automation

    with contextlib.suppress(ValueError):  # ValueError: none yet
        existing: Any = Automation.read(name=automation.name)
        existing.delete()
    return automation.create()


def setup(
    *,
    stages: Iterable[str] = ("Production",),
    aliases: Iterable[str] = ("champion",),
    model: str = "*",
    target: str = "local",
    port: int | None = None,
    work_pool: str | None = None,
) -> dict[str, Any]:
    """Register the deployment and the automations (idempotent: re-running replaces them). With
    ``work_pool`` the deployment is registered for that (existing) work pool instead of ``flowml deploy
    worker``."""
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError("PREFECT_API_URL is not set: `flowml deploy setup` needs a Prefect server")
    from prefect.automations import Automation
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    deployment_id = _runner_deployment(target).apply(work_pool_name=work_pool)
    resource = "flowml.model-version.*" if model == "*" else f"flowml.model-version.{model}.*"
    params: dict[str, Any] = {
        "name": "{{ event.resource['flowml.model.name'] }}",
        "version": "{{ event.resource['flowml.model.version'] }}",
        "event_id": "{{ event.resource['flowml.event.id'] }}",
        "target": target,
    }
    if port is not None:
        params["port"] = port
    watched = [("stage", s, STAGE_EVENT, "flowml.to_stage", s) for s in stages]
    watched += [("alias", a, ALIAS_EVENT, "flowml.alias", f"@{a}") for a in aliases]
    created = []
    for kind, value, event, label, trigger in watched:
        automation = Automation(
            name=automation_name(kind, value),
            description=f"flowml: deploy a model version on {event} ({label}={value})",
            trigger=EventTrigger(
                expect={event},
                match={"prefect.resource.id": resource, label: value},
                posture=Posture.Reactive,
                threshold=1,
                within=0,
            ),
            actions=[
                RunDeployment(
                    source="selected", deployment_id=deployment_id, parameters={**params, "trigger": trigger}
                )
            ],
        )
        created.append(str(_replace_automation(automation).id))
    return {"deployment_id": str(deployment_id), "automations": created}


def serve(target: str = "local") -> None:
    """Run the deployment flow's Prefect deployment in this process (blocks; Ctrl-C stops it)."""
    from prefect import serve as prefect_serve

    prefect_serve(_runner_deployment(target), pause_on_shutdown=False, print_starting_message=False)


def dispatcher(client: Any = None, *, poll_interval_s: float = 0.5, **embedded: Any) -> Dispatcher:
    """The outbox dispatcher for this configuration (not started): Prefect events when a server is set,
    else the embedded deployer (``embedded``: :class:`~flowml.deploy.embedded.EmbeddedDeployer` options)."""
    if client is None:
        from flowml.client import FlowmlClient

        client = FlowmlClient()
    if os.environ.get("PREFECT_API_URL"):
        import prefect.events  # noqa: F401 - now (seconds), not when the first event is waiting to be delivered

        return Dispatcher(client.backend, [PrefectEventTarget()], poll_interval_s=poll_interval_s)
    from flowml.deploy.embedded import EmbeddedDeployer

    return Dispatcher(
        client.backend, [EmbeddedDeployer(**embedded).subscriber()], poll_interval_s=poll_interval_s
    )
