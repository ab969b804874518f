"""Users, tokens and permissions (MLflow basic-auth's REST API), mounted only with ``--auth``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from flowml.server.deps import BackendDep
from flowml.store import auth as auth_store

router = APIRouter(tags=["users and permissions"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NewUser(_Body):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=8)


class Password(_Body):
    username: str
    password: str = Field(min_length=8)


class Admin(_Body):
    username: str
    is_admin: bool


class Username(_Body):
    username: str


class Token(_Body):
    name: str = "api"


class ExperimentPermission(_Body):
    experiment_id: str
    username: str
    permission: str = "READ"


class ModelPermission(_Body):
    name: str
    username: str
    permission: str = "READ"


def _user_json(user: auth_store.User) -> dict[str, Any]:
    return {"user": {"id": user.id, "username": user.username, "is_admin": user.is_admin}}


def _forget(request: Request) -> None:
    authenticator = getattr(request.app.state, "authenticator", None)
    if authenticator is not None:
        authenticator.forget()


@router.post("/users/create")
def create_user(body: NewUser, backend: BackendDep) -> dict[str, Any]:
    return _user_json(backend.db.write(lambda s: auth_store.create_user(s, body.username, body.password)))


@router.get("/users/get")
def get_user(backend: BackendDep, username: str = Query(min_length=1)) -> dict[str, Any]:
    with backend.db.read() as s:
        return _user_json(auth_store.get_user(s, username))


@router.get("/users/current")
def current_user(request: Request) -> dict[str, Any]:
    return _user_json(request.state.auth_user)


@router.patch("/users/update-password")
def update_password(body: Password, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.db.write(lambda s: auth_store.update_password(s, body.username, body.password))
    _forget(request)
    return {}


@router.patch("/users/update-admin")
def update_admin(body: Admin, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.db.write(lambda s: auth_store.update_admin(s, body.username, body.is_admin))
    _forget(request)
    return {}


@router.delete("/users/delete")
def delete_user(body: Username, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.db.write(lambda s: auth_store.delete_user(s, body.username))
    _forget(request)
    return {}


@router.post("/users/tokens")
def create_token(body: Token, request: Request, backend: BackendDep) -> dict[str, Any]:
    username = request.state.auth_user.username
    return {"token": backend.db.write(lambda s: auth_store.create_token(s, username, body.name))}


def _grant(backend: BackendDep, kind: str, resource: str, username: str, permission: str) -> None:
    def write(s: Any) -> None:
        auth_store.set_permission(s, kind, resource, auth_store.get_user(s, username).id, permission)

    backend.db.write(write)


def _get(backend: BackendDep, kind: str, resource: str, username: str) -> str:
    with backend.db.read() as s:
        return auth_store.get_permission(s, kind, resource, auth_store.get_user(s, username).id)


def _revoke(backend: BackendDep, kind: str, resource: str, username: str) -> None:
    backend.db.write(
        lambda s: auth_store.delete_permission(s, kind, resource, auth_store.get_user(s, username).id)
    )


@router.post("/experiments/permissions/create")
@router.patch("/experiments/permissions/update")
def set_experiment_permission(body: ExperimentPermission, backend: BackendDep) -> dict[str, Any]:
    backend.get_experiment(body.experiment_id)
    _grant(backend, "experiment", body.experiment_id, body.username, body.permission)
    return {}


@router.get("/experiments/permissions/get")
def get_experiment_permission(
    backend: BackendDep, experiment_id: str = Query(min_length=1), username: str = Query(min_length=1)
) -> dict[str, Any]:
    permission = _get(backend, "experiment", experiment_id, username)
    return {"experiment_permission": {"experiment_id": experiment_id, "permission": permission}}


@router.delete("/experiments/permissions/delete")
def delete_experiment_permission(body: ExperimentPermission, backend: BackendDep) -> dict[str, Any]:
    _revoke(backend, "experiment", body.experiment_id, body.username)
    return {}


@router.post("/registered-models/permissions/create")
@router.patch("/registered-models/permissions/update")
def set_model_permission(body: ModelPermission, backend: BackendDep) -> dict[str, Any]:
    backend.get_registered_model(body.name)
    _grant(backend, "registered_model", body.name, body.username, body.permission)
    return {}


@router.get("/registered-models/permissions/get")
def get_model_permission(
    backend: BackendDep, name: str = Query(min_length=1), username: str = Query(min_length=1)
) -> dict[str, Any]:
    permission = _get(backend, "registered_model", name, username)
    return {"registered_model_permission": {"name": name, "permission": permission}}


@router.delete("/registered-models/permissions/delete")
def delete_model_permission(body: ModelPermission, backend: BackendDep) -> dict[str, Any]:
    _revoke(backend, "registered_model", body.name, body.username)
    return {}
