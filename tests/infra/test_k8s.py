"""infra/k8s, checked statically: every kustomization renders (kubectl's built-in kustomize, offline) and
every rendered object validates against the Kubernetes 1.37 schemas bundled by kubernetes-validate (strict:
unknown fields fail); references, probes, resources and the restricted Pod Security Standard are checked
on the rendered objects. The committed Bento manifest is validated and must be what the renderer gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.helpers import INFRA, K8S, KUSTOMIZATIONS, containers, kustomize, pod_specs

K8S_VERSION = "1.37.0"
SECRET = "flowml-credentials"
SECRET_KEYS = {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PREFECT_API_AUTH_STRING"}
BENTO_EXAMPLE = K8S / "bento" / "wine-classifier.yaml"


@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    path: Path = request.param
    return kustomize(path)


def _by(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def validate(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_object_validates_against_the_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted({d["kind"] for d in rendered})
    assert {"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service", "ServiceAccount"} <= set(
        kinds
    )
    for doc in rendered:
        validate(doc)


def test_the_validator_rejects_a_broken_object(rendered: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    server = dict(_by(rendered, "Deployment")["flowml-server"])
    server["spec"] = {**server["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(server)
    typo = yaml.safe_load(yaml.safe_dump(_by(rendered, "Deployment")["flowml-worker"]))
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)


def test_pods_meet_the_restricted_pod_security_standard(rendered: list[dict[str, Any]]) -> None:
    for workload, pod in pod_specs(rendered):
        name = workload["metadata"]["name"]
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0, name
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        for c in containers(pod):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], c["name"]
            assert c["resources"]["limits"]["memory"], (name, c["name"])
            assert not c["image"].endswith(":latest") and ":" in c["image"], c["image"]


def test_probes(rendered: list[dict[str, Any]]) -> None:
    deployments = _by(rendered, "Deployment")
    assert set(deployments) == {"flowml-server", "flowml-worker", "flowml-dispatcher"}
    server = deployments["flowml-server"]["spec"]["template"]["spec"]["containers"][0]
    worker = deployments["flowml-worker"]["spec"]["template"]["spec"]["containers"][0]
    dispatcher = deployments["flowml-dispatcher"]["spec"]["template"]["spec"]["containers"][0]
    for c in (server, worker):
        assert c["livenessProbe"] and c["readinessProbe"], c["name"]
        for probe in (c["livenessProbe"], c["readinessProbe"], c.get("startupProbe")):
            if probe and "httpGet" in probe:
                ports = {p["name"] for p in c["ports"]}
                assert probe["httpGet"]["port"] in ports, c["name"]
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"  # flowml/server/routes/meta.py
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"  # prefect worker --with-healthcheck
    # the server's Host allow-list must accept the Host header its probes send
    config = _by(rendered, "ConfigMap")
    server_config = next(v for k, v in config.items() if k.startswith("flowml-server-config"))
    allowed = server_config["data"]["FLOWML_ALLOWED_HOSTS"].split(",")
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in server[kind]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed
    # the dispatcher's liveness is its heartbeat file, the one its command writes
    beat = dispatcher["command"][dispatcher["command"].index("--heartbeat-file") + 1]
    assert beat in " ".join(dispatcher["livenessProbe"]["exec"]["command"])
    assert deployments["flowml-dispatcher"]["spec"]["replicas"] == 1
    assert deployments["flowml-dispatcher"]["spec"]["strategy"]["type"] == "Recreate"


def test_references_resolve(rendered: list[dict[str, Any]]) -> None:
    config_maps = _by(rendered, "ConfigMap")
    assert not _by(rendered, "Secret"), "credentials are created outside the tree, never committed"
    secret_keys: set[str] = set()
    for _workload, pod in pod_specs(rendered):
        assert pod["serviceAccountName"] in _by(rendered, "ServiceAccount")
        for c in containers(pod):
            env_names = set()
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    env_names |= set(config_maps[ref["configMapRef"]["name"]]["data"])
                else:
                    assert ref["secretRef"]["name"] == SECRET
            for var in c.get("env", []):
                env_names.add(var["name"])
                source = var.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    assert ref["key"] in config_maps[ref["name"]]["data"], ref
                elif "secretKeyRef" in source:
                    assert source["secretKeyRef"]["name"] == SECRET
                    secret_keys.add(source["secretKeyRef"]["key"])
            # every $(VAR) in the command is defined for the container
            for token in c.get("command", []) + c.get("args", []):
                for var in re.findall(r"\$\((\w+)\)", token):
                    assert var in env_names, (c["name"], var)
    assert secret_keys == SECRET_KEYS
    readme = (INFRA / "README.md").read_text()
    assert all(f"`{key}`" in readme for key in SECRET_KEYS), "every Secret key is documented"
    for service in _by(rendered, "Service").values():
        selector = service["spec"]["selector"]
        targets = [p for w, p in pod_specs(rendered) if selector.items() <= w["spec"]["template"]["metadata"]
                   ["labels"].items()]  # fmt: skip
        assert len(targets) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in targets[0]["containers"] for p in c.get("ports", [])}
        assert all(p["targetPort"] in ports for p in service["spec"]["ports"])


def test_overlay_points_at_external_services() -> None:
    docs = kustomize(KUSTOMIZATIONS[1])
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"flowml"}
    config = {k.rsplit("-", 1)[0]: v["data"] for k, v in _by(docs, "ConfigMap").items()}
    assert (
        "@postgres.db.example.internal:5432/"
        in config["flowml-server-config"]["FLOWML_SERVER_BACKEND_STORE_URI"]
    )
    assert config["flowml-client-config"]["PREFECT_API_URL"].startswith("https://")
    images = {c["image"] for _, pod in pod_specs(docs) for c in containers(pod)}
    assert images == {"registry.example.com/ml-platform/flowml:0.1.0"}


def test_bento_example_is_valid_and_what_the_renderer_gives() -> None:
    from flowml.deploy.k8s import BENTO_PORT, BENTO_UID, BentoRef, render_manifest

    text = BENTO_EXAMPLE.read_text()
    deployment, service = (d for d in yaml.safe_load_all(text) if d)
    validate(deployment)
    validate(service)
    pod = deployment["spec"]["template"]["spec"]
    bento = pod["containers"][0]
    assert pod["securityContext"]["runAsUser"] == BENTO_UID and pod["securityContext"]["runAsNonRoot"]
    assert bento["ports"][0]["containerPort"] == BENTO_PORT
    assert bento["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert bento["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # regenerate it from what it says about itself: the renderer and the committed file agree
    notes = deployment["metadata"]["annotations"]
    names = {"registered_model": "registered-model", "model_version": "model-version", "run_id": "run-id",
             "sha256": "model-sha256", "model_uri": "model-uri"}  # fmt: skip
    labels = {f"flowml.{label}": notes[f"flowml/{note}"] for label, note in names.items()}
    again = render_manifest(
        BentoRef(notes["flowml/bento-tag"], labels),
        image=bento["image"],
        namespace=deployment["metadata"]["namespace"],
    )
    assert again == text
