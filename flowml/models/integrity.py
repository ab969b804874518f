"""Model-directory integrity: a sha256 manifest written at save, verified before anything is unpickled.

``save_model`` writes ``flowml_checksums.json`` (every file's size and sha256, the manifest itself
excluded) as the last file of the model directory. ``load_model`` calls :func:`verify_model_dir` on the
local copy *before* any flavor loader runs; when the model came from a run (``runs:/``), the files are
also checked against the checksums the tracking store recorded when the artifacts were uploaded, so
deleting or rewriting the manifest together with a pickle is caught as well.

A mismatch, a missing or an unexpected file, or a symlink raises :class:`ModelIntegrityError`
(``DATA_LOSS``) and nothing from the directory is executed. Models saved by MLflow carry no manifest:
they load, with a warning that their integrity cannot be checked (unless the run recorded checksums).

``FLOWML_ALLOW_PICKLE=false`` refuses every pickle/cloudpickle/skops model (hardened deployments).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from flowml.exceptions import FlowmlError, PermissionDenied

__all__ = [
    "MANIFEST_FILE",
    "ModelIntegrityError",
    "check_deserialization_allowed",
    "compute_file_digests",
    "manifest_record_checksums",
    "verify_model_dir",
    "write_manifest",
]

_log = logging.getLogger(__name__)

MANIFEST_FILE = "flowml_checksums.json"
_CHUNK = 1 << 20


class ModelIntegrityError(FlowmlError):
    """A model directory does not match its recorded checksums: it is refused, not loaded."""

    default_code = "DATA_LOSS"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def compute_file_digests(model_dir: str) -> dict[str, tuple[int, str]]:
    """``{relative posix path: (size, sha256)}`` of every file under ``model_dir`` but the manifest.

    Symlinks are refused: a model directory never needs one, and one can point anywhere.
    """
    out: dict[str, tuple[int, str]] = {}
    for root, dirs, files in os.walk(model_dir, followlinks=False):
        for name in dirs + files:
            full = os.path.join(root, name)
            if os.path.islink(full):
                rel = os.path.relpath(full, model_dir).replace(os.sep, "/")
                raise ModelIntegrityError(f"Model directory contains a symlink {rel!r}: refusing to load it")
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, model_dir).replace(os.sep, "/")
            if rel == MANIFEST_FILE:
                continue
            out[rel] = (os.path.getsize(full), _sha256(full))
    return out


def write_manifest(model_dir: str) -> dict[str, Any]:
    """Record every file's size and sha256 in ``<model_dir>/flowml_checksums.json``."""
    digests = compute_file_digests(model_dir)
    manifest = {
        "version": 1,
        "algorithm": "sha256",
        "files": {rel: {"size": size, "sha256": sha} for rel, (size, sha) in sorted(digests.items())},
    }
    with open(os.path.join(model_dir, MANIFEST_FILE), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    return manifest


def _read_manifest(model_dir: str) -> dict[str, tuple[int, str]] | None:
    path = os.path.join(model_dir, MANIFEST_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("algorithm") != "sha256":
            raise ValueError(f"unsupported algorithm {data.get('algorithm')!r}")
        return {str(rel): (int(v["size"]), str(v["sha256"])) for rel, v in data["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelIntegrityError(f"Malformed integrity manifest {MANIFEST_FILE}: {exc}") from exc


def _compare(
    expected: Mapping[str, tuple[int, str]], actual: Mapping[str, tuple[int, str]], source: str, against: str
) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(rel for rel in set(expected) & set(actual) if tuple(expected[rel]) != tuple(actual[rel]))
    if missing or extra or changed:
        parts = []
        if changed:
            parts.append(f"modified: {changed}")
        if missing:
            parts.append(f"missing: {missing}")
        if extra:
            parts.append(f"unexpected: {extra}")
        raise ModelIntegrityError(
            f"Model at {source!r} failed its integrity check against {against} ({'; '.join(parts)}). "
            "It may have been tampered with; it was not loaded and none of its code was run."
        )


def verify_model_dir(
    model_dir: str,
    run_checksums: Mapping[str, tuple[int, str]] | None = None,
    *,
    source: str | None = None,
) -> str:
    """Verify ``model_dir`` before loading; return ``"manifest"``, ``"run"`` or ``"unverified"``.

    ``run_checksums`` are the run's recorded ``{path relative to the model dir: (size, sha256)}``;
    they must cover the directory exactly (the manifest file included, when it was logged).
    """
    source = source or model_dir
    actual = compute_file_digests(model_dir)
    manifest_path = os.path.join(model_dir, MANIFEST_FILE)
    status = "unverified"
    if run_checksums:
        with_manifest = dict(actual)
        if os.path.isfile(manifest_path):
            with_manifest[MANIFEST_FILE] = (os.path.getsize(manifest_path), _sha256(manifest_path))
        _compare(run_checksums, with_manifest, source, "the checksums recorded by the tracking store")
        status = "run"
    manifest = _read_manifest(model_dir)
    if manifest is not None:
        _compare(manifest, actual, source, MANIFEST_FILE)
        status = "manifest"
    elif status == "unverified":
        _log.warning(
            "Model at %r has no %s (it was not saved by flowml) and no recorded checksums: its integrity "
            "cannot be checked. Load models only from sources you trust.",
            source,
            MANIFEST_FILE,
        )
    return status


def manifest_record_checksums(model_dir: str, manifest_sha256: str) -> dict[str, tuple[int, str]]:
    """What the tracking store vouches for when it recorded only the manifest's sha256 (a logged
    model's files): the manifest's entries plus the manifest itself, for :func:`verify_model_dir`.
    A missing or rewritten manifest yields a record the directory cannot match."""
    path = os.path.join(model_dir, MANIFEST_FILE)
    if not os.path.isfile(path):
        return {MANIFEST_FILE: (0, manifest_sha256)}
    size = os.path.getsize(path)
    if _sha256(path) != manifest_sha256:
        return {MANIFEST_FILE: (size, manifest_sha256)}
    return {**(_read_manifest(model_dir) or {}), MANIFEST_FILE: (size, manifest_sha256)}


def check_deserialization_allowed(what: str) -> None:
    """Refuse to unpickle when ``FLOWML_ALLOW_PICKLE`` is false (the hardened-deployment kill switch)."""
    value = os.environ.get("FLOWML_ALLOW_PICKLE", "true").strip().lower()
    if value in ("0", "false", "no", "off"):
        raise PermissionDenied(
            f"Loading {what} would deserialize a pickle, and FLOWML_ALLOW_PICKLE is {value!r}. "
            "Set FLOWML_ALLOW_PICKLE=true to allow loading models from trusted sources."
        )
