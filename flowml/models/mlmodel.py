"""The ``MLmodel`` file: MLflow's model metadata (``mlflow/models/model.py::Model``), read and written.

Fields written (MLflow's names): ``artifact_path``, ``run_id`` (both omitted when unknown), ``flavors``,
``signature`` (JSON strings), ``saved_input_example_info``, ``model_uuid``, ``model_id``,
``utc_time_created``, ``model_size_bytes``, ``mlflow_version`` (only when read from an MLflow model),
``flowml_version``, ``metadata``. Unknown keys survive a read/write round trip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.models.signature import ModelSignature

__all__ = ["MLMODEL_FILE", "Model", "ModelInfo"]

MLMODEL_FILE = "MLmodel"
_KNOWN = (
    "artifact_path",
    "run_id",
    "utc_time_created",
    "flavors",
    "signature",
    "saved_input_example_info",
    "model_uuid",
    "metadata",
    "model_size_bytes",
)


def _flowml_version() -> str:
    import flowml

    return flowml.__version__


def _now_utc() -> str:
    return str(datetime.now(UTC).replace(tzinfo=None))


class Model:
    """An ``MLmodel``: flavors plus signature, input example info and provenance."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: Mapping[str, Mapping[str, Any]] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: Mapping[str, Any] | None = None,
        model_uuid: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        model_size_bytes: int | None = None,
        **extra: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = utc_time_created or _now_utc()
        self.flavors: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (flavors or {}).items()}
        self.signature = signature
        self.saved_input_example_info = dict(saved_input_example_info) if saved_input_example_info else None
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.metadata = dict(metadata) if metadata else None
        self.model_size_bytes = model_size_bytes
        self.extra: dict[str, Any] = dict(extra)
        self.extra.setdefault("flowml_version", _flowml_version())

    # -- flavors -------------------------------------------------------------------------------
    def add_flavor(self, name: str, **params: Any) -> Model:
        self.flavors[name] = dict(params)
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        if name not in self.flavors:
            raise InvalidParameterValue(
                f'Model does not have the "{name}" flavor (it has: {sorted(self.flavors)})',
                error_code="RESOURCE_DOES_NOT_EXIST",
            )
        return self.flavors[name]

    @property
    def flowml_version(self) -> str | None:
        value = self.extra.get("flowml_version")
        return str(value) if value is not None else None

    @property
    def mlflow_version(self) -> str | None:
        value = self.extra.get("mlflow_version")
        return str(value) if value is not None else None

    def get_input_schema(self) -> Any:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Any:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> Any:
        return self.signature.params if self.signature is not None else None

    def load_input_example(self, path: str) -> Any:
        from flowml.models.example import load_input_example

        return load_input_example(path, self.saved_input_example_info)

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.artifact_path is not None:
            out["artifact_path"] = self.artifact_path
        if self.run_id is not None:
            out["run_id"] = self.run_id
        out["flavors"] = self.flavors
        out["model_uuid"] = self.model_uuid
        out["utc_time_created"] = self.utc_time_created
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.saved_input_example_info is not None:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.model_size_bytes is not None:
            out["model_size_bytes"] = self.model_size_bytes
        out.update(self.extra)
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``MLmodel`` (``path`` is the file or the model directory)."""
        target = os.path.join(path, MLMODEL_FILE) if os.path.isdir(path) else os.fspath(path)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(self.to_yaml())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Model:
        kwargs = {k: d[k] for k in _KNOWN if k in d and k != "signature"}
        extra = {k: v for k, v in d.items() if k not in _KNOWN}
        sig = d.get("signature")
        signature = ModelSignature.from_dict(sig) if isinstance(sig, Mapping) else None
        model = cls(signature=signature, **kwargs, **extra)
        if "flowml_version" not in d:
            model.extra.pop("flowml_version", None)  # a model flowml did not write
        return model

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read ``MLmodel`` (``path`` is the file or the model directory), with YAML's safe loader."""
        import yaml

        target = os.path.join(path, MLMODEL_FILE) if os.path.isdir(path) else os.fspath(path)
        if not os.path.isfile(target):
            raise ResourceDoesNotExist(
                f"Could not find an 'MLmodel' configuration file at {os.fspath(path)!r}"
            )
        with open(target, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, Mapping):
            raise InvalidParameterValue(f"Malformed MLmodel file at {target!r}")
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return f"<Model uuid={self.model_uuid} flavors={sorted(self.flavors)} run_id={self.run_id}>"


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` returns (MLflow 3's ``ModelInfo`` fields). ``artifact_path`` is the logged
    model's artifact location and ``model_uri`` is ``models:/<model_id>``, as in MLflow 3."""

    artifact_path: str
    flavors: dict[str, Any]
    model_uri: str
    model_uuid: str
    run_id: str | None
    saved_input_example_info: dict[str, Any] | None
    signature: ModelSignature | None
    utc_time_created: str
    flowml_version: str | None
    name: str | None = None
    creation_timestamp: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    registered_model_version: int | None = None
    metrics: list[Any] | None = None
    env_vars: list[str] | None = None
    prompts: list[str] | None = None

    @property
    def signature_dict(self) -> dict[str, str | None] | None:
        return self.signature.to_dict() if self.signature is not None else None

    @property
    def model_id(self) -> str:
        """The logged model's id (``m-<32 hex>``; MLflow 3's ``model_uuid`` is the same)."""
        return self.model_uuid
