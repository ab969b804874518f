"""The ``MLproject`` file as a validated, typed model.

MLflow's format (``name``, one of ``python_env`` / ``conda_env`` / ``docker_env``, ``entry_points`` with typed
``parameters`` and a ``command``) plus flowml's optional ``flowml:`` section: a DAG of ``steps`` over the
entry
points (ignored by MLflow, so the file stays portable). Every error names the offending field, e.g.
``MLproject: entry_points.main.parameters.alpha.type: Input should be 'string', 'float', ...``.

Where flowml is stricter than MLflow (documented in mlflow-facts §7): ``int``/``float`` values are
converted and
validated before anything runs, and an unknown parameter ``type`` is an error rather than "string".
"""

from __future__ import annotations

import builtins
import math
import os
import re
import shlex
from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flowml.exceptions import FlowmlError, InvalidParameterValue

__all__ = [
    "DockerEnv",
    "EntryPoint",
    "ExecutionError",
    "FlowmlSection",
    "ParameterSpec",
    "Project",
    "ProjectSpecError",
    "Step",
    "load_project",
]

ParamTypeName = Literal["string", "float", "int", "path", "uri"]
Scalar = str | int | float | bool
#: ``{name}`` references in step parameters: a pipeline parameter, ``steps.X.run_id`` or
#: ``steps.X.outputs.K``.
_REF = re.compile(r"\{([A-Za-z_][\w.\-]*)\}")


class ProjectSpecError(InvalidParameterValue):
    """The MLproject file, or a parameter value, is invalid (raised before anything runs)."""


class ExecutionError(FlowmlError):
    """A project could not be executed (missing environment tooling, a failing command...)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Model):
    name: str
    type: ParamTypeName = "string"
    default: Scalar | None = None

    @model_validator(mode="after")
    def _default_converts(self) -> ParameterSpec:
        if self.default is not None and self.type in ("int", "float"):
            self.convert(self.default)  # raises a ValueError naming the parameter
        return self

    @property
    def python_type(self) -> builtins.type:
        return {"int": int, "float": float}.get(self.type, str)

    def convert(self, value: Any, base_dir: Path | None = None, check_paths: bool = True) -> Any:
        """``value`` as this parameter's type: int/float converted, path absolute (and existing), uri
        checked."""
        if self.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"parameter {self.name!r} expects an int, got {value!r}")
            try:
                return int(value) if not isinstance(value, str) else int(value.strip(), 10)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {self.name!r} expects an int, got {value!r}") from None
        if self.type == "float":
            try:
                if isinstance(value, bool):
                    raise ValueError
                result = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {self.name!r} expects a float, got {value!r}") from None
            if math.isnan(result) and str(value).strip().lower() != "nan":
                raise ValueError(f"parameter {self.name!r} expects a float, got {value!r}")
            return result
        text = str(value)
        if self.type == "uri":
            if not urlparse(text).scheme:
                raise ValueError(f"Expected URI for parameter {self.name!r} but got {text!r} (no scheme)")
            return text
        if self.type == "path":
            parsed = urlparse(text)
            if parsed.scheme == "file":
                text = parsed.path
            elif parsed.scheme and len(parsed.scheme) > 1:  # s3://, https://... (not a Windows drive)
                return text
            path = Path(text).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            if check_paths and not path.exists():
                raise ValueError(
                    f"Got value {text!r} for parameter {self.name!r}, but no such file or directory was found"
                )
            return str(path.resolve())
        return text


def _normalize_parameters(raw: Any) -> Any:
    """``alpha: float`` shorthand -> ``{name: alpha, type: float}``; ``{type, default}`` gets its name."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            out[str(name)] = {"name": str(name), "type": value}
        elif value is None:
            out[str(name)] = {"name": str(name)}
        elif isinstance(value, Mapping):
            out[str(name)] = {"name": str(name), **value}
        else:
            out[str(name)] = value
    return out


class EntryPoint(_Model):
    name: str
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    command: str

    @field_validator("parameters", mode="before")
    @classmethod
    def _norm(cls, raw: Any) -> Any:
        return _normalize_parameters(raw)

    def resolve(
        self, values: Mapping[str, Any], project_dir: Path, check_paths: bool = True
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Typed values of the declared parameters (defaults filled in) and the undeclared extras.

        User values that are relative paths resolve against the caller's directory, defaults against the
        project.
        """
        return resolve_parameters(self.parameters, values, project_dir, check_paths, self.name)

    def render(self, declared: Mapping[str, Any], extra: Mapping[str, Any]) -> str:
        """The shell command: ``{param}`` substituted with quoted values, extras appended as ``--key
        value``."""
        quoted = {k: shlex.quote(str(v)) for k, v in declared.items()}
        try:
            command = self.command.format(**quoted)
        except (KeyError, IndexError) as exc:
            raise ProjectSpecError(
                f"entry_points.{self.name}.command references {exc} which is not a declared parameter"
            ) from None
        for key, value in extra.items():
            command += f" --{shlex.quote(str(key))} {shlex.quote(str(value))}"
        return command


def resolve_parameters(
    specs: Mapping[str, ParameterSpec],
    values: Mapping[str, Any],
    project_dir: Path,
    check_paths: bool = True,
    where: str = "",
) -> tuple[dict[str, Any], dict[str, str]]:
    missing = [n for n, p in specs.items() if values.get(n) is None and p.default is None]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise ProjectSpecError(
            f"No value given for missing parameters: {names}" + (f" (entry point {where!r})" if where else "")
        )
    declared: dict[str, Any] = {}
    for name, spec in specs.items():
        given = values.get(name)
        try:
            if given is not None:
                declared[name] = spec.convert(given, None, check_paths)
            else:
                declared[name] = spec.convert(spec.default, project_dir, check_paths)
        except ValueError as exc:
            raise ProjectSpecError(str(exc)) from None
    extra = {str(k): str(v) for k, v in values.items() if k not in specs and v is not None}
    return declared, extra


class DockerEnv(_Model):
    image: str
    volumes: list[str] = Field(default_factory=list)
    environment: list[str | tuple[str, str]] = Field(default_factory=list)


class Step(_Model):
    name: str
    entry_point: str
    depends_on: list[str] = Field(default_factory=list)
    parameters: dict[str, Scalar] = Field(default_factory=dict)

    def references(self) -> list[tuple[str, str]]:
        """``(parameter, reference)`` for every ``{ref}`` in this step's parameter values."""
        return [(k, m) for k, v in self.parameters.items() for m in _REF.findall(str(v))]

    def render_parameters(
        self, pipeline: Mapping[str, Any], upstream: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, str]:
        """Substitute ``{param}``, ``{steps.X.run_id}`` and ``{steps.X.outputs.K}`` in the parameter
        values."""

        def lookup(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref.startswith("steps."):
                _, step, *rest = ref.split(".", 3)
                result = upstream[step]
                if rest == ["run_id"]:
                    return str(result["run_id"])
                if len(rest) == 2 and rest[0] == "outputs":
                    outputs = result.get("outputs", {})
                    if rest[1] not in outputs:
                        raise ExecutionError(
                            f"step {step!r} did not write output {rest[1]!r} (needed by step {self.name!r})"
                        )
                    return str(outputs[rest[1]])
            return str(pipeline[ref])

        return {k: _REF.sub(lookup, str(v)) for k, v in self.parameters.items()}


class FlowmlSection(_Model):
    #: The name the DAG is run by (``flowml run . -e pipeline``).
    name: str = "pipeline"
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    steps: dict[str, Step] = Field(default_factory=dict)

    @field_validator("parameters", mode="before")
    @classmethod
    def _norm(cls, raw: Any) -> Any:
        return _normalize_parameters(raw)

    @field_validator("steps", mode="before")
    @classmethod
    def _name_steps(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return raw
        return {
            str(k): {"name": str(k), "entry_point": str(k), **v} if isinstance(v, Mapping) else v
            for k, v in raw.items()
        }

    def order(self) -> list[str]:
        return list(TopologicalSorter({n: s.depends_on for n, s in self.steps.items()}).static_order())

    def ancestors(self, step: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.steps[step].depends_on)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.steps[name].depends_on)
        return seen


class Project(_Model):
    directory: Path
    name: str
    python_env: Path | None = None
    conda_env: Path | None = None
    docker_env: DockerEnv | None = None
    entry_points: dict[str, EntryPoint] = Field(default_factory=dict)
    flowml: FlowmlSection | None = None
    has_mlproject: bool = True

    @field_validator("entry_points", mode="before")
    @classmethod
    def _name_entry_points(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return raw
        return {str(k): {"name": str(k), **v} if isinstance(v, Mapping) else v for k, v in raw.items()}

    @model_validator(mode="after")
    def _check(self) -> Project:
        envs = [f for f in ("python_env", "conda_env", "docker_env") if getattr(self, f) is not None]
        if len(envs) > 1:
            raise ValueError(
                f"only one of python_env, conda_env, docker_env may be set; got {', '.join(envs)}"
            )
        for field in ("python_env", "conda_env"):
            path = getattr(self, field)
            if path is not None and not (self.directory / path).is_file():
                raise ValueError(f"{field}: file {str(path)!r} not found in {self.directory}")
        if self.flowml is not None:
            self._check_steps(self.flowml)
        return self

    def _check_steps(self, section: FlowmlSection) -> None:
        for step in section.steps.values():
            where = f"flowml.steps.{step.name}"
            if self.entry_point_or_none(step.entry_point) is None:
                raise ValueError(f"{where}.entry_point: unknown entry point {step.entry_point!r}")
            for dep in step.depends_on:
                if dep not in section.steps:
                    raise ValueError(f"{where}.depends_on: unknown step {dep!r}")
        try:
            section.order()
        except CycleError as exc:
            raise ValueError(f"flowml.steps: dependency cycle {' -> '.join(exc.args[1])}") from None
        for step in section.steps.values():
            ancestors = section.ancestors(step.name)
            for param, ref in step.references():
                where = f"flowml.steps.{step.name}.parameters.{param}"
                if ref.startswith("steps."):
                    parts = ref.split(".")
                    if parts[1] not in ancestors:
                        raise ValueError(f"{where}: {{{ref}}} must name a step this one depends on")
                    if parts[2:] != ["run_id"] and (len(parts) != 4 or parts[2] != "outputs"):
                        raise ValueError(f"{where}: use {{steps.NAME.run_id}} or {{steps.NAME.outputs.KEY}}")
                elif ref not in section.parameters:
                    raise ValueError(f"{where}: {{{ref}}} is not a flowml.parameters entry")

    # -- entry points --------------------------------------------------------------------------
    @property
    def pipeline(self) -> FlowmlSection | None:
        return self.flowml if self.flowml is not None and self.flowml.steps else None

    def is_pipeline(self, entry_point: str) -> bool:
        pipe = self.pipeline
        return pipe is not None and (
            entry_point == pipe.name or (entry_point == "main" and "main" not in self.entry_points)
        )

    def entry_point_or_none(self, name: str) -> EntryPoint | None:
        if name in self.entry_points:
            return self.entry_points[name]
        file = self.directory / name
        if name.endswith(".py") and file.is_file():
            return EntryPoint(name=name, command=f"python {shlex.quote(name)}")
        if name.endswith(".sh") and file.is_file():
            shell = os.environ.get("SHELL", "bash")
            return EntryPoint(name=name, command=f"{shlex.quote(shell)} {shlex.quote(name)}")
        return None

    def get_entry_point(self, name: str) -> EntryPoint:
        found = self.entry_point_or_none(name)
        if found is None:
            available = sorted(self.entry_points) + ([self.pipeline.name] if self.pipeline else [])
            raise ProjectSpecError(
                f"Could not find entry point {name!r} in project {self.name!r} (entry points: "
                f"{', '.join(available) or 'none'}; or name a .py / .sh file in {self.directory})"
            )
        return found

    def parameters_for(self, entry_point: str) -> dict[str, ParameterSpec]:
        if self.is_pipeline(entry_point):
            assert self.flowml is not None
            return dict(self.flowml.parameters)
        return dict(self.get_entry_point(entry_point).parameters)

    def env_kind(self) -> str:
        if self.docker_env is not None:
            return "docker"
        if self.conda_env is not None and self.python_env is None:
            return "conda"
        return "python"


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _find_mlproject(directory: Path) -> Path | None:
    for child in directory.iterdir() if directory.is_dir() else ():
        if child.name.lower() == "mlproject" and child.is_file():
            return child
    return None


def load_project(directory: str | os.PathLike[str]) -> Project:
    """Load and validate the project in ``directory`` (a directory without MLproject is a bare project)."""
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise ProjectSpecError(f"Project directory {str(directory)!r} does not exist")
    file = _find_mlproject(root)
    raw: Any = {}
    if file is not None:
        try:
            raw = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ProjectSpecError(f"{file.name}: invalid YAML: {exc}") from None
        if not isinstance(raw, Mapping):
            raise ProjectSpecError(f"{file.name}: expected a mapping at the top level")
    data = {k: v for k, v in raw.items() if k != "databricks_spark_job"}
    data.setdefault("name", root.name)
    if not any(k in data for k in ("python_env", "conda_env", "docker_env")):
        if (root / "python_env.yaml").is_file():
            data["python_env"] = "python_env.yaml"
        elif (root / "conda.yaml").is_file():
            data["conda_env"] = "conda.yaml"
    try:
        return Project(directory=root, has_mlproject=file is not None, **data)
    except ValidationError as exc:
        raise ProjectSpecError(f"{file.name if file else 'project'}: {_format_errors(exc)}") from None
    except TypeError as exc:  # e.g. a duplicated 'directory' key
        raise ProjectSpecError(f"{file.name if file else 'project'}: {exc}") from None
