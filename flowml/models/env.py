"""Environment files written next to a model: ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``.

Versions are the ones installed in this interpreter (``importlib.metadata``), pinned with ``==``, as
MLflow pins them. ``pip_requirements`` replaces the inferred list; ``extra_pip_requirements`` adds to it.
Either may be a list of requirement strings or the path of a requirements file.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any

from flowml.exceptions import InvalidParameterValue

__all__ = [
    "CONDA_FILE",
    "PYTHON_ENV_FILE",
    "REQUIREMENTS_FILE",
    "installed_version",
    "pinned",
    "write_environment",
]

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_FILE = "conda.yaml"


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def pinned(dists: Iterable[str]) -> list[str]:
    """``name==version`` for every installed distribution in ``dists`` (missing ones skipped)."""
    out = []
    for dist in dists:
        version = installed_version(dist)
        if version is not None:
            out.append(f"{dist}=={version}")
    return out


def _as_list(reqs: str | os.PathLike[str] | Sequence[str] | None) -> list[str] | None:
    if reqs is None:
        return None
    if isinstance(reqs, str | os.PathLike):
        if not os.path.isfile(reqs):
            raise InvalidParameterValue(f"Requirements file {os.fspath(reqs)!r} does not exist")
        with open(reqs, encoding="utf-8") as fh:
            return [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    return [str(r) for r in reqs]


def _name(req: str) -> str:
    for sep in ("==", ">=", "<=", "~=", "!=", ">", "<", "[", ";", " "):
        req = req.split(sep, 1)[0]
    return req.strip().lower().replace("_", "-")


def _python_version() -> str:
    return platform.python_version()


def write_environment(
    path: str,
    default_dists: Sequence[str],
    pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike[str] | Sequence[str] | None = None,
) -> dict[str, str]:
    """Write the three files into model dir ``path``; return the pyfunc ``env`` entry."""
    import yaml

    explicit = _as_list(pip_requirements)
    extra = _as_list(extra_pip_requirements)
    if explicit is not None and extra is not None:
        raise InvalidParameterValue(
            "Only one of `pip_requirements` and `extra_pip_requirements` can be given"
        )
    reqs = explicit if explicit is not None else pinned(default_dists)
    if extra:
        names = {_name(e) for e in extra}
        reqs = [r for r in reqs if _name(r) not in names] + extra
    # de-duplicate, keep order
    seen: set[str] = set()
    reqs = [r for r in reqs if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
    with open(os.path.join(path, REQUIREMENTS_FILE), "w", encoding="utf-8") as fh:
        fh.write("\n".join(reqs) + ("\n" if reqs else ""))
    pip_version = installed_version("pip")
    build: list[str] = [
        f"pip=={pip_version}" if pip_version else "pip",
        f"setuptools=={v}" if (v := installed_version("setuptools")) else "setuptools",
        "wheel",
    ]
    python_env: dict[str, Any] = {
        "python": _python_version(),
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    with open(os.path.join(path, PYTHON_ENV_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump(python_env, fh, default_flow_style=False, sort_keys=False)
    conda: dict[str, Any] = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={_python_version()}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": reqs},
        ],
    }
    with open(os.path.join(path, CONDA_FILE), "w", encoding="utf-8") as fh:
        yaml.safe_dump(conda, fh, default_flow_style=False, sort_keys=False)
    return {"conda": CONDA_FILE, "virtualenv": PYTHON_ENV_FILE}


def read_requirements(path: str) -> list[str]:
    """The requirement lines of a model dir's ``requirements.txt`` (empty if there is none)."""
    target = os.path.join(path, REQUIREMENTS_FILE)
    if not os.path.isfile(target):
        return []
    return _as_list(target) or []
