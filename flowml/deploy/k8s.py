"""Kubernetes manifests for a served model: a Deployment + Service running a Bento's container image.

``flowml deploy manifest NAME`` (or ``--bento TAG``) prints what :func:`render_manifest` returns. The image
is what ``bentoml containerize TAG`` builds (BentoML's Dockerfile: user ``bentoml``, uid/gid 1034, HTTP on
port 3000) pushed to a registry the cluster can pull from. Probes use BentoML's own endpoints: ``/readyz``
(the model is loaded) for startup and readiness, ``/livez`` for liveness.

BentoML's image names its user (``USER bentoml``), so the pod sets ``runAsUser`` explicitly: with
``runAsNonRoot`` alone the kubelet cannot verify a non-numeric user and refuses to start the container.
Rendering is pure; :func:`bento_ref` reads the local Bento store (``BENTOML_HOME``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BENTO_PORT", "BENTO_UID", "BentoRef", "bento_ref", "k8s_name", "render_manifest"]

#: BentoML's HTTP port inside the container (``EXPOSE 3000`` in the generated Dockerfile).
BENTO_PORT = 3000
#: uid/gid of the ``bentoml`` user in the generated Dockerfile (``bentoml._internal.container.generate``).
BENTO_UID = 1034
ANNOTATION_PREFIX = "flowml/"
#: Bento labels written by :func:`flowml.deploy.bento.build_bento` → pod annotations.
_LABEL_ANNOTATIONS = {
    "flowml.registered_model": "registered-model",
    "flowml.model_version": "model-version",
    "flowml.run_id": "run-id",
    "flowml.sha256": "model-sha256",
    "flowml.model_uri": "model-uri",
}
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class BentoRef:
    """A Bento by exact tag (``name:version``) with its flowml labels."""

    tag: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name, _, version = self.tag.partition(":")
        if not name or not version or version == "latest":
            raise ValueError(f"a Bento tag with an exact version is needed (name:version), got {self.tag!r}")

    @property
    def name(self) -> str:
        return self.tag.partition(":")[0]

    @property
    def version(self) -> str:
        return self.tag.partition(":")[2]


def bento_ref(tag: str, bentoml_home: str | os.PathLike[str] | None = None) -> BentoRef:
    """The Bento ``tag`` (``name``, ``name:latest`` or ``name:version``) from the local Bento store."""
    from flowml.deploy.bento import use_bentoml_home

    with use_bentoml_home(bentoml_home):
        import bentoml
        from bentoml.exceptions import NotFound

        try:
            bento = bentoml.get(tag)
        except NotFound as exc:
            raise LookupError(f"Bento {tag!r} is not in the local Bento store: {exc}") from exc
        return BentoRef(str(bento.tag), {str(k): str(v) for k, v in bento.info.labels.items()})


def k8s_name(text: str) -> str:
    """``text`` as a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise ValueError(f"cannot make a Kubernetes name from {text!r}")
    return name


def _dump(docs: list[dict[str, Any]]) -> str:
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # shared label dicts are written out, not as &anchors

    return "---\n".join(yaml.dump(doc, Dumper=NoAliases, sort_keys=False) for doc in docs)


def render_manifest(
    bento: BentoRef,
    *,
    image: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
    replicas: int = 1,
    cpu: str = "500m",
    memory: str = "1Gi",
    memory_limit: str = "2Gi",
) -> str:
    """YAML (two documents) for a Deployment + ClusterIP Service serving ``bento``'s container image.

    ``image`` defaults to the Bento tag, the name ``bentoml containerize`` gives the image it builds.
    """
    if replicas < 0:
        raise ValueError("replicas must be >= 0")
    app = k8s_name(name or bento.name)
    selector = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app}
    labels = {
        **selector,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "flowml",
        "app.kubernetes.io/managed-by": "flowml",
    }
    if _LABEL_VALUE.match(bento.version):
        labels["app.kubernetes.io/version"] = bento.version
    annotations = {f"{ANNOTATION_PREFIX}bento-tag": bento.tag}
    for key, suffix in _LABEL_ANNOTATIONS.items():
        if bento.labels.get(key):
            annotations[f"{ANNOTATION_PREFIX}{suffix}"] = str(bento.labels[key])
    meta: dict[str, Any] = {"name": app}
    if namespace:
        meta["namespace"] = k8s_name(namespace)
    meta.update(labels=labels, annotations=annotations)

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    container = {
        "name": "bento",
        "image": image or bento.tag,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": BENTO_PORT, "protocol": "TCP"}],
        "env": [{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
        "startupProbe": probe("/readyz", 5, 60),  # up to 5 min to load the model
        "readinessProbe": probe("/readyz", 10, 3),
        "livenessProbe": probe("/livez", 20, 3),
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": BENTO_UID,
                        "runAsGroup": BENTO_UID,
                        "fsGroup": BENTO_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": BENTO_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    header = (
        f"# Bento {bento.tag} on Kubernetes, rendered by `flowml deploy manifest`. Build, push the image:\n"
        f"#   bentoml containerize {bento.tag} -t {container['image']}\n"
        f"# The Service answers POST /predict and /invocations on port {BENTO_PORT}.\n"
    )
    return header + _dump([deployment, service])
