"""Package any pyfunc model as a Bento: a BentoML model + the generated generic service + ``bentoml.build``.

``build_bento("models:/iris@champion")``:

1. resolves the URI (``runs:/``, ``models:/name/version|stage``, ``models:/name@alias``, paths, ``s3://``)
   and verifies the directory's integrity *without* deserialising anything;
2. stores the MLmodel directory as a BentoML model (``bentoml.models.create``; the files go under
   ``<model>/mlmodel/``) labelled with the registry name, version, run id and the sha256 of the directory;
3. writes a build context: the generic service (:mod:`flowml.deploy._service_template`, copied as
   ``flowml_bento_service.py``), its ``flowml_service.json`` (model tag, signature, labels, batching) and
   a copy of the ``flowml`` package (so the Bento — and its container — need no flowml install);
4. ``bentoml.build`` with the model's captured requirements (+ what the service needs), unlocked by
   default (``lock_packages=False``: no index access at build time), and a Dockerfile in
   ``<bento>/env/docker/Dockerfile``. ``bentoml containerize <tag>`` turns it into an image where Docker
   is available.

Everything lands in ``BENTOML_HOME`` (``bentoml_home=`` overrides it for the call).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameterValue

__all__ = [
    "SERVICE_CLASS",
    "SERVICE_MODULE",
    "BuiltBento",
    "ModelSource",
    "build_bento",
    "import_model",
    "model_dir_sha256",
    "prepare_service",
    "resolve_model_source",
    "serve_command",
    "use_bentoml_home",
]

SERVICE_MODULE = "flowml_bento_service"
SERVICE_CLASS = "FlowmlModelService"
CONFIG_FILE = "flowml_service.json"
MODEL_SUBDIR = "mlmodel"

LABEL_REGISTERED_MODEL = "flowml.registered_model"
LABEL_VERSION = "flowml.model_version"
LABEL_RUN_ID = "flowml.run_id"
LABEL_SHA256 = "flowml.sha256"

#: what the generated service itself imports, beyond the model's own requirements
SERVICE_REQUIREMENTS = ("numpy", "pandas", "pyyaml", "orjson", "cloudpickle", "pydantic", "pydantic-settings")
_TAG_NAME = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True)
class ModelSource:
    """A resolved, integrity-checked model directory and where it came from."""

    uri: str
    local_path: str
    run_id: str | None
    registered_model: str | None
    version: str | None
    sha256: str
    mlmodel: Any  # flowml.models.Model

    @property
    def labels(self) -> dict[str, str]:
        labels = {LABEL_SHA256: self.sha256}
        if self.registered_model:
            labels[LABEL_REGISTERED_MODEL] = self.registered_model
        if self.version:
            labels[LABEL_VERSION] = self.version
        if self.run_id:
            labels[LABEL_RUN_ID] = self.run_id
        return labels


@dataclass(frozen=True)
class BuiltBento:
    """The result of :func:`build_bento`."""

    tag: str
    path: str
    model_tag: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def dockerfile(self) -> str:
        return os.path.join(self.path, "env", "docker", "Dockerfile")


def model_dir_sha256(path: str) -> str:
    """One sha256 over a model directory: every file's relative path, size and sha256, in path order."""
    from flowml.models.integrity import MANIFEST_FILE, _sha256, compute_file_digests

    digests = dict(compute_file_digests(path))
    manifest = os.path.join(path, MANIFEST_FILE)
    if os.path.isfile(manifest):
        digests[MANIFEST_FILE] = (os.path.getsize(manifest), _sha256(manifest))
    outer = hashlib.sha256()
    for rel in sorted(digests):
        size, sha = digests[rel]
        outer.update(f"{rel}\0{size}\0{sha}\n".encode())
    return outer.hexdigest()


def resolve_model_source(model_uri: str, dst_path: str | None = None) -> ModelSource:
    """Resolve ``model_uri`` to a verified local directory plus its registry/run identity."""
    from flowml.models.pyfunc import FLAVOR_NAME, load_verified
    from flowml.models.uri import logged_model_id, parse_registry_uri

    uri = os.fspath(model_uri)
    registered: str | None = None
    version: str | None = None
    run_id: str | None = None
    if uri.startswith("models:") and logged_model_id(uri) is None:  # models:/<model_id>: no registry
        from flowml.client import FlowmlClient

        ref = parse_registry_uri(uri)
        mv = FlowmlClient().resolve_model_uri(uri)
        registered, version = ref.name, str(mv.version)
        run_id = getattr(mv, "run_id", None) or None
    local, meta, _status = load_verified(uri, dst_path)
    if FLAVOR_NAME not in meta.flavors:
        raise InvalidParameterValue(
            f"Model at {uri!r} has no python_function flavor, so it cannot be served (flavors: "
            f"{sorted(meta.flavors)})"
        )
    run_id = run_id or meta.run_id
    return ModelSource(uri, local, run_id, registered, version, model_dir_sha256(local), meta)


def _tag_name(text: str) -> str:
    name = _TAG_NAME.sub("-", text.lower()).strip("-._")
    return (name or "flowml-model")[:63]


@contextlib.contextmanager
def use_bentoml_home(home: str | os.PathLike[str] | None) -> Iterator[None]:
    """Point BentoML's model and bento stores at ``home`` for the duration (None: ``$BENTOML_HOME`` as
    it is now, else BentoML's own configuration).

    BentoML reads ``BENTOML_HOME`` once per process; this patches its container so one process can build
    into several homes (tests, the deployment flow) and follows the variable when it changes.
    """
    home = home if home is not None else os.environ.get("BENTOML_HOME") or None
    if home is None:
        yield
        return
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    home = os.path.abspath(os.fspath(home))
    dirs = {name: os.path.join(home, name) for name in ("bentos", "models", "envs", "tmp")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    container: Any = BentoMLContainer
    with contextlib.ExitStack() as stack:
        stack.enter_context(container.bentoml_home.patch(home))
        stack.enter_context(container.bento_store_dir.patch(dirs["bentos"]))
        stack.enter_context(container.model_store_dir.patch(dirs["models"]))
        stack.enter_context(container.env_store_dir.patch(dirs["envs"]))
        stack.enter_context(container.tmp_bento_store_dir.patch(dirs["tmp"]))
        stack.enter_context(container.bento_store.patch(BentoStore(dirs["bentos"])))
        stack.enter_context(container.model_store.patch(ModelStore(dirs["models"])))
        old_env = os.environ.get("BENTOML_HOME")
        os.environ["BENTOML_HOME"] = home
        try:
            yield
        finally:
            if old_env is None:
                os.environ.pop("BENTOML_HOME", None)
            else:
                os.environ["BENTOML_HOME"] = old_env


def import_model(source: ModelSource, name: str | None = None) -> str:
    """Store ``source`` as a BentoML model (files under ``mlmodel/``); return its tag."""
    import bentoml

    tag_name = _tag_name(name or source.registered_model or "flowml-model")
    metadata: dict[str, Any] = {"flowml_model_uri": source.uri, "flowml_version": _flowml_version()}
    if source.mlmodel.signature is not None:  # BentoML metadata refuses None values
        metadata["signature"] = {k: v for k, v in source.mlmodel.signature.to_dict().items() if v is not None}
    with bentoml.models.create(tag_name, labels=source.labels, metadata=metadata) as ref:
        shutil.copytree(
            source.local_path,
            os.path.join(ref.path, MODEL_SUBDIR),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return str(ref.tag)


def _flowml_version() -> str:
    import flowml

    return str(getattr(flowml, "__version__", "unknown"))


def _requirements(local_path: str) -> list[str]:
    from flowml.models.env import read_requirements

    reqs = read_requirements(local_path)
    # mlflow itself is not needed to serve: flowml loads MLflow's formats on its own
    reqs = [r for r in reqs if not re.match(r"^mlflow([^a-z0-9_-]|$)", r.strip().lower())]
    names = {re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
    for extra in SERVICE_REQUIREMENTS:
        if extra not in names:
            reqs.append(extra)
    return reqs


def _write_build_context(
    ctx: str,
    source: ModelSource,
    service_name: str,
    config: Mapping[str, Any],
    *,
    vendor_flowml: bool = True,
) -> None:
    import flowml
    from flowml.deploy import _service_template

    shutil.copy2(_service_template.__file__, os.path.join(ctx, f"{SERVICE_MODULE}.py"))
    if vendor_flowml:
        package_dir = os.path.dirname(os.path.abspath(flowml.__file__))
        shutil.copytree(
            package_dir, os.path.join(ctx, "flowml"), ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    signature = source.mlmodel.signature
    service_config = {
        "service_name": re.sub(r"[^a-z0-9_]", "_", service_name),
        "signature": signature.to_dict() if signature is not None else None,
        "labels": source.labels,
        **config,
    }
    with open(os.path.join(ctx, CONFIG_FILE), "w", encoding="utf-8") as fh:
        json.dump(service_config, fh, indent=2)


def _batching_config(batching: bool | Mapping[str, Any]) -> dict[str, Any]:
    if not batching:
        return {}
    return {"enabled": True, **(dict(batching) if isinstance(batching, Mapping) else {})}


def build_bento(
    model_uri: str,
    *,
    name: str | None = None,
    bentoml_home: str | os.PathLike[str] | None = None,
    batching: bool | Mapping[str, Any] = False,
    workers: int = 1,
    lock_packages: bool = False,
    version: str | None = None,
    python_version: str | None = None,
) -> BuiltBento:
    """Build a Bento serving ``model_uri`` with the generic flowml service; return its tag and path.

    ``batching`` turns on BentoML's adaptive batching for ``/predict`` (True, or a dict with
    ``max_batch_size`` / ``max_latency_ms``). ``workers`` is the number of BentoML worker processes.
    """
    with use_bentoml_home(bentoml_home):
        import bentoml

        source = resolve_model_source(model_uri)
        model_tag = import_model(source, name)
        batch_conf = _batching_config(batching)
        labels = {**source.labels, "flowml.model_uri": source.uri, "flowml.bento_model": model_tag}
        py = python_version or "{}.{}".format(*sys.version_info[:2])
        bento_name = _tag_name(name or source.registered_model or "flowml-model")
        with tempfile.TemporaryDirectory(prefix="flowml-bento-") as ctx:
            config = {"model_tag": model_tag, "batching": batch_conf, "workers": workers}
            _write_build_context(ctx, source, bento_name, config)
            sys.modules.pop(SERVICE_MODULE, None)  # another build's service module must not be reused
            try:
                bento = bentoml.build(
                    service=f"{SERVICE_MODULE}:{SERVICE_CLASS}",
                    build_ctx=ctx,
                    name=bento_name,
                    version=version,
                    labels=labels,
                    include=[f"{SERVICE_MODULE}.py", CONFIG_FILE, "flowml/**"],
                    python={"packages": _requirements(source.local_path), "lock_packages": lock_packages},
                    docker={"python_version": py, "system_packages": ["libgomp1"]},
                )
            finally:
                sys.modules.pop(SERVICE_MODULE, None)
        return BuiltBento(str(bento.tag), str(bento.path), model_tag, labels)


def prepare_service(
    model_uri: str,
    ctx: str,
    *,
    name: str | None = None,
    batching: bool | Mapping[str, Any] = False,
    workers: int = 1,
) -> ModelSource:
    """Write a servable service for ``model_uri`` into directory ``ctx`` (no Bento, no model store).

    The model is resolved (downloaded into ``ctx/model`` when remote) and verified; the service loads it
    in place. ``bentoml serve flowml_bento_service:FlowmlModelService --working-dir ctx`` serves it
    (:func:`serve_command`); ``ctx`` must outlive the server.
    """
    os.makedirs(os.path.join(ctx, "model"), exist_ok=True)
    source = resolve_model_source(model_uri, dst_path=os.path.join(ctx, "model"))
    service_name = _tag_name(name or source.registered_model or "flowml-model")
    config = {
        "model_path": os.path.abspath(source.local_path),
        "batching": _batching_config(batching),
        "workers": workers,
    }
    _write_build_context(ctx, source, service_name, config, vendor_flowml=False)
    return source


def serve_command(target: str, *, host: str, port: int, working_dir: str | None = None) -> list[str]:
    """The ``bentoml serve`` command line for a Bento tag, or (with ``working_dir``) a prepared context."""
    bentoml_cli = os.path.join(os.path.dirname(sys.executable), "bentoml")
    if not os.path.isfile(bentoml_cli):  # pragma: no cover - bentoml installed without its script
        bentoml_cli = shutil.which("bentoml") or "bentoml"
    cmd = [bentoml_cli, "serve", target, "--host", host, "--port", str(port)]
    if working_dir is not None:
        cmd += ["--working-dir", working_dir]
    return cmd
