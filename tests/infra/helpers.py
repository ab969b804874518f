"""Shared helpers of the infra/ checks: the bundled tools (docker-compose, kubectl, hadolint from the dev
extras), the compose model as `docker compose config` resolves it, kustomize renders and shell parsing.

No Docker engine or cluster runs here: the compose binary only resolves/validates the file, kubectl only
renders kustomizations (`kubectl kustomize` runs offline).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
K8S = INFRA / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "production"]

#: Values the tests give the required compose variables (never real credentials).
TEST_ENV = {
    "POSTGRES_PASSWORD": "test-pg-password",
    "MINIO_ROOT_USER": "test-minio-root",
    "MINIO_ROOT_PASSWORD": "test-minio-root-password",
    "FLOWML_S3_ACCESS_KEY_ID": "test-flowml-key",
    "FLOWML_S3_SECRET_ACCESS_KEY": "test-flowml-secret",
}


def tool(name: str) -> str:
    """A command-line tool installed by the dev extras (next to this Python), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    assert found, f"{name} is not installed: `pip install -c constraints.txt -e '.[dev]'` provides it"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment (no COMPOSE_*/POSTGRES_*/... leaking in from the caller's shell)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` (the standalone compose binary; it needs no engine for this)."""
    cmd = [tool("docker-compose"), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", *args]
    return subprocess.run(cmd, cwd=INFRA, env=clean_env(), capture_output=True, text=True, timeout=60)


def compose_model(env_file: Path) -> dict[str, Any]:
    """The compose file as compose resolves it (interpolated, merged, normalised)."""
    result = compose_config(env_file, "--format", "json")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def raw_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def kustomize(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization with kubectl's built-in kustomize (offline)."""
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every Deployment/Job/StatefulSet/DaemonSet."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


_REDIRECT = re.compile(r"\d*>&?\s*\S+")


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a small ``sh -c`` script (split at && || ; | { }, redirections and
    ``exec`` dropped). Enough for the one-liners in the compose file and the manifests."""
    lexer = shlex.shlex(_REDIRECT.sub(" ", script), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = []
    current: list[str] = []
    for token in lexer:
        if token in {"&&", "||", ";", "|", "&", "{", "}"}:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return [c[1:] if c[0] == "exec" else c for c in commands]


def command_lines(argv: list[str]) -> list[list[str]]:
    """What a container command runs: the argv itself, or the simple commands of ``sh -c SCRIPT``."""
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["/bin/sh", "-c"]:
        return simple_commands(argv[2])
    return [argv]


def expand(token: str, env: Mapping[str, str]) -> str:
    """Shell ``$VAR``/``${VAR}`` and Kubernetes ``$(VAR)`` references replaced from ``env``."""
    token = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], token)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], token)
