"""Model URIs → a local model directory (plus the checksums the run recorded, when there is a run).

Supported (MLflow's forms):

- ``models:/<model_id>`` — an MLflow 3 logged model, downloaded from its artifact location; the
  manifest sha256 recorded on the model (``flowml.model.checksums_sha256``) is the integrity record.
- ``runs:/<run_id>/<name>[/<path>]`` — the run's logged model called ``<name>`` (MLflow 3's layout),
  else the run's own artifacts at ``<name>/<path>`` (models logged before logged models existed); the
  run's recorded artifact checksums are returned for the integrity check.
- ``models:/<name>/<version>``, ``models:/<name>/<stage>``, ``models:/<name>/latest``,
  ``models:/<name>@<alias>`` — parsed here and resolved by :func:`resolve_registry_uri`, the one seam
  the registry fills in (it calls ``client.get_model_version_download_uri``-shaped methods when the
  client has them; until then a clear ``RESOURCE_DOES_NOT_EXIST`` error).
- plain paths and ``file://`` URIs (used in place), ``s3://…`` (downloaded with boto3), and
  ``mlflow-artifacts:/…`` (through the tracking server's artifact proxy, or the local artifact root
  when the tracking store is embedded).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import Any

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = [
    "RegistryRef",
    "ResolvedModel",
    "logged_model_id",
    "parse_registry_uri",
    "resolve_model_uri",
    "resolve_registry_uri",
]

logger = logging.getLogger(__name__)

_REGISTRY_UNAVAILABLE = "the model registry is not available yet"


@dataclass(frozen=True)
class RegistryRef:
    name: str
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False


@dataclass(frozen=True)
class ResolvedModel:
    """A model directory on local disk and what is known about where it came from."""

    local_path: str
    source_uri: str
    run_id: str | None = None
    artifact_path: str | None = None
    run_checksums: dict[str, tuple[int, str]] | None = None


def parse_registry_uri(uri: str) -> RegistryRef:
    """``models:/name/3``, ``models:/name/Production``, ``models:/name/latest``, ``models:/name@alias``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "models" or parsed.netloc:
        raise InvalidParameterValue(
            f"Not a valid models:/ URI: {uri!r}. Expected models:/<name>/<version>, "
            "models:/<name>/<stage> or models:/<name>@<alias>"
        )
    path = parsed.path.lstrip("/")
    if "@" in path and "/" not in path:
        name, alias = path.split("@", 1)
        if name and alias:
            return RegistryRef(name, alias=alias)
    parts = path.split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidParameterValue(
            f"Not a valid models:/ URI: {uri!r}. Expected models:/<name>/<version>, "
            "models:/<name>/<stage> or models:/<name>@<alias>"
        )
    name, suffix = parts
    if suffix.isdigit():
        return RegistryRef(name, version=suffix)
    if suffix.lower() == "latest":
        return RegistryRef(name, latest=True)
    return RegistryRef(name, stage=suffix)


def _resolve_registry(uri: str, client: Any) -> tuple[str, Any]:
    """(download URI, model version or None) for a ``models:/`` URI."""
    ref = parse_registry_uri(uri)
    download_uri = getattr(client, "get_model_version_download_uri", None)
    if download_uri is None:
        raise ResourceDoesNotExist(f"Cannot resolve {uri!r}: {_REGISTRY_UNAVAILABLE}.")
    resolver = getattr(client, "resolve_model_uri", None)
    if callable(resolver):  # the registry's own resolution (stages, aliases, latest)
        mv = resolver(uri)
        return str(download_uri(mv.name, mv.version)), mv
    mv = None
    version = ref.version
    if ref.alias is not None:
        mv = client.get_model_version_by_alias(ref.name, ref.alias)
        version = str(mv.version)
    elif ref.latest or ref.stage is not None:
        stages = None if ref.latest else [ref.stage]
        versions = client.get_latest_versions(ref.name, stages)
        if not versions:
            what = "any version" if ref.latest else f"a version in stage {ref.stage!r}"
            raise ResourceDoesNotExist(f"Registered model {ref.name!r} has no {what} ({uri!r})")
        mv = max(versions, key=lambda v: int(v.version))
        version = str(mv.version)
    return str(download_uri(ref.name, version)), mv


def resolve_registry_uri(uri: str, client: Any = None) -> str:
    """The storage URI a ``models:/`` URI points at (the seam the registry fills in)."""
    if client is None:
        from flowml.client import FlowmlClient

        client = FlowmlClient()
    return _resolve_registry(uri, client)[0]


def _run_checksums_under(client: Any, run_id: str, target: str) -> dict[str, tuple[int, str]] | None:
    """The run's recorded checksums for the files below ``target``, if it lies in the run's artifacts."""
    from flowml.artifacts.local import local_path_from_uri

    root = client.get_run(run_id).info.artifact_uri
    if not root.startswith("s3:"):
        root, target = local_path_from_uri(root), local_path_from_uri(target)
    root, target = root.rstrip("/"), target.rstrip("/")
    if not target.startswith(root + "/"):
        return None
    prefix = target[len(root) + 1 :] + "/"
    recorded = {
        rel[len(prefix) :]: (int(size), str(sha))
        for rel, (size, sha) in client.get_artifact_checksums(run_id).items()
        if rel.startswith(prefix)
    }
    return recorded or None


def _parse_runs_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("runs:/") :].lstrip("/")
    run_id, _, path = rest.partition("/")
    path = path.strip("/")
    if not run_id or not path:
        raise InvalidParameterValue(
            f"Not a valid runs:/ URI: {uri!r}. Expected runs:/<run_id>/<artifact_path>"
        )
    return run_id, path


def _dst(dst_path: str | None) -> str:
    return dst_path if dst_path is not None else tempfile.mkdtemp(prefix="flowml-model-")


def logged_model_id(uri: str) -> str | None:
    """The id in a ``models:/<model_id>`` URI (one segment, no alias: MLflow 3's parse), else None."""
    parsed = urllib.parse.urlparse(uri)
    path = parsed.path.lstrip("/")
    if parsed.scheme != "models" or parsed.netloc or not path or "/" in path or "@" in path:
        return None
    return path


def _model_record(client: Any, model: Any, local: str) -> dict[str, tuple[int, str]] | None:
    """The integrity record of a logged model's downloaded files (None when none was recorded)."""
    from flowml.client._logged_models import MODEL_CHECKSUMS_TAG
    from flowml.models.integrity import manifest_record_checksums

    recorded = model.tags.get(MODEL_CHECKSUMS_TAG)
    return manifest_record_checksums(local, recorded) if recorded else None


def _from_logged_model(client: Any, model: Any, path: str, dst: str, uri: str) -> ResolvedModel:
    local = client.download_logged_model_artifacts(model.model_id, path, dst)
    checksums = _model_record(client, model, local) if not path else None
    return ResolvedModel(local, uri, model.source_run_id, None, checksums)


def _from_run(uri: str, dst_path: str | None) -> ResolvedModel:
    from flowml.client import FlowmlClient

    run_id, path = _parse_runs_uri(uri)
    client = FlowmlClient()
    name, _, below = path.partition("/")
    model = client._run_logged_model(run_id, name)
    if model is not None:  # MLflow 3: runs:/<run_id>/<name> is the run's logged model <name>
        dst = os.path.join(_dst(dst_path), name)
        os.makedirs(dst, exist_ok=True)
        return _from_logged_model(client, model, below, dst, uri)
    local = client.download_artifacts(run_id, path, _dst(dst_path))
    prefix = path + "/"
    recorded = {
        rel[len(prefix) :]: (int(size), str(sha))
        for rel, (size, sha) in client.get_artifact_checksums(run_id).items()
        if rel.startswith(prefix)
    }
    return ResolvedModel(local, uri, run_id, path, recorded or None)


def _download_via_proxy(base: str, path: str, dst: str, headers: dict[str, str]) -> str:
    """Download ``path`` (a dir) through an MLflow artifact proxy at ``base`` into ``dst``."""
    from flowml.artifacts.base import normalize_artifact_path
    from flowml.artifacts.http import ProxyArtifactRepository

    parent, _, leaf = normalize_artifact_path(path, allow_root=False).rpartition("/")
    repo = ProxyArtifactRepository(f"mlflow-artifacts:/{parent}", base, headers=headers)
    try:
        return repo.download_artifacts(leaf, dst)
    finally:
        repo.close()


def _from_storage(uri: str, dst_path: str | None) -> str:
    from flowml.artifacts import get_artifact_repository
    from flowml.settings import get_settings

    settings = get_settings()
    if uri.startswith("mlflow-artifacts:"):
        parsed = urllib.parse.urlparse(uri)
        path = parsed.path.lstrip("/")
        tracking = settings.tracking_uri
        if parsed.netloc:
            tracking = f"http://{parsed.netloc}"
        if tracking.startswith(("http://", "https://")):
            return _download_via_proxy(tracking, path, _dst(dst_path), settings.auth_headers())
        uri = settings.artifact_root.rstrip("/") + "/" + path
    parent, _, leaf = uri.rstrip("/").rpartition("/")
    if not leaf or not parent or parent.endswith(":/") or parent.endswith(":"):
        raise InvalidParameterValue(f"Model URI {uri!r} must name a model directory below a bucket or root")
    repo = get_artifact_repository(parent, s3_endpoint_url=settings.s3_endpoint_url)
    return repo.download_artifacts(leaf, _dst(dst_path))


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def resolve_model_uri(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> ResolvedModel:
    """Make the model at ``model_uri`` available locally; local paths are used in place."""
    uri = os.fspath(model_uri)
    if not uri:
        raise InvalidParameterValue("model_uri must be a non-empty string")
    match = _SCHEME_RE.match(uri)
    scheme = match.group(1).lower() if match and len(match.group(1)) > 1 else ""
    if scheme == "runs":
        return _from_run(uri, dst_path)
    if scheme == "models":
        from flowml.client import FlowmlClient

        client = FlowmlClient()
        if (model_id := logged_model_id(uri)) is not None:
            return _from_logged_model(client, client.get_logged_model(model_id), "", _dst(dst_path), uri)
        target, version = _resolve_registry(uri, client)
        inner = resolve_model_uri(target, dst_path)
        checksums, run_id = inner.run_checksums, inner.run_id
        source_model = logged_model_id(str(getattr(version, "source", None) or ""))
        if source_model is not None:  # a version of a logged model: the model's record
            with contextlib.suppress(ResourceDoesNotExist):
                checksums = _model_record(client, client.get_logged_model(source_model), inner.local_path)
        if checksums is None and getattr(version, "run_id", None):
            run_id = str(version.run_id)
            checksums = _run_checksums_under(client, run_id, target)
        return ResolvedModel(inner.local_path, uri, run_id, inner.artifact_path, checksums)
    if scheme in ("", "file"):
        from flowml.artifacts.local import local_path_from_uri

        local = os.path.abspath(local_path_from_uri(uri))
        if not os.path.exists(local):
            raise ResourceDoesNotExist(f"No model found at {uri!r}")
        return ResolvedModel(local, uri)
    if scheme in ("s3", "mlflow-artifacts"):
        return ResolvedModel(_from_storage(uri, dst_path), uri)
    raise InvalidParameterValue(
        f"Unsupported model URI {uri!r}: use runs:/, models:/, s3://, mlflow-artifacts:/, file:// or a path"
    )
