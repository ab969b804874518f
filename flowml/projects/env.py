"""Execution environments for project commands: local, virtualenv (uv when present), conda, docker.

:func:`prepare_environment` returns an :class:`Environment` that turns a shell command plus env vars into the
argv to run. Environments are built once and cached under ``$FLOWML_ENVS_DIR`` (default
``~/.cache/flowml/envs``), keyed by a hash of their spec file; builds go to a temporary directory that is
renamed into place, so concurrent runs never see a half-built environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import yaml

from flowml.projects.spec import ExecutionError, Project, ProjectSpecError

__all__ = ["ENV_MANAGERS", "Environment", "docker_available", "prepare_environment"]

EnvManager = Literal["local", "virtualenv", "uv", "conda"]
ENV_MANAGERS: tuple[str, ...] = ("local", "virtualenv", "uv", "conda")


def _shell() -> str:
    return "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"


@dataclass(frozen=True)
class Environment:
    """How to run a command: ``kind`` is the ``mlflow.project.env`` tag value."""

    kind: str
    bin_dir: Path | None = None
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    docker_image: str | None = None
    docker_args: list[str] = field(default_factory=list)

    def argv(self, command: str, env: Mapping[str, str], workdir: Path) -> tuple[list[str], dict[str, str]]:
        """The argv and full environment that run ``command`` in ``workdir``."""
        full = {**os.environ, **self.env, **env}
        if self.bin_dir is not None:
            full["PATH"] = f"{self.bin_dir}{os.pathsep}{full.get('PATH', '')}"
            if self.kind in ("virtualenv", "uv"):
                full["VIRTUAL_ENV"] = str(self.bin_dir.parent)
        if self.docker_image is None:
            return [*self.prefix, _shell(), "-c", command], full
        argv = [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            f"{workdir}:/mlflow/projects/code",
            "-w",
            "/mlflow/projects/code",
            *self.docker_args,
        ]
        for key, value in env.items():
            argv += ["-e", f"{key}={value}"]
        return [*argv, self.docker_image, "bash", "-c", command], full


def _cache_dir(kind: str, key: str) -> Path:
    root = Path(os.environ.get("FLOWML_ENVS_DIR") or Path.home() / ".cache" / "flowml" / "envs")
    return root / f"{kind}-{key}"


def _run(argv: Sequence[str], cwd: Path, what: str) -> None:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise ExecutionError(f"{what} failed ({' '.join(argv[:3])} ...): {tail}")


def _build_once(dest: Path, build: Callable[[Path], None]) -> Path:
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        build(tmp)
        try:
            tmp.rename(dest)
        except OSError:  # a concurrent build finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def _python_env(project: Project) -> tuple[str, list[str], list[str]]:
    """(python version, build deps, deps) from python_env.yaml; the current Python when there is none."""
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    if project.python_env is None:
        return current, [], []
    file = project.directory / project.python_env
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise ProjectSpecError(f"python_env: {file.name} must be a mapping")
    unknown = set(data) - {"python", "build_dependencies", "dependencies"}
    if unknown:
        raise ProjectSpecError(f"python_env: unknown keys in {file.name}: {', '.join(sorted(unknown))}")
    deps = [str(d) for d in data.get("dependencies") or []]
    return str(data.get("python") or current), [str(d) for d in data.get("build_dependencies") or []], deps


def _virtualenv(project: Project, use_uv: bool) -> Environment:
    python, build_deps, deps = _python_env(project)
    requirement_files = [
        (project.directory / d.split(None, 1)[1]).read_text()
        for d in deps
        if d.startswith("-r ") and (project.directory / d.split(None, 1)[1]).is_file()
    ]
    spec = repr((python, build_deps, deps, requirement_files))
    uv = _uv() if use_uv else None
    kind = "uv" if uv else "virtualenv"
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    current = f"{sys.version_info.major}.{sys.version_info.minor}"

    def build(tmp: Path) -> None:
        interpreter = sys.executable if python in (current, sys.version.split()[0]) else python
        if uv:
            _run([uv, "venv", "--quiet", "--python", interpreter, str(tmp)], project.directory, "uv venv")
            install = [uv, "pip", "install", "--quiet", "--python", str(tmp / "bin" / "python")]
        else:
            exe = interpreter if interpreter == sys.executable else shutil.which(f"python{python}")
            if exe is None:
                raise ExecutionError(
                    f"Python {python} is not installed (needed by python_env); install it or uv"
                )
            _run([exe, "-m", "venv", str(tmp)], project.directory, "python -m venv")
            install = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        for group in (build_deps, deps):
            args = [a for d in group for a in (d.split(None, 1) if d.startswith("-") else [d])]
            if args:
                _run([*install, *args], project.directory, "installing the project's dependencies")

    env_dir = _build_once(_cache_dir(kind, key), build)
    return Environment(kind=kind, bin_dir=env_dir / "bin")


def _conda(project: Project) -> Environment:
    conda = os.environ.get("MLFLOW_CONDA_HOME")
    exe = str(Path(conda) / "bin" / "conda") if conda else shutil.which("conda")
    if not exe or not Path(exe).exists():
        raise ExecutionError(
            "conda is not available: install conda (or set MLFLOW_CONDA_HOME), or run with "
            "--env-manager local / virtualenv"
        )
    if project.conda_env is None:
        raise ProjectSpecError("env_manager 'conda' needs a conda_env file (conda.yaml) in the project")
    file = project.directory / project.conda_env
    key = hashlib.sha256(file.read_bytes()).hexdigest()[:16]

    def build(tmp: Path) -> None:
        shutil.rmtree(tmp)  # conda wants to create the prefix itself
        _run(
            [exe, "env", "create", "--quiet", "-p", str(tmp), "-f", str(file)], project.directory, "conda env"
        )

    env_dir = _build_once(_cache_dir("conda", key), build)
    return Environment(kind="conda", prefix=[exe, "run", "--no-capture-output", "-p", str(env_dir)])


def docker_available() -> str | None:
    """None when a Docker engine answers, else the reason it does not."""
    exe = shutil.which("docker")
    if exe is None:
        return "the docker command is not installed"
    try:
        done = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        return lines[-1].strip() if lines else f"docker info exited with {done.returncode}"
    return None


def _docker(project: Project, tracking_env: Mapping[str, str]) -> Environment:
    assert project.docker_env is not None
    reason = docker_available()
    if reason is not None:
        raise ExecutionError(
            f"Docker is not available ({reason}); project {project.name!r} declares docker_env "
            f"image {project.docker_env.image!r}. Start a Docker engine or remove docker_env to run "
            f"it locally."
        )
    args: list[str] = []
    for volume in project.docker_env.volumes:
        args += ["-v", volume]
    for item in project.docker_env.environment:
        if isinstance(item, str):
            if item in os.environ:
                args += ["-e", f"{item}={os.environ[item]}"]
        else:
            args += ["-e", f"{item[0]}={item[1]}"]
    # A local store or artifact root is mounted at the same path so the container can log to it.
    for value in tracking_env.values():
        parsed = urlparse(value)
        if parsed.scheme.startswith("sqlite"):
            folder = str(Path(parsed.path[1:] if parsed.path.startswith("//") else parsed.path).parent)
            args += ["-v", f"{folder}:{folder}"]
        elif not parsed.scheme and value.startswith("/") and Path(value).is_dir():
            args += ["-v", f"{value}:{value}"]
    return Environment(kind="docker", docker_image=project.docker_env.image, docker_args=args)


def prepare_environment(
    project: Project, env_manager: str = "local", tracking_env: Mapping[str, str] | None = None
) -> Environment:
    """Build (or reuse) the environment the project's commands run in.

    ``docker_env`` projects always run in Docker; otherwise ``env_manager`` picks local (this interpreter's
    ``bin`` directory first on PATH, so ``python`` is the Python flowml runs on), virtualenv/uv or conda.
    """
    if env_manager not in ENV_MANAGERS:
        raise ProjectSpecError(f"env_manager must be one of {', '.join(ENV_MANAGERS)}; got {env_manager!r}")
    if project.docker_env is not None:
        return _docker(project, tracking_env or {})
    if env_manager == "local":
        return Environment(kind="local", bin_dir=Path(sys.executable).parent)
    if env_manager == "conda":
        return _conda(project)
    return _virtualenv(project, use_uv=True)
