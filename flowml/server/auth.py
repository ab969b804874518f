"""``flowml server --auth``: who is calling (Basic or Bearer) and may they (per-route rules).

Default deny: every route needs a rule in :data:`RULES` (a test fails when one is missing), every
request but the public ones needs valid credentials (401 otherwise), and a user needs at least the
rule's permission on the experiment or registered model the request touches (403 otherwise).
Admins pass every check. Searches are narrowed in SQL to what the user may read
(see :func:`restrict_filter`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from flowml.client.local import SqlBackend
from flowml.exceptions import FlowmlError, InvalidParameterValue, PermissionDenied, Unauthenticated
from flowml.store import auth as auth_store

__all__ = ["NOTHING", "RULES", "Authenticator", "Rule", "make_dependency", "restrict_filter", "route_key"]

#: What :func:`restrict_filter` returns when the caller may read nothing: search nothing.
NOTHING = "\0"

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/mlflow-artifacts", "/api/flowml")


@dataclass(frozen=True, slots=True)
class Rule:
    """``kind``: public | user | admin | self | experiment | run | model | logged_model | artifact |
    metrics (admins, or anyone when the server's ``metrics_public`` is set).

    ``field`` names where the resource id is (query, JSON body or path parameter).
    """

    kind: str
    permission: str = "READ"
    field: str = ""


def _r(kind: str, permission: str = "READ", field: str = "") -> Rule:
    return Rule(kind, permission, field)


EXP_R, EXP_E, EXP_M = (_r("experiment", p, "experiment_id") for p in ("READ", "EDIT", "MANAGE"))
RUN_R, RUN_E = _r("run", "READ", "run_id"), _r("run", "EDIT", "run_id")
MOD_R, MOD_E, MOD_M = (_r("model", p, "name") for p in ("READ", "EDIT", "MANAGE"))
USER, ADMIN, PUBLIC = _r("user"), _r("admin"), _r("public")

#: (method, path without the mount prefix) -> rule. Searches are "user" and narrowed in SQL.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): _r("metrics"),  # Prometheus: an admin's token, or metrics_public
    ("GET", "/version"): PUBLIC,
    ("GET", "/api/3.0/mlflow/server-info"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    # the web UI's page and static files (plain routes: no dependency can guard them; the page's own
    # API calls carry the credentials)
    ("GET", "/"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,
    # experiments
    ("POST", "/experiments/create"): USER,
    ("GET", "/experiments/get"): EXP_R,
    ("GET", "/experiments/get-by-name"): _r("experiment_name", "READ", "experiment_name"),
    ("POST", "/experiments/search"): USER,
    ("GET", "/experiments/search"): USER,
    ("POST", "/experiments/update"): EXP_E,
    ("POST", "/experiments/delete"): EXP_M,
    ("POST", "/experiments/restore"): EXP_M,
    ("POST", "/experiments/set-experiment-tag"): EXP_E,
    ("POST", "/experiments/delete-experiment-tag"): EXP_E,
    # runs
    ("POST", "/runs/create"): EXP_E,
    ("GET", "/runs/get"): RUN_R,
    ("POST", "/runs/update"): RUN_E,
    ("POST", "/runs/delete"): RUN_E,
    ("POST", "/runs/restore"): RUN_E,
    ("POST", "/runs/log-metric"): RUN_E,
    ("POST", "/runs/log-parameter"): RUN_E,
    ("POST", "/runs/set-tag"): RUN_E,
    ("POST", "/runs/delete-tag"): RUN_E,
    ("POST", "/runs/log-batch"): RUN_E,
    ("POST", "/runs/log-inputs"): RUN_E,
    ("POST", "/runs/outputs"): RUN_E,
    ("POST", "/runs/search"): _r("experiments", "READ", "experiment_ids"),
    ("GET", "/metrics/get-history"): RUN_R,
    ("GET", "/artifacts/list"): RUN_R,
    ("POST", "/runs/artifact-files"): RUN_E,
    ("GET", "/runs/artifact-files"): RUN_R,
    # logged models (MLflow 3)
    ("POST", "/logged-models"): EXP_E,
    ("POST", "/logged-models/search"): _r("experiments", "READ", "experiment_ids"),
    ("GET", "/logged-models/{model_id}"): _r("logged_model", "READ", "model_id"),
    ("PATCH", "/logged-models/{model_id}"): _r("logged_model", "EDIT", "model_id"),
    ("DELETE", "/logged-models/{model_id}"): _r("logged_model", "EDIT", "model_id"),
    ("PATCH", "/logged-models/{model_id}/tags"): _r("logged_model", "EDIT", "model_id"),
    ("DELETE", "/logged-models/{model_id}/tags/{key}"): _r("logged_model", "EDIT", "model_id"),
    ("POST", "/logged-models/{model_id}/params"): _r("logged_model", "EDIT", "model_id"),
    # artifact proxy: the first path segment is the experiment id
    ("GET", "/artifacts"): _r("artifact", "READ", "path"),
    ("GET", "/artifacts/{artifact_path}"): _r("artifact", "READ", "artifact_path"),
    ("PUT", "/artifacts/{artifact_path}"): _r("artifact", "EDIT", "artifact_path"),
    ("DELETE", "/artifacts/{artifact_path}"): _r("artifact", "EDIT", "artifact_path"),
    # registry
    ("POST", "/registered-models/create"): USER,
    ("GET", "/registered-models/get"): MOD_R,
    ("POST", "/registered-models/rename"): MOD_M,
    ("PATCH", "/registered-models/update"): MOD_E,
    ("DELETE", "/registered-models/delete"): MOD_M,
    ("GET", "/registered-models/search"): USER,
    ("POST", "/registered-models/get-latest-versions"): MOD_R,
    ("GET", "/registered-models/get-latest-versions"): MOD_R,
    ("POST", "/registered-models/set-tag"): MOD_E,
    ("DELETE", "/registered-models/delete-tag"): MOD_E,
    ("POST", "/registered-models/alias"): MOD_E,
    ("DELETE", "/registered-models/alias"): MOD_E,
    ("GET", "/registered-models/alias"): MOD_R,
    ("POST", "/model-versions/create"): MOD_E,
    ("GET", "/model-versions/get"): MOD_R,
    ("PATCH", "/model-versions/update"): MOD_E,
    ("DELETE", "/model-versions/delete"): MOD_E,
    ("GET", "/model-versions/search"): USER,
    ("POST", "/model-versions/transition-stage"): MOD_E,
    ("POST", "/model-versions/set-tag"): MOD_E,
    ("DELETE", "/model-versions/delete-tag"): MOD_E,
    ("GET", "/model-versions/get-download-uri"): MOD_R,
    ("GET", "/registry/history"): MOD_R,
    ("GET", "/registry/events"): ADMIN,
    ("GET", "/events"): ADMIN,
    ("GET", "/metrics/history-downsampled"): RUN_R,
    ("GET", "/runs/artifacts/file"): RUN_R,
    ("GET", "/runs/artifacts/zip"): RUN_R,
    # deployments: a listing for any user; writes by deployment workers (admin service accounts) or
    # by users who may edit the model being deployed
    ("GET", "/deployments"): USER,
    ("GET", "/deployments/{deployment_id}"): USER,
    ("POST", "/deployments"): MOD_E,
    ("POST", "/deployments/update"): ADMIN,
    # rollback replaces what serves for every caller, without the deployment's promotion gate: MANAGE
    ("POST", "/deployments/rollback"): MOD_M,
    ("GET", "/registry/events/pending"): ADMIN,
    ("GET", "/registry/events/attempts"): ADMIN,
    ("POST", "/registry/events/attempts"): ADMIN,
    ("GET", "/registry/policy"): MOD_R,
    ("POST", "/registry/policy"): MOD_M,
    ("GET", "/registry/check-promotion"): MOD_R,
    # users and permissions (MLflow basic-auth's API)
    ("POST", "/users/create"): ADMIN,
    ("GET", "/users/get"): _r("self", "READ", "username"),
    ("GET", "/users/current"): USER,
    ("PATCH", "/users/update-password"): _r("self", "EDIT", "username"),
    ("PATCH", "/users/update-admin"): ADMIN,
    ("DELETE", "/users/delete"): ADMIN,
    ("POST", "/users/tokens"): USER,
    ("POST", "/experiments/permissions/create"): EXP_M,
    ("GET", "/experiments/permissions/get"): EXP_M,
    ("PATCH", "/experiments/permissions/update"): EXP_M,
    ("DELETE", "/experiments/permissions/delete"): EXP_M,
    ("POST", "/registered-models/permissions/create"): MOD_M,
    ("GET", "/registered-models/permissions/get"): MOD_M,
    ("PATCH", "/registered-models/permissions/update"): MOD_M,
    ("DELETE", "/registered-models/permissions/delete"): MOD_M,
}


def route_key(method: str, path: str) -> tuple[str, str]:
    """``("POST", "/api/2.0/mlflow/runs/log-batch")`` → ``("POST", "/runs/log-batch")``."""
    for prefix in PREFIXES:
        if path.startswith(prefix + "/") or path == prefix:
            path = path[len(prefix) :] or "/"
            break
    return method, path.replace(":path}", "}")


class Authenticator:
    """Resolves credentials to users (with a short cache: scrypt is deliberately slow)."""

    def __init__(self, backend: SqlBackend, cache_seconds: float = 60.0) -> None:
        self.backend = backend
        self._cache: dict[str, tuple[float, auth_store.User]] = {}
        self._lock = threading.Lock()
        self._ttl = cache_seconds

    def _cached(self, key: str, resolve: Callable[[], auth_store.User | None]) -> auth_store.User | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        user = resolve()
        if user is not None:
            with self._lock:
                self._cache[key] = (now, user)
        return user

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def user_from_header(self, header: str | None) -> auth_store.User:
        if not header:
            raise Unauthenticated("Authentication required: send Basic credentials or a Bearer token")
        scheme, _, value = header.partition(" ")
        db = self.backend.db
        key = hashlib.sha256(header.encode()).hexdigest()
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated("Malformed Basic credentials") from None

            def check() -> auth_store.User | None:
                with db.read() as s:
                    return auth_store.authenticate(s, username, password)

            user = self._cached(key, check)
        elif scheme.lower() == "bearer":

            def lookup() -> auth_store.User | None:
                with db.read() as s:
                    return auth_store.user_for_token(s, value.strip())

            user = self._cached(key, lookup)
        else:
            raise Unauthenticated(f"Unsupported authorization scheme {scheme!r}")
        if user is None:
            raise Unauthenticated("Invalid username/password or token")
        return user


async def _field(request: Request, name: str) -> Any:
    if name in request.path_params:
        return request.path_params[name]
    if name in request.query_params:
        values = request.query_params.getlist(name)
        return values if len(values) > 1 else values[0]
    if request.method in ("POST", "PATCH", "DELETE", "PUT") and request.headers.get(
        "content-type", ""
    ).startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            return None
        if isinstance(body, dict):
            if name == "run_id":
                return body.get("run_id") or body.get("run_uuid")
            return body.get(name)
    if name == "run_id":
        return request.query_params.get("run_uuid")
    return None


def _experiment_of(backend: SqlBackend, rule: Rule, value: Any) -> list[str]:
    """The experiment ids a request touches under ``rule``."""
    if rule.kind == "experiment":
        return [str(value or "0")]
    if rule.kind == "experiments":
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    if rule.kind == "experiment_name":
        exp = backend.get_experiment_by_name(str(value))
        return [exp.experiment_id] if exp else []
    if rule.kind == "run":
        return [backend.get_run_info(str(value)).experiment_id]
    if rule.kind == "logged_model":
        return [backend.logged_models.get(str(value)).experiment_id]
    if rule.kind == "artifact":
        first = str(value or "").lstrip("/").split("/", 1)[0]
        if not first.isdigit():
            raise PermissionDenied("Only admins may access artifacts outside an experiment's location")
        return [first]
    raise AssertionError(rule.kind)


def _check(backend: SqlBackend, user: auth_store.User, rule: Rule, value: Any) -> None:
    if rule.kind in ("user", "public") or user.is_admin:
        return
    if rule.kind in ("admin", "metrics"):
        raise PermissionDenied("Permission denied: this requires an admin user")
    if rule.kind == "self":
        if str(value) != user.username:
            raise PermissionDenied("Permission denied: users may only see and change themselves")
        return
    if value in (None, "", []) and rule.kind not in ("experiment", "artifact"):
        raise InvalidParameterValue(f"Missing value for required parameter '{rule.field}'.")
    needed = auth_store.level(rule.permission)
    with backend.db.read() as s:
        if rule.kind == "model":
            have = auth_store.get_permission(s, "registered_model", str(value), user.id)
            if auth_store.level(have) < needed:
                raise PermissionDenied(
                    f"Permission denied: {rule.permission} on registered model '{value}' required"
                )
            return
    for exp_id in _experiment_of(backend, rule, value):
        with backend.db.read() as s:
            have = auth_store.get_permission(s, "experiment", exp_id, user.id) if exp_id.isdigit() else ""
        if not have or auth_store.level(have) < needed:
            raise PermissionDenied(f"Permission denied: {rule.permission} on experiment {exp_id} required")


def make_dependency(authenticator: Authenticator) -> Callable[[Request], Any]:
    """The FastAPI dependency every router gets when auth is on."""

    async def authorize(request: Request) -> None:
        route = request.scope.get("route")
        key = route_key(request.method, getattr(route, "path", request.url.path))
        rule = RULES.get(key)
        if rule is None:  # default deny: a route nobody wrote a rule for
            raise PermissionDenied(f"No access rule for {key[0]} {key[1]}")
        if rule.kind == "public" or (rule.kind == "metrics" and request.app.state.settings.metrics_public):
            return
        user = await run_in_threadpool(authenticator.user_from_header, request.headers.get("authorization"))
        request.state.user = user.username
        request.state.auth_user = user
        value = await _field(request, rule.field) if rule.field else None
        try:
            await run_in_threadpool(_check, authenticator.backend, user, rule, value)
        except FlowmlError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST" and not user.is_admin:
                raise PermissionDenied("Permission denied") from exc  # don't reveal what exists
            raise

    return authorize


def restrict_filter(request: Request, filter_string: str | None, kind: str) -> str | None:
    """Narrow a search to what the caller may read, inside the SQL query (``... AND name IN (...)``).

    Returns the filter to use, or :data:`NOTHING` when the caller may read nothing.
    """
    user: auth_store.User | None = getattr(request.state, "auth_user", None)
    if user is None or user.is_admin:
        return filter_string
    backend: SqlBackend = request.app.state.backend
    with backend.db.read() as s:
        if kind == "experiments":
            allowed = auth_store.permitted_experiment_ids(s, user.id)
            column = "experiment_id"
        else:
            allowed = auth_store.permitted_model_names(s, user.id)
            column = "name"
    if not allowed:
        return NOTHING
    quoted = ", ".join("'" + a.replace("'", "''") + "'" for a in allowed)
    clause = f"{column} IN ({quoted})"
    return f"{filter_string} AND {clause}" if filter_string and filter_string.strip() else clause


def owner(request: Request) -> auth_store.User | None:
    """The authenticated caller, when auth is on."""
    user: auth_store.User | None = getattr(request.state, "auth_user", None)
    return user


def create_owned_experiment(
    backend: SqlBackend, user: auth_store.User, name: str, location: str | None, tags: dict[str, str]
) -> str:
    """Create an experiment and give its creator MANAGE, in one transaction."""
    from flowml.store import tracking

    def write(s: Any) -> str:
        exp_id = tracking.create_experiment(s, name, backend.artifact_root, location, tags)
        auth_store.set_permission(s, "experiment", exp_id, user.id, "MANAGE")
        return exp_id

    return backend.db.write(write)


def create_owned_model(
    backend: SqlBackend, user: auth_store.User, name: str, tags: dict[str, str], description: str | None
) -> Any:
    """Create a registered model and give its creator MANAGE, in one transaction."""
    from flowml.store import registry

    def write(s: Any) -> Any:
        model = registry.create_registered_model(s, name, tags, description, user.username)
        auth_store.set_permission(s, "registered_model", name, user.id, "MANAGE")
        return model

    return backend.db.write(write)
