"""The Prefect deployment flow: ``deploy_model_version(name, version, target="local", port=None, ...)``.

Its body is :func:`flowml.deploy.pipeline.deploy_version` (gate → build Bento → smoke test → start/replace
the service → record); the flow adds the Prefect flow run id to the record and fails the run when the
deployment failed (the record says why, and the previous deployment keeps serving).

Parameters arrive as strings when an automation renders them from an event (``version``, ``event_id``),
so they are declared ``str``. The module attribute ``deploy_model_version`` is the deployment entrypoint
(``flowml.deploy.flows.deploy_model_version``, module-path form).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flowml.deploy.pipeline import deploy_version

__all__ = ["DEPLOYMENT_NAME", "FLOW_NAME", "deploy_model_version"]

FLOW_NAME = "flowml-deploy-model-version"
DEPLOYMENT_NAME = "flowml-deploy"


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def _flow_run_url() -> str | None:
    """The flow run's page in the Prefect UI, when a server (not the ephemeral API) is configured."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    return str(flow_run.ui_url) if flow_run.id and PREFECT_UI_URL.value() else None


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def deploy_model_version(
    name: str,
    version: str,
    target: str = "local",
    port: int | None = None,
    event_id: str | None = None,
    trigger: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Put registered model ``name`` version ``version`` behind an endpoint on ``target``."""
    record = deploy_version(
        name, version, target=target, port=port, event_id=event_id, trigger=trigger,
        flow_run_id=_flow_run_id(), flow_run_url=_flow_run_url(), force=force,
    )  # fmt: skip
    print(f"deployment record {record.id}: {record.status} {record.endpoint_url or record.error or ''}")  # noqa: T201 - the flow run log (log_prints)
    if record.status == "FAILED":
        raise RuntimeError(f"deployment of {name} v{version} failed (record {record.id}): {record.error}")
    return record.to_dict()
