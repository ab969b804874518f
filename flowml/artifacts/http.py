"""Artifacts through a tracking server's proxy: ``mlflow-artifacts:/<path>`` URIs.

The bytes go through ``/api/2.0/mlflow-artifacts/artifacts/<path>`` of the server at
``base_url`` (flowml's or MLflow's), streamed both ways.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from flowml.artifacts.base import ArtifactRepository, Kind, normalize_artifact_path
from flowml.entities import FileInfo
from flowml.exceptions import FlowmlError, ResourceDoesNotExist, error_from_code

__all__ = ["ProxyArtifactRepository", "proxy_path"]

_PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def proxy_path(uri: str) -> str:
    """``mlflow-artifacts:/1/abc/artifacts`` (or ``mlflow-artifacts://host/1/...``) → ``1/abc/artifacts``."""
    rest = uri.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:].split("/", 1)[1] if "/" in rest[2:] else ""
    return normalize_artifact_path(rest.lstrip("/"))


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        details = {k: v for k, v in body.items() if k not in ("error_code", "message")}
        raise error_from_code(body["error_code"], body.get("message", ""), **details)
    raise FlowmlError(f"HTTP {response.status_code} from the artifact proxy: {response.text[:300]}")


class ProxyArtifactRepository(ArtifactRepository):
    def __init__(
        self,
        root_uri: str,
        base_url: str,
        *,
        timeout: float = 300.0,
        headers: Mapping[str, str] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """``http``: a client for ``base_url`` to share (its owner closes it); without one the
        repository opens its own on first use and :meth:`close` closes it."""
        super().__init__(root_uri)
        self._headers = dict(headers or {})
        self._base = proxy_path(root_uri)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._client: httpx.Client | None = http
        self._owns_client = http is None

    @property
    def http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self._base_url, timeout=self._timeout, headers=self._headers)
        return self._client

    def close(self) -> None:
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    def _full(self, rel: str) -> str:
        return posixpath.join(self._base, rel) if rel else self._base

    def _write(self, rel: str, chunks: Iterable[bytes]) -> None:
        _raise_for(self.http.put(f"{_PROXY}/{self._full(rel)}", content=iter(chunks)))

    def _open(self, rel: str) -> Iterator[bytes]:
        request = self.http.build_request("GET", f"{_PROXY}/{self._full(rel)}")
        response = self.http.send(request, stream=True)
        if not response.is_success:
            response.read()
            response.close()
            if response.status_code == 404:
                raise ResourceDoesNotExist(f"Artifact {rel!r} does not exist under {self.root_uri}")
            _raise_for(response)

        def body() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes(1024 * 1024)
            finally:
                response.close()

        return body()

    def _list(self, rel: str) -> list[FileInfo]:
        response = self.http.get(_PROXY, params={"path": self._full(rel)})
        _raise_for(response)
        return [
            FileInfo(
                posixpath.join(rel, f["path"]) if rel else f["path"],
                bool(f.get("is_dir")),
                f.get("file_size"),
            )
            for f in response.json().get("files", ())
        ]

    def _kind(self, rel: str) -> Kind | None:
        if rel and self._list(rel):
            return "dir"
        parent, name = posixpath.split(rel)
        for entry in self._list(parent):
            if posixpath.basename(entry.path) == name:
                return "dir" if entry.is_dir else "file"
        return "dir" if not rel else None

    def _walk_files(self, rel: str) -> list[str]:
        files: list[str] = []
        for entry in self._list(rel):
            files.extend(self._walk_files(entry.path) if entry.is_dir else [entry.path])
        return files

    def _delete(self, rel: str) -> None:
        _raise_for(self.http.delete(f"{_PROXY}/{self._full(rel)}"))
