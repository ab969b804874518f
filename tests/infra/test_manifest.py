"""`flowml deploy manifest`: the Kubernetes manifest of a real Bento, valid against the Kubernetes schema,
with the uid and port of the Bento's own generated Dockerfile, and probes that real `bentoml serve` of that
Bento answers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from tests.deploy.conftest import DeployEnv
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.slow


def manifest(*args: str) -> tuple[int, str]:
    from flowml.cli_deploy import deploy

    result = CliRunner().invoke(deploy, ["manifest", *args])
    return result.exit_code, result.output


def test_manifest_of_a_built_bento_matches_what_it_serves(deploy_env: DeployEnv) -> None:
    import kubernetes_validate

    from flowml.deploy import build_bento
    from flowml.deploy.bento import serve_command
    from flowml.deploy.records import records

    version = deploy_env.register("wine-k8s")
    built = build_bento(f"models:/wine-k8s/{version}")
    code, text = manifest("--bento", "wine-k8s:latest", "--image", "registry.example.com/wine-k8s:1")
    assert code == 0, text
    deployment, service = (d for d in yaml.safe_load_all(text) if d)
    for doc in (deployment, service):
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    assert notes["flowml/bento-tag"] == built.tag  # "latest" resolved in the Bento store
    assert notes["flowml/registered-model"] == "wine-k8s" and notes["flowml/model-version"] == version
    assert notes["flowml/model-sha256"] == built.labels["flowml.sha256"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/wine-k8s:1"
    dockerfile = Path(built.dockerfile).read_text()  # what `bentoml containerize` builds from
    assert pod["securityContext"]["runAsUser"] == int(re.search(r"BENTO_USER_UID=(\d+)", dockerfile)[1])  # type: ignore[index]
    assert container["ports"][0]["containerPort"] == int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M)[1])  # type: ignore[index]

    # the probe paths answer on a real `bentoml serve` of this Bento
    port = free_port()
    log = deploy_env.root / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            serve_command(built.tag, host="127.0.0.1", port=port), stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=deploy_env.root,
        )  # fmt: skip
    try:
        probes: list[dict[str, Any]] = [
            container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")
        ]
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "bentoml serve never became ready"
            time.sleep(0.5)
        for probe in probes:
            assert probe["httpGet"]["port"] == "http"
            assert (
                httpx.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=5).status_code == 200
            )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    # by deployment name: the Bento of what serves now
    records().create("wine-k8s", version, "local", status="SERVING", bento_tag=built.tag)
    code, text = manifest("wine-k8s", "--namespace", "models", "--replicas", "3")
    assert code == 0, text
    deployment = next(yaml.safe_load_all(text))
    assert (deployment["metadata"]["name"], deployment["metadata"]["namespace"]) == ("wine-k8s", "models")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == built.tag


def test_manifest_refuses_what_it_cannot_render(deploy_env: DeployEnv) -> None:
    code, text = manifest()
    assert code == 2 and "give either NAME or --bento TAG" in text
    code, text = manifest("nobody-deployed-this")
    assert code == 1 and "has no serving deployment" in text
    code, text = manifest("--bento", "not-built")
    assert code == 1 and "exact version" in text
    code, text = manifest("--bento", "not-built:v1", "--replicas", "-1")
    assert code == 2
    # a Bento built elsewhere (the worker's store) still renders from its exact tag
    code, text = manifest("--bento", "elsewhere:abc123")
    assert code == 0 and "image: elsewhere:abc123" in text
