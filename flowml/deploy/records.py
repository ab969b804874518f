"""Deployment records: the public type and where they are kept (the tracking store).

``model version → event → flow run → bento → endpoint`` is one row: :class:`DeploymentRecord`.
:func:`records` returns the store for the configured tracking URI: the SQL store directly (``sqlite``,
``postgresql``), or the flowml server's ``/api/flowml/deployments`` (``http(s)://``).
"""

from __future__ import annotations

import dataclasses
import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["DeploymentRecord", "DeploymentRecords", "actor", "records"]


def actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    id: int
    name: str
    version: str
    target: str
    status: str
    created_time: int
    updated_time: int
    event_id: int | None = None
    flow_run_id: str | None = None
    bento_tag: str | None = None
    endpoint_url: str | None = None
    actor: str | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    serving_since: int | None = None
    finished_time: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["details"] = dict(self.details)
        return out


class DeploymentRecords(Protocol):
    def create(self, name: str, version: str, target: str, **fields: Any) -> DeploymentRecord: ...

    def update(self, deployment_id: int, **fields: Any) -> DeploymentRecord: ...

    def get(self, deployment_id: int) -> DeploymentRecord: ...

    def list(
        self, name: str | None = None, status: str | None = None, max_results: int = 100
    ) -> list[DeploymentRecord]: ...


class _SqlRecords:
    def __init__(self, db: Any) -> None:
        self.db = db

    def create(self, name: str, version: str, target: str, **fields: Any) -> DeploymentRecord:
        from flowml.store import deployments as store

        return DeploymentRecord.from_dict(
            self.db.write(lambda s: store.create_deployment(s, name, version, target, **fields))
        )

    def update(self, deployment_id: int, **fields: Any) -> DeploymentRecord:
        from flowml.store import deployments as store

        return DeploymentRecord.from_dict(
            self.db.write(lambda s: store.update_deployment(s, deployment_id, **fields))
        )

    def get(self, deployment_id: int) -> DeploymentRecord:
        from flowml.store import deployments as store

        with self.db.read() as s:
            return DeploymentRecord.from_dict(store.get_deployment(s, deployment_id))

    def list(
        self, name: str | None = None, status: str | None = None, max_results: int = 100
    ) -> list[DeploymentRecord]:
        from flowml.store import deployments as store

        with self.db.read() as s:
            return [
                DeploymentRecord.from_dict(d) for d in store.list_deployments(s, name, status, max_results)
            ]


class _RestRecords:
    """Over the server's ``/api/flowml/deployments`` routes."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.backend.call(method, endpoint, api="/api/flowml", **kwargs)
        return result

    def create(self, name: str, version: str, target: str, **fields: Any) -> DeploymentRecord:
        body = {"name": name, "version": version, "target": target, **fields}
        return DeploymentRecord.from_dict(self._call("POST", "deployments", json=body)["deployment"])

    def update(self, deployment_id: int, **fields: Any) -> DeploymentRecord:
        body = {"id": deployment_id, "fields": fields}
        return DeploymentRecord.from_dict(self._call("POST", "deployments/update", json=body)["deployment"])

    def get(self, deployment_id: int) -> DeploymentRecord:
        return DeploymentRecord.from_dict(self._call("GET", f"deployments/{deployment_id}")["deployment"])

    def list(
        self, name: str | None = None, status: str | None = None, max_results: int = 100
    ) -> list[DeploymentRecord]:
        params: dict[str, Any] = {"max_results": max_results}
        if name is not None:
            params["name"] = name
        if status is not None:
            params["status"] = status
        found = self._call("GET", "deployments", params=params)["deployments"]
        return [DeploymentRecord.from_dict(d) for d in found]


def records(client: Any = None) -> DeploymentRecords:
    """The deployment records of ``client``'s tracking store (default: a ``FlowmlClient()``)."""
    if client is None:
        from flowml.client import FlowmlClient

        client = FlowmlClient()
    backend = client.backend
    if hasattr(backend, "db"):  # the SQL store (flowml.client.local.SqlBackend)
        return _SqlRecords(backend.db)
    if hasattr(backend, "call"):
        return _RestRecords(backend)
    raise TypeError(f"no deployment records for backend {type(backend).__name__}")
