"""infra/Dockerfile, checked statically: hadolint (the binary from the dev extras, with
infra/.hadolint.yaml), plus the rules that matter here parsed from the file itself."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.infra.helpers import INFRA, REPO, clean_env, tool

DOCKERFILE = INFRA / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def hadolint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [tool("hadolint"), "--config", str(INFRA / ".hadolint.yaml"), "--format", "json", str(path)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def test_hadolint_passes() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\nUSER root\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3003", "DL3013", "DL3002"} <= codes


def test_multi_stage_pinned_and_non_root() -> None:
    steps = instructions(DOCKERFILE.read_text())
    froms = [args.split() for word, args in steps if word == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime"
    for image, *_rest in froms:
        _name, _, tag = image.partition(":")
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim-\w+", tag), f"base image {image} is not pinned to a release"
    assert [f[-1] for f in froms[:-1]] == ["builder"]
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    users = [args for word, args in final if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d{3,}(:[1-9]\d{3,})?", users[-1]), "numeric non-root USER"
    assert any(w == "COPY" and args.startswith("--from=builder") for w, args in final)
    assert any(w == "HEALTHCHECK" and "/health" in args for w, args in final)
    # the runtime does not carry the wheels or a compiler
    assert not any(w == "COPY" and "/wheels" in args for w, args in final)


def test_no_remote_add_and_no_secrets_in_env_or_arg() -> None:
    for word, args in instructions(DOCKERFILE.read_text()):
        assert word != "ADD", "COPY, not ADD (no remote URLs or implicit unpacking)"
        if word in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|AWS_", args, re.IGNORECASE), args


def test_dependencies_are_installed_from_the_lock_file() -> None:
    text = DOCKERFILE.read_text()
    assert "--constraint constraints.txt" in text
    assert "--no-index --find-links /wheels" in text  # the runtime venv gets exactly the built wheels


def test_build_context_sends_what_the_copies_need() -> None:
    """infra/Dockerfile.dockerignore (BuildKit's per-Dockerfile ignore file) excludes everything but an
    allow-list; every COPY source from the context must be on it (and exist)."""
    ignore = [
        ln for ln in (INFRA / "Dockerfile.dockerignore").read_text().splitlines() if ln and ln[0] != "#"
    ]
    assert ignore[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for word, args in instructions(DOCKERFILE.read_text()):
        if word != "COPY" or "--from=" in args:
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for src in sources:
            top = src.rstrip("/").split("/")[0]
            assert top in allowed, f"COPY {src}: not in the build context"
            assert (REPO / src).exists(), src
    assert ".venv" not in allowed
