"""flowml's own resources under ``/api/flowml`` (artifact checksums; registry events later)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from flowml.server.deps import BackendDep

router = APIRouter(tags=["flowml"])


class ArtifactFile(BaseModel):
    path: str
    file_size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RecordArtifacts(BaseModel):
    run_id: str
    files: list[ArtifactFile]


@router.post("/runs/artifact-files")
def record_artifact_files(body: RecordArtifacts, backend: BackendDep) -> dict[str, Any]:
    backend.record_artifact_files(body.run_id, [(f.path, f.file_size, f.sha256) for f in body.files])
    return {}


@router.get("/runs/artifact-files")
def list_artifact_files(run_id: str, backend: BackendDep) -> dict[str, Any]:
    files = backend.list_artifact_files(run_id)
    return {"files": [{"path": p, "file_size": s, "sha256": h} for p, (s, h) in sorted(files.items())]}
