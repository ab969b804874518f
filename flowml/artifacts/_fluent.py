"""MLflow's ``mlflow.artifacts`` functions: download, list and load artifacts by URI or run id.

An artifact URI is split as MLflow splits it: a repository root and the last path segment below
it (``runs:/<id>/a/b`` → the run's ``a/`` and ``b``; ``models:/<name>/<version>/sub`` → the
version's storage location and ``sub``), so results name the same local paths as MLflow's.

- ``runs:/`` and ``models:/`` (registry forms, and ``models:/m-...`` logged models when the client
  has them) are resolved through :class:`~flowml.client.FlowmlClient` on ``tracking_uri``;
- plain paths, ``file:`` and ``s3://`` go to flowml's repositories (``FLOWML_S3_ENDPOINT_URL``);
- ``mlflow-artifacts:`` goes through the artifact proxy of the ``http(s)://`` tracking server.

Without ``dst_path``, local artifacts named by a path, a ``file:`` URI or ``run_id=`` alone are returned
in place (MLflow's local repository does that); everything else is copied to a new temp directory.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import posixpath
import re
import tempfile
import urllib.parse
from typing import TYPE_CHECKING, Any

from flowml.artifacts.base import ArtifactRepository
from flowml.artifacts.local import LocalArtifactRepository, uri_scheme
from flowml.entities import FileInfo
from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from flowml.client import FlowmlClient

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]

logger = logging.getLogger(__name__)

_LOGGED_MODEL_RE = re.compile(r"^m-[0-9a-f]+$")
_MAX_INDIRECTIONS = 8


def _check_arguments(artifact_uri: str | None, run_id: str | None, artifact_path: str | None) -> None:
    if (run_id, artifact_uri).count(None) != 1:
        raise InvalidParameterValue("Exactly one of `run_id` or `artifact_uri` must be specified")
    if artifact_uri is not None and artifact_path is not None:
        raise InvalidParameterValue("`artifact_path` cannot be specified if `artifact_uri` is specified")


def _split_models_uri(uri: str) -> tuple[str, str]:
    """MLflow's split: ``models:/name/1/sub/dir`` → (``models:/name/1``, ``sub/dir``);
    ``models:/name@alias/sub`` → (``models:/name@alias``, ``sub``); ``models:/m-123/sub`` likewise."""
    uri = uri.rstrip("/")
    path = urllib.parse.urlsplit(uri).path
    if path.count("/") >= 2:
        splits = path.split("/", 3)
        cut = 2 if "@" in splits[1] or _LOGGED_MODEL_RE.match(splits[1]) else 3
        return "models:" + "/".join(splits[:cut]), "/".join(splits[cut:])
    return uri, ""


class _Resolver:
    """Turns artifact URIs into (repository root, path) pairs and repositories, for one tracking URI.
    The client is made on first need (plain storage URIs never touch the tracking store)."""

    def __init__(self, tracking_uri: str | None, registry_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri
        self._registry_uri = registry_uri
        self._client: FlowmlClient | None = None

    @property
    def client(self) -> FlowmlClient:
        if self._client is None:
            from flowml.client import FlowmlClient

            self._client = FlowmlClient(self._tracking_uri, self._registry_uri)
        return self._client

    @property
    def tracking_uri(self) -> str:
        if self._tracking_uri is not None:
            return self._tracking_uri
        from flowml.settings import get_settings

        return get_settings().tracking_uri

    # -- URIs ----------------------------------------------------------------------------------
    def run_root(self, run_id: str) -> str:
        return self.client.get_run(run_id).info.artifact_uri

    def _model_root(self, models_uri: str, depth: int) -> str:
        name = urllib.parse.urlsplit(models_uri).path.lstrip("/")
        if _LOGGED_MODEL_RE.match(name):
            getter = getattr(self.client, "get_logged_model", None)
            if getter is None:
                raise InvalidParameterValue(f"Cannot resolve {models_uri!r}: logged models are not available")
            location = str(getter(name).artifact_location)
        else:
            from flowml.models.uri import resolve_registry_uri

            location = resolve_registry_uri(models_uri, self.client)
        return self.storage_uri(location, depth + 1)

    def storage_uri(self, uri: str, depth: int = 0) -> str:
        """``uri`` with ``runs:/`` and ``models:/`` resolved to the storage location they name."""
        if depth > _MAX_INDIRECTIONS:
            raise InvalidParameterValue(f"Too many indirections resolving artifact URI {uri!r}")
        scheme = uri_scheme(uri)
        if scheme == "runs":
            run_id, sub = _runs_parts(uri)
            if not run_id:
                raise InvalidParameterValue(f"Not a valid runs:/ URI: {uri!r}. Expected runs:/<run_id>")
            return _join(self.run_root(run_id), sub.strip("/"))
        if scheme == "models":
            base, sub = _split_models_uri(uri)
            return _join(self._model_root(base, depth), sub)
        return uri

    def split(self, uri: str) -> tuple[str, str]:
        """(storage URI of the repository root, artifact path below it) for an artifact URI."""
        scheme = uri_scheme(uri)
        if scheme == "models":  # the model directory is the root, as in MLflow
            base, sub = _split_models_uri(uri)
            return self._model_root(base, 0), sub
        if scheme == "runs":
            run_id, sub = _runs_parts(uri)
            if not run_id or not sub:
                raise InvalidParameterValue(
                    f"Not a proper runs:/ URI: {uri}. "
                    "Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"
                )
            uri = f"{self.run_root(run_id).rstrip('/')}/{sub}"
            scheme = uri_scheme(uri)
        if scheme == "" or len(scheme) == 1:  # a plain local path
            parent, leaf = os.path.split(uri)
            return parent or ".", leaf
        parts = urllib.parse.urlsplit(uri)
        parent, leaf = posixpath.split(parts.path)
        return urllib.parse.urlunsplit(parts._replace(path=parent)), leaf

    # -- repositories --------------------------------------------------------------------------
    def repository(self, root: str) -> ArtifactRepository:
        from flowml.settings import get_settings

        settings = get_settings()
        if uri_scheme(root) == "mlflow-artifacts":
            from flowml.artifacts.http import ProxyArtifactRepository

            tracking = self.tracking_uri
            host = urllib.parse.urlsplit(root).netloc
            if not tracking.startswith(("http://", "https://")):
                if not host:
                    raise InvalidParameterValue(
                        "When an mlflow-artifacts URI was supplied, the tracking URI must be a valid http "
                        f"or https URI, but it was currently set to {_redacted(tracking)}. Perhaps you "
                        "forgot to set the tracking URI to the running MLflow server: set "
                        "FLOWML_TRACKING_URI or call `mlflow.set_tracking_uri('http://localhost:5000')`."
                    )
                tracking = "http://" + host
            elif host:
                tracking = f"{urllib.parse.urlsplit(tracking).scheme}://{host}"
            return ProxyArtifactRepository(root, tracking, headers=settings.auth_headers())
        from flowml.artifacts import get_artifact_repository

        return get_artifact_repository(root, s3_endpoint_url=settings.s3_endpoint_url)

    def download(self, root: str, path: str, dst_path: str | None, *, in_place: bool) -> str:
        """Download ``path`` below ``root``; ``in_place``: a local artifact without ``dst_path`` is
        returned where it is (MLflow does so for paths, ``file:`` URIs and ``run_id=`` downloads)."""
        repo = self.repository(root)
        try:
            if in_place and dst_path is None and isinstance(repo, LocalArtifactRepository):
                return repo.local_path(path)
            return repo.download_artifacts(path, dst_path)
        finally:
            _close(repo)

    def download_uri(self, uri: str, dst_path: str | None) -> str:
        scheme = uri_scheme(uri)
        root, path = self.split(uri)
        if scheme != "runs":
            return self.download(root, path, dst_path, in_place=scheme != "models")
        # MLflow 3: the run's artifacts, and the run's logged model when the path starts with its name
        dst = dst_path if dst_path is not None else tempfile.mkdtemp(prefix="flowml-download-")
        try:
            run_out: str | None = self.download(root, path, dst, in_place=False)
        except ResourceDoesNotExist:
            run_out = None
        run_id, sub = _runs_parts(uri)
        model_out = self.client._download_run_model_artifacts(run_id, sub, dst)
        if run_out is None and model_out is None:
            raise ResourceDoesNotExist(
                f"Failed to download artifacts from path '{path}', please ensure that the path is correct."
            )
        return str(run_out or model_out)

    def list(self, root: str, path: str) -> list[FileInfo]:
        repo = self.repository(root)
        try:
            return repo.list_artifacts(path)
        finally:
            _close(repo)


def _runs_parts(uri: str) -> tuple[str, str]:
    """(run id, run-relative path as written) of a ``runs:/`` URI."""
    run_id, _, sub = uri[len("runs:") :].lstrip("/").partition("/")
    return run_id, sub


def _redacted(uri: str) -> str:
    """``uri`` without user info, query and fragment (a database URI may carry a password)."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host, query="", fragment=""))


def _join(root: str, sub: str) -> str:
    return f"{root.rstrip('/')}/{sub}" if sub else root


def _close(repo: ArtifactRepository) -> None:
    close = getattr(repo, "close", None)
    if callable(close):
        close()


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> str:
    """Download an artifact file or directory; returns its local path.

    Exactly one of ``artifact_uri`` (``runs:/``, ``models:/``, ``s3://``, ``mlflow-artifacts:/``, a
    path or ``file:`` URI) or ``run_id`` (with an optional run-relative ``artifact_path``). Without
    ``dst_path`` remote artifacts go to a new temp directory and local ones are returned in place.
    ``registry_uri`` may only name the tracking store (flowml keeps the registry there).
    """
    _check_arguments(artifact_uri, run_id, artifact_path)
    if dst_path is not None:
        pathlib.Path(dst_path).mkdir(exist_ok=True, parents=True)
    resolver = _Resolver(tracking_uri, registry_uri)
    if artifact_uri is not None:
        try:
            return resolver.download_uri(artifact_uri, dst_path)
        except FlowmlError as exc:
            if artifact_uri.startswith("m-"):
                raise FlowmlError(
                    f"Invalid uri `{artifact_uri}` is passed. Maybe you meant 'models:/{artifact_uri}'?"
                ) from exc
            raise
    assert run_id is not None
    if artifact_path:
        return resolver.download_uri(f"runs:/{posixpath.join(run_id, artifact_path)}", dst_path)
    return resolver.download(resolver.run_root(run_id), "", dst_path, in_place=True)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """The entries directly under an artifact URI, or under ``artifact_path`` of run ``run_id``
    (paths relative to the URI's parent, or to the run's root: MLflow's ``FileInfo`` paths)."""
    _check_arguments(artifact_uri, run_id, artifact_path)
    resolver = _Resolver(tracking_uri)
    if artifact_uri is not None:
        listed = resolver.list(*resolver.split(artifact_uri))
        if uri_scheme(artifact_uri) != "runs":
            return listed
        run_id, artifact_path = _runs_parts(artifact_uri)
    else:
        assert run_id is not None
        listed = resolver.list(resolver.run_root(run_id), artifact_path or "")
    # MLflow 3: a path starting with the name of one of the run's logged models lists its files too
    return listed + resolver.client._list_run_model_artifacts(run_id, artifact_path)


def _not_utf8_error(artifact_uri: str) -> FlowmlError:
    return FlowmlError(
        f"Artifact {artifact_uri!r} is not valid UTF-8. To read a file in another encoding, "
        "download it with `mlflow.artifacts.download_artifacts` and open it with the correct "
        "`encoding`.",
        "BAD_REQUEST",
    )


def load_text(artifact_uri: str) -> str:
    """The artifact's contents as a string (UTF-8)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        local = download_artifacts(artifact_uri, dst_path=tmpdir)
        with open(local, encoding="utf-8") as fh:
            try:
                return str(fh.read())
            except UnicodeDecodeError as exc:
                raise _not_utf8_error(artifact_uri) from exc


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """The artifact's contents parsed as JSON."""
    with tempfile.TemporaryDirectory() as tmpdir:
        local = download_artifacts(artifact_uri, dst_path=tmpdir)
        with open(local, encoding="utf-8") as fh:
            try:
                loaded: dict[str, Any] = json.load(fh)
            except UnicodeDecodeError as exc:
                raise _not_utf8_error(artifact_uri) from exc
            except json.JSONDecodeError as exc:
                raise FlowmlError("Unable to form a JSON object from file content", "BAD_REQUEST") from exc
            return loaded


def load_image(artifact_uri: str) -> PILImage:
    """The artifact as a loaded ``PIL.Image.Image`` (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("`load_image` requires Pillow. Please install it via: pip install Pillow") from exc
    with tempfile.TemporaryDirectory() as tmpdir:
        local = download_artifacts(artifact_uri, dst_path=tmpdir)
        try:
            image = Image.open(local)
            image.load()
        except Exception as exc:  # any decoder failure is MLflow's one error
            raise FlowmlError("Unable to form a PIL Image object from file content", "BAD_REQUEST") from exc
        return image
