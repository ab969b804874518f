"""The registry half of the REST backend: MLflow's registry endpoints + flowml's extensions."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from flowml.client._registry_backend import RegistryBackend
from flowml.entities import PagedList
from flowml.entities_registry import (
    EventAttempt,
    GateReport,
    GateRuleResult,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    StageTransition,
    parse_model_uri,
)
from flowml.exceptions import InvalidParameterValue

__all__ = ["RestRegistryMixin"]

_FLOWML = "/api/flowml"


class _Caller(Protocol):
    def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        api: str = ...,
    ) -> dict[str, Any]: ...


def _kv(items: Any) -> dict[str, str]:
    return {i["key"]: i.get("value", "") for i in items or ()}


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def version_from_json(d: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=d["name"],
        version=str(d["version"]),
        creation_timestamp=int(d.get("creation_timestamp", 0)),
        last_updated_timestamp=int(d.get("last_updated_timestamp", 0)),
        current_stage=d.get("current_stage", "None"),
        description=d.get("description"),
        user_id=d.get("user_id"),
        source=d.get("source"),
        run_id=d.get("run_id") or None,
        status=d.get("status", "READY"),
        status_message=d.get("status_message"),
        run_link=d.get("run_link"),
        tags=_kv(d.get("tags")),
        aliases=tuple(d.get("aliases") or ()),
        model_id=d.get("model_id") or None,
    )


def model_from_json(d: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        creation_timestamp=int(d.get("creation_timestamp", 0)),
        last_updated_timestamp=int(d.get("last_updated_timestamp", 0)),
        description=d.get("description"),
        user_id=d.get("user_id"),
        latest_versions=tuple(version_from_json(v) for v in d.get("latest_versions") or ()),
        tags=_kv(d.get("tags")),
        aliases={a["alias"]: str(a["version"]) for a in d.get("aliases") or ()},
    )


class RestRegistryMixin(RegistryBackend):
    """Needs ``self.call`` (the REST backend's transport)."""

    def _c(self) -> _Caller:
        return self  # type: ignore[return-value]

    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None, user_id: str | None
    ) -> RegisteredModel:
        body = {"name": name, "tags": _tags(tags), "description": description}
        return model_from_json(
            self._c().call("POST", "registered-models/create", json=body)["registered_model"]
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        out = self._c().call("GET", "registered-models/get", params={"name": name})
        return model_from_json(out["registered_model"])

    def rename_registered_model(self, name: str, new_name: str, user_id: str | None) -> RegisteredModel:
        out = self._c().call("POST", "registered-models/rename", json={"name": name, "new_name": new_name})
        return model_from_json(out["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        out = self._c().call(
            "PATCH", "registered-models/update", json={"name": name, "description": description}
        )
        return model_from_json(out["registered_model"])

    def delete_registered_model(self, name: str, user_id: str | None) -> None:
        self._c().call("DELETE", "registered-models/delete", json={"name": name})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._c().call("POST", "registered-models/set-tag", json={"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._c().call("DELETE", "registered-models/delete-tag", json={"name": name, "key": key})

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]:
        params: dict[str, Any] = {"max_results": max_results, "order_by": list(order_by or ())}
        if filter_string:
            params["filter"] = filter_string
        if page_token:
            params["page_token"] = page_token
        out = self._c().call("GET", "registered-models/search", params=params)
        return PagedList(
            [model_from_json(m) for m in out.get("registered_models", ())], out.get("next_page_token")
        )

    def get_latest_versions(self, name: str, stages: Sequence[str] | None) -> list[ModelVersion]:
        out = self._c().call(
            "POST", "registered-models/get-latest-versions", json={"name": name, "stages": list(stages or ())}
        )
        return [version_from_json(v) for v in out.get("model_versions", ())]

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: Mapping[str, str],
        run_link: str | None,
        description: str | None,
        user_id: str | None,
    ) -> ModelVersion:
        body = {
            "name": name,
            "source": source,
            "run_id": run_id,
            "tags": _tags(tags),
            "run_link": run_link,
            "description": description,
        }
        return version_from_json(self._c().call("POST", "model-versions/create", json=body)["model_version"])

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        out = self._c().call("GET", "model-versions/get", params={"name": name, "version": version})
        return version_from_json(out["model_version"])

    def update_model_version(self, name: str, version: str, description: str | None) -> ModelVersion:
        body = {"name": name, "version": version, "description": description}
        return version_from_json(self._c().call("PATCH", "model-versions/update", json=body)["model_version"])

    def delete_model_version(self, name: str, version: str, user_id: str | None) -> None:
        self._c().call("DELETE", "model-versions/delete", json={"name": name, "version": version})

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._c().call("POST", "model-versions/set-tag", json=body)

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self._c().call(
            "DELETE", "model-versions/delete-tag", json={"name": name, "version": version, "key": key}
        )

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]:
        params: dict[str, Any] = {"max_results": max_results, "order_by": list(order_by or ())}
        if filter_string:
            params["filter"] = filter_string
        if page_token:
            params["page_token"] = page_token
        out = self._c().call("GET", "model-versions/search", params=params)
        return PagedList(
            [version_from_json(v) for v in out.get("model_versions", ())], out.get("next_page_token")
        )

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        out = self._c().call(
            "GET", "model-versions/get-download-uri", params={"name": name, "version": version}
        )
        return str(out["artifact_uri"])

    def resolve_model_uri(self, model_uri: str) -> ModelVersion:
        try:
            uri = parse_model_uri(model_uri)
        except ValueError as exc:
            raise InvalidParameterValue(str(exc)) from exc
        if uri.version is not None:
            return self.get_model_version(uri.name, uri.version)
        if uri.alias is not None:
            return self.get_model_version_by_alias(uri.name, uri.alias)
        assert uri.stage is not None
        latest = self.get_latest_versions(uri.name, [uri.stage])
        if not latest:
            from flowml.exceptions import ResourceDoesNotExist

            raise ResourceDoesNotExist(
                f"No versions of model with name '{uri.name}' and stage '{uri.stage}' found"
            )
        return latest[0]

    def transition_model_version_stage(
        self,
        name: str,
        version: str,
        stage: str,
        archive_existing_versions: bool,
        reason: str | None,
        user_id: str | None,
    ) -> ModelVersion:
        body = {
            "name": name,
            "version": version,
            "stage": stage,
            "archive_existing_versions": archive_existing_versions,
            "reason": reason,
        }
        return version_from_json(
            self._c().call("POST", "model-versions/transition-stage", json=body)["model_version"]
        )

    def set_registered_model_alias(
        self, name: str, alias: str, version: str, reason: str | None, user_id: str | None
    ) -> None:
        body = {"name": name, "alias": alias, "version": version, "reason": reason}
        self._c().call("POST", "registered-models/alias", json=body)

    def delete_registered_model_alias(
        self, name: str, alias: str, reason: str | None, user_id: str | None
    ) -> None:
        self._c().call(
            "DELETE", "registered-models/alias", json={"name": name, "alias": alias, "reason": reason}
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        out = self._c().call("GET", "registered-models/alias", params={"name": name, "alias": alias})
        return version_from_json(out["model_version"])

    # -- flowml extensions ---------------------------------------------------------------------
    def set_promotion_policy(self, name: str, policy: Mapping[str, Any] | None) -> None:
        body = {"name": name, "policy": dict(policy) if policy is not None else None}
        self._c().call("POST", "registry/policy", json=body, api=_FLOWML)

    def get_promotion_policy(self, name: str) -> dict[str, Any] | None:
        policy = self._c().call("GET", "registry/policy", params={"name": name}, api=_FLOWML).get("policy")
        return dict(policy) if policy is not None else None

    def check_promotion(self, name: str, version: str, target: str) -> GateReport:
        params = {"name": name, "version": version, "target": target}
        d = self._c().call("GET", "registry/check-promotion", params=params, api=_FLOWML)["report"]
        results = tuple(GateRuleResult(**r) for r in d.pop("results", ()))
        return GateReport(**d, results=results)

    def get_registry_history(self, name: str, version: str | None) -> list[StageTransition]:
        params = {"name": name, **({"version": version} if version else {})}
        out = self._c().call("GET", "registry/history", params=params, api=_FLOWML)
        return [StageTransition(**h) for h in out.get("history", ())]

    def list_registry_events(
        self, after_id: int | None, name: str | None, max_results: int, pending_only: bool
    ) -> list[RegistryEvent]:
        params: dict[str, Any] = {"max_results": max_results, "pending_only": str(pending_only).lower()}
        if after_id is not None:
            params["after_id"] = after_id
        if name:
            params["name"] = name
        out = self._c().call("GET", "registry/events", params=params, api=_FLOWML)
        return [RegistryEvent(**e) for e in out.get("events", ())]

    def pending_registry_events(self, max_results: int) -> list[RegistryEvent]:
        out = self._c().call(
            "GET", "registry/events/pending", params={"max_results": max_results}, api=_FLOWML
        )
        return [RegistryEvent(**e) for e in out.get("events", ())]

    def record_registry_event_attempt(
        self,
        event_id: int,
        success: bool,
        started_time: int,
        finished_time: int | None,
        target: str | None,
        error: str | None,
        details: Mapping[str, Any] | None,
        retry_at: int | None,
    ) -> RegistryEvent:
        body = {
            "event_id": event_id,
            "success": success,
            "started_time": started_time,
            "finished_time": finished_time or time.time_ns() // 1_000_000,
            "target": target,
            "error": error,
            "details": dict(details or {}),
            "retry_at": retry_at,
        }
        return RegistryEvent(
            **self._c().call("POST", "registry/events/attempts", json=body, api=_FLOWML)["event"]
        )

    def list_registry_event_attempts(self, event_id: int) -> list[EventAttempt]:
        out = self._c().call("GET", "registry/events/attempts", params={"event_id": event_id}, api=_FLOWML)
        return [EventAttempt(**a) for a in out.get("attempts", ())]
