"""Where a deployment serves. ``local``: a supervised ``bentoml serve`` behind a stable local port."""

from __future__ import annotations

from flowml.deploy.targets.local import LocalTarget, deployments_dir

__all__ = ["LocalTarget", "deployments_dir", "get_target"]


def get_target(name: str) -> LocalTarget:
    if name == "local":
        return LocalTarget()
    raise ValueError(f"Unknown deployment target {name!r} (available: local)")
