"""Model-version ``source`` validation: a version may only point at the store's own artifacts.

MLflow's history of CVEs here (2023-6018, 2024-1558, 2024-3573, 2025-11201, 2026-2614) comes from
sources such as ``file:///etc``, ``//etc``, ``s3://b/x/../../y`` or double-encoded ``%252e%252e``
that later let ``get-artifact`` read outside the artifact root. The rules, applied to the source
after URL-decoding it until it is stable:

* no NUL or control characters, backslashes, ``?``, ``#`` or ``;``, no ``.``/``..`` segments, no
  ``//`` authority on local paths, ≤ 4096 characters;
* ``runs:/<run_id>/<path>`` must name an existing run (and the ``run_id`` argument, when given) and
  resolves to that run's artifact URI + path; ``models:/...`` must name an existing version and
  resolves to its files; ``models:/<model_id>`` (MLflow 3's logged-model URI, what ``mlflow``
  registers when the run holds no ``model`` artifacts) must name an existing logged model and
  resolves to its artifact location; ``mlflow-artifacts:/<path>`` (no host) is the store's proxied root;
* any other URI (a local path, ``file:``, ``s3://``, ...) must sit inside the run's artifact URI
  or one of the run's logged models' artifact locations when ``run_id`` is given, else inside one of
  the store's artifact roots. Local paths are compared
  after resolving symlinks.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Sequence
from urllib.parse import unquote

from flowml.entities_registry import ModelUri, parse_model_uri
from flowml.exceptions import InvalidParameterValue

__all__ = ["MAX_SOURCE_LENGTH", "resolve_source"]

MAX_SOURCE_LENGTH = 4096
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\?#;]")
_RUNS = re.compile(r"^runs:/(?P<run_id>[A-Za-z0-9][\w\-]{0,255})(?:/(?P<path>.*))?$")
# One segment and no alias: a logged model's id, as MLflow parses ``models:/`` URIs.
_LOGGED_MODEL = re.compile(r"^models:/(?P<model_id>[A-Za-z0-9][\w\-]{0,255})$")


def _bad(source: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Invalid model version source {source!r}: {why}")


def _fully_unquoted(text: str) -> str:
    for _ in range(10):
        decoded = unquote(text)
        if decoded == text:
            return text
        text = decoded
    raise InvalidParameterValue("Invalid model version source: too many levels of URL encoding")


def _scheme(uri: str) -> str:
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


def _local_path(uri: str) -> str | None:
    """The absolute local path of a plain path or ``file:`` URI; None when it is not local."""
    scheme = _scheme(uri)
    if scheme == "":
        return uri
    if scheme != "file":
        return None
    rest = uri[len("file:") :]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            return "//" + host  # a remote host: never inside a local root
        return "/" + path
    return rest


def _within_local(path: str, root: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def _within(uri: str, root: str) -> bool:
    """Whether ``uri`` is ``root`` or below it (same scheme; symlinks resolved for local paths)."""
    local, local_root = _local_path(uri), _local_path(root)
    if local is not None or local_root is not None:
        if local is None or local_root is None or local.startswith("//"):
            return False
        return _within_local(local, local_root)
    if _scheme(uri) != _scheme(root):
        return False
    base = root.rstrip("/")
    return uri == base or uri.startswith(base + "/")


def _check_syntax(source: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise InvalidParameterValue("Model version source must be a non-empty string")
    if len(source) > MAX_SOURCE_LENGTH:
        raise _bad(source[:80] + "...", f"longer than {MAX_SOURCE_LENGTH} characters")
    decoded = _fully_unquoted(source)
    for text in (source, decoded):
        if _FORBIDDEN.search(text):
            raise _bad(source, "control characters, '\\', '?', '#' and ';' are not allowed")
    scheme = _scheme(decoded)
    if len(scheme) == 1:
        raise _bad(source, "Windows paths are not allowed")
    body = decoded[len(scheme) + 1 :] if scheme else decoded
    if scheme in ("", "file", "mlflow-artifacts", "runs", "models") and body.startswith("//"):
        host = body[2:].split("/", 1)[0]
        if not (scheme == "file" and host in ("", "localhost")):
            raise _bad(source, "a host or network path is not allowed here")
    if scheme == "" and not decoded.startswith("/"):
        raise _bad(source, "a local source must be an absolute path")
    path_part = body.split("://", 1)[-1]
    segments = [s for s in path_part.split("/") if s != ""]
    if any(s in (".", "..") for s in segments):
        raise _bad(source, "'.' and '..' path segments are not allowed")
    return decoded


def _join(root: str, path: str) -> str:
    return root.rstrip("/") + "/" + path if path else root


def resolve_source(
    source: str,
    *,
    run_id: str | None,
    run_artifact_uri: Callable[[str], str],
    model_location: Callable[[ModelUri], str],
    allowed_roots: Sequence[str],
    logged_model_location: Callable[[str], str] | None = None,
    run_model_locations: Callable[[str], Sequence[str]] | None = None,
    run_model_named: Callable[[str, str], str | None] | None = None,
) -> str | None:
    """Validate ``source``; return where the files are when that differs from it (else None).

    ``run_artifact_uri(run_id)``, ``model_location(uri)`` and ``logged_model_location(model_id)``
    look runs, versions and logged models up (raising RESOURCE_DOES_NOT_EXIST); ``allowed_roots``
    are the store's artifact roots; ``run_model_locations(run_id)`` are the artifact locations of the
    run's logged models (a source with ``run_id`` may lie in one of them, or in the run's artifacts);
    ``run_model_named(run_id, name)`` is the location of the run's logged model ``name`` (or None):
    ``runs:/<run>/<name>/...`` is its files when there is one (MLflow 3's runs repository lets the
    model's files win over the run's), else the run's artifacts.
    """
    decoded = _check_syntax(source)

    def owned_by_run(uri: str, rid: str) -> bool:
        if _within(uri, run_artifact_uri(rid)):
            return True
        return run_model_locations is not None and any(_within(uri, loc) for loc in run_model_locations(rid))

    scheme = _scheme(decoded)
    if scheme == "runs":
        match = _RUNS.match(decoded)
        if match is None:
            raise _bad(source, "expected runs:/<run_id>/<artifact path>")
        if run_id is not None and match["run_id"] != run_id:
            raise _bad(source, f"it names run {match['run_id']} but run_id is {run_id}")
        path = posixpath.normpath(match["path"]) if match["path"] else ""
        path = "" if path == "." else path
        name, _, below = path.partition("/")
        model = run_model_named(match["run_id"], name) if run_model_named is not None and name else None
        if model is not None:
            return _join(model, below)
        return _join(run_artifact_uri(match["run_id"]), path)
    if scheme == "models" and (logged := _LOGGED_MODEL.match(decoded)) is not None:
        if logged_model_location is None:
            raise _bad(source, "logged models cannot be registered here")
        return logged_model_location(logged["model_id"])
    if scheme == "models":
        try:
            parsed = parse_model_uri(decoded)
        except ValueError as exc:
            raise _bad(source, str(exc)) from exc
        return _join(model_location(parsed), parsed.path)
    if scheme == "mlflow-artifacts":
        if run_id is not None and allowed_roots:
            local = _join(allowed_roots[0], decoded[len("mlflow-artifacts:") :].lstrip("/"))
            if not owned_by_run(local, run_id) and not owned_by_run(decoded, run_id):
                raise _bad(source, f"it is outside the artifact location of run {run_id}")
        return None
    if run_id is not None:
        if not owned_by_run(decoded, run_id):
            raise _bad(
                source, f"it is outside the artifact location of run {run_id} and of its logged models"
            )
        return None
    if not any(_within(decoded, root) for root in allowed_roots):
        raise _bad(
            source,
            "it is outside the store's artifact locations; register a runs:/ URI or pass the run_id",
        )
    return None
