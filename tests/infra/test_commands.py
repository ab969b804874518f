"""The commands the compose services and the Kubernetes containers run are the real CLIs: each `flowml ...`
command line is parsed by flowml's own click commands (unknown options, missing arguments and bad types
fail), each `prefect ...` subcommand exists and knows every option used (its `--help`)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest

from tests.infra.helpers import (
    KUSTOMIZATIONS,
    TEST_ENV,
    clean_env,
    command_lines,
    compose_model,
    containers,
    expand,
    kustomize,
    pod_specs,
    tool,
    write_env_file,
)


def parse_flowml(argv: list[str]) -> tuple[click.Command, dict[str, Any]]:
    """Resolve ``flowml SUB... ARGS`` to its click command and parse the arguments (no invocation)."""
    from flowml.cli import main

    assert argv[0] == "flowml"
    cmd: click.Command = main
    args = list(argv[1:])
    names = ["flowml"]
    while isinstance(cmd, click.Group):
        sub = cmd.get_command(click.Context(cmd), args[0])
        assert sub is not None, f"no command {' '.join([*names, args[0]])}"
        names.append(args.pop(0))
        cmd = sub
    ctx = cmd.make_context(" ".join(names), args)
    return cmd, ctx.params


@functools.cache
def prefect_help(*sub: str) -> str:
    result = subprocess.run(
        [tool("prefect"), *sub, "--help"],
        env=clean_env(PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="300"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, f"prefect {' '.join(sub)}: {result.stderr}"
    return result.stdout


def check_prefect(argv: list[str]) -> None:
    words = [a for a in argv[1:] if not a.startswith("-")]
    # the subcommand path: leading words that name a command group/command (prefect server start, ...)
    depth = {"server": 2, "worker": 2, "work-pool": 2}[words[0]]
    sub = tuple(words[:depth])
    text = prefect_help(*sub)
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert option in text, f"prefect {' '.join(sub)} has no {option}"


def check(argv: list[str]) -> str:
    if argv[0] == "flowml":
        cmd, _ = parse_flowml(argv)
        return f"flowml {cmd.name}"
    if argv[0] == "prefect":
        check_prefect(argv)
        return "prefect"
    return argv[0]


def compose_commands(tmp_path: Path) -> dict[str, list[list[str]]]:
    model = compose_model(write_env_file(tmp_path / "test.env", TEST_ENV))
    out = {}
    for name, service in model["services"].items():
        if not service.get("image", "").startswith("flowml:"):
            continue
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        argv = [a.replace("$$", "$") for a in service["command"]]
        out[name] = [[expand(a, env) for a in line] for line in command_lines(argv)]
        if check := service.get("healthcheck", {}).get("test"):
            assert check[:2] in (["CMD", "python"], ["CMD-SHELL", "pg_isready"]), name
    return out


def test_compose_commands_are_real(tmp_path: Path) -> None:
    commands = compose_commands(tmp_path)
    ran = {name: [check(line) for line in lines] for name, lines in commands.items()}
    assert ran == {
        "prefect-server": ["prefect"],
        "flowml-server": ["flowml upgrade", "flowml server"],
        "prefect-setup": ["prefect", "prefect", "flowml setup"],
        "worker": ["prefect"],
        "dispatcher": ["flowml dispatch"],
    }
    _, params = parse_flowml(commands["flowml-server"][1])
    assert params["host"] == "0.0.0.0" and params["port"] == 5000 and params["workers"] == 2
    assert params["allowed_hosts"] == "flowml-server,localhost,127.0.0.1"
    _, params = parse_flowml(commands["prefect-setup"][2])
    assert params["work_pool"] == "flowml-process"


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_kubernetes_commands_are_real(path: Path) -> None:
    docs = kustomize(path)
    config = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    seen = set()
    for _workload, pod in pod_specs(docs):
        for c in containers(pod):
            env = {"PGPASSWORD": "x"}
            for ref in c.get("envFrom", []):
                env.update(config[ref["configMapRef"]["name"]])
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("configMapKeyRef")
                env[var["name"]] = config[ref["name"]][ref["key"]] if ref else var.get("value", "x")
            argv = [*c.get("command", []), *c.get("args", [])]
            for line in command_lines(argv):
                seen.add(check([expand(a, env) for a in line]))
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe := c.get(kind, {}).get("exec"):
                    assert probe["command"][:2] == ["python", "-c"]
                    compile(probe["command"][2], kind, "exec")
    assert seen == {"flowml upgrade", "flowml server", "flowml dispatch", "flowml setup", "prefect"}


def test_the_parser_catches_a_wrong_option() -> None:
    with pytest.raises(click.NoSuchOption):
        parse_flowml(["flowml", "server", "--hots", "0.0.0.0"])
    with pytest.raises(click.BadParameter):
        parse_flowml(["flowml", "server", "--port", "http"])
    with pytest.raises(AssertionError, match="no --pol"):
        check_prefect(["prefect", "worker", "start", "--pol", "x"])
