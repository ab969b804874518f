"""``flowml server --auth``: every route x every role, the outcome derived from the route's rule.

The routes come from the app itself (both MLflow mounts, ``/api/flowml``, the artifact proxy, the
public pages), so a new route without a rule in ``auth.RULES`` fails here, and a rule that lets the
wrong role through fails too. Roles: anonymous, a user with no permission, users holding READ, EDIT
and MANAGE on the experiment and registered model a request names, and an admin. The matrix runs
through the whole app (uvicorn in a thread of the test process: routing, middleware, the auth
dependency, handlers); a smoke subset goes through a real ``flowml server --auth`` process.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from flowml.client.local import SqlBackend
from flowml.server import ServerSettings, create_app
from flowml.server.auth import RULES, Rule, route_key
from flowml.store import auth as auth_store
from tests.fixtures.server import flowml_server_popen, serve_in_thread

ADMIN = ("admin", "admin-password")
ROLES = ("anonymous", "no_permission", "READ", "EDIT", "MANAGE", "admin")
LEVELS = {"no_permission": 0, "READ": 1, "EDIT": 2, "MANAGE": 3}
ALLOWED = "allowed"  # anything but 401/403: the request got past authentication and authorization


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as mounted, e.g. /ajax-api/2.0/mlflow/logged-models/{model_id}
    api_route: bool  # False: a plain Starlette route (docs, UI), which no dependency guards

    @property
    def rule(self) -> Rule | None:
        return RULES.get(route_key(self.method, self.path))


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app serves, through FastAPI's included routers (``app.routes`` holds
    the routers, not their routes)."""
    found = set()
    for ctx in iter_route_contexts(app.routes):
        if ctx.path is None or ctx.methods is None:
            continue
        for method in ctx.methods - {"HEAD"}:
            found.add(Endpoint(method, ctx.path, isinstance(ctx.original_route, APIRoute)))
    return sorted(found, key=lambda e: (e.path, e.method))


def expected(rule: Rule, role: str) -> str:
    if rule.kind == "public":
        return ALLOWED
    if role == "anonymous":
        return "401"
    if role == "admin" or rule.kind == "user":
        return ALLOWED
    if rule.kind in ("admin", "metrics", "self"):  # "self": the requests below name another user
        return "403"
    return ALLOWED if LEVELS[role] >= auth_store.level(rule.permission) else "403"


def outcome(response: httpx.Response) -> str:
    return str(response.status_code) if response.status_code in (401, 403) else ALLOWED


def _settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'matrix.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        auth=True,
        auth_admin_username=ADMIN[0],
        auth_admin_password=ADMIN[1],
    )


def test_every_route_has_an_access_rule(tmp_path: Path) -> None:
    """Fails when someone adds a route without deciding who may call it. Plain Starlette routes get
    no auth dependency at all, so theirs must be public by design."""
    app = create_app(_settings(tmp_path))
    found = endpoints(app)
    assert len(found) > 150  # the enumeration itself works (both MLflow mounts, flowml, proxy)
    assert [f"{e.method} {e.path}" for e in found if e.rule is None] == []
    unguarded = [e for e in found if not e.api_route]
    assert [f"{e.method} {e.path}" for e in unguarded if e.rule and e.rule.kind != "public"] == []


class World:
    """Users (one per role, with a token) and, per request that may change things, a fresh
    experiment + run + logged model + registered model on which the role users hold their level."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        self.tokens: dict[str, str] = {}
        self._ids = itertools.count()
        for role in ROLES[1:-1]:
            name = f"user-{role.lower()}"

            def user_with_token(s: Any, name: str = name) -> str:
                auth_store.create_user(s, name, "role-password")
                return auth_store.create_token(s, name, "matrix")

            self.tokens[role] = backend.db.write(user_with_token)
        self.tokens["admin"] = backend.db.write(lambda s: auth_store.create_token(s, ADMIN[0], "matrix"))
        self.fields: dict[str, Any] = {}
        self.renew()

    def renew(self) -> None:
        n = next(self._ids)
        b = self.backend
        exp_name, model = f"matrix-exp-{n}", f"matrix-model-{n}"
        exp_id = b.create_experiment(exp_name, None, {})
        run_id = b.create_run(exp_id, "admin", None, {}, None).info.run_id
        logged = b.logged_models.create(exp_id, "lm", run_id, {}, {}, None).model_id
        b.create_registered_model(model, {}, None, "admin")

        def grant(s: Any) -> None:
            for role in ("READ", "EDIT", "MANAGE"):
                user = auth_store.get_user(s, f"user-{role.lower()}")
                auth_store.set_permission(s, "experiment", exp_id, user.id, role)
                auth_store.set_permission(s, "registered_model", model, user.id, role)

        b.db.write(grant)
        artifacts = f"{exp_id}/{run_id}/artifacts"
        self.fields = {
            "experiment_id": exp_id,
            "experiment_ids": [exp_id],
            "experiment_name": exp_name,
            "run_id": run_id,
            "run_uuid": run_id,
            "name": model,
            "model_id": logged,
            "username": "someone-else",
            "path": artifacts,
            # path parameters
            "artifact_path": f"{artifacts}/f.txt",
            "key": "k",
            "deployment_id": "1",
        }

    def request(self, client: httpx.Client, endpoint: Endpoint, role: str) -> httpx.Response:
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(self.fields[m.group(1)]), endpoint.path)
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role != "anonymous" else {}
        if endpoint.method == "GET":
            return client.get(path, params=self.fields, headers=headers)
        if endpoint.method == "PUT":  # artifact upload: raw bytes
            return client.put(path, content=b"x", headers=headers)
        return client.request(endpoint.method, path, json=self.fields, headers=headers)


@pytest.fixture
def matrix_app(tmp_path: Path) -> Iterator[tuple[httpx.Client, World, list[Endpoint]]]:
    settings = _settings(tmp_path)
    options = settings.model_dump(exclude={"backend_store_uri", "artifacts_destination"})
    with serve_in_thread(settings.backend_store_uri, settings.artifacts_destination, **options) as url:
        # the test's own backend on the same store: users, permissions and resources
        world = World(SqlBackend(settings.backend_store_uri, settings.artifacts_destination))
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client, world, endpoints(create_app(settings))
        world.backend.close()


def test_route_role_matrix(matrix_app: tuple[httpx.Client, World, list[Endpoint]]) -> None:
    client, world, found = matrix_app
    wrong = []
    for endpoint in found:
        rule = endpoint.rule
        assert rule is not None, endpoint
        world.renew()
        dirty = False
        for role in ROLES:
            want = expected(rule, role)
            if want == ALLOWED and endpoint.method != "GET":
                if dirty:  # an earlier role's request may have deleted or renamed what we name
                    world.renew()
                dirty = True
            response = world.request(client, endpoint, role)
            got = outcome(response)
            if got != want:
                wrong.append(f"{endpoint.method} {endpoint.path} as {role}: {got}, expected {want}")
    assert wrong == []


def test_matrix_smoke_through_a_real_server_process(tmp_path: Path) -> None:
    """A subset of the matrix against ``flowml server --auth`` (uvicorn, the CLI, real sockets)."""
    settings = _settings(tmp_path)
    env = {"FLOWML_SERVER_AUTH_ADMIN_USERNAME": ADMIN[0], "FLOWML_SERVER_AUTH_ADMIN_PASSWORD": ADMIN[1]}
    with (
        flowml_server_popen(
            settings.backend_store_uri, settings.artifacts_destination, "--auth", env=env
        ) as (url, _proc),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        # a second process writing the same SQLite file: the server's own users and permissions
        world = World(SqlBackend(settings.backend_store_uri, settings.artifacts_destination))
        mlflow, ajax, flowml = "/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/flowml"
        subset = [
            Endpoint("GET", "/health", True),
            Endpoint("GET", "/docs", False),
            Endpoint("GET", f"{mlflow}/experiments/get", True),
            Endpoint("POST", f"{ajax}/runs/log-batch", True),
            Endpoint("POST", f"{mlflow}/experiments/delete", True),
            Endpoint("GET", f"{mlflow}/registered-models/get", True),
            Endpoint("POST", f"{mlflow}/model-versions/transition-stage", True),
            Endpoint("GET", "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}", True),
            Endpoint("POST", f"{mlflow}/users/create", True),
            Endpoint("GET", f"{flowml}/registry/events", True),
        ]
        wrong = []
        for endpoint in subset:
            assert endpoint.rule is not None, endpoint
            for role in ROLES:
                world.renew()
                got, want = outcome(world.request(client, endpoint, role)), expected(endpoint.rule, role)
                if got != want:
                    wrong.append(f"{endpoint.method} {endpoint.path} as {role}: {got}, expected {want}")
        world.backend.close()
    assert wrong == []
