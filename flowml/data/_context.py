"""The run-context tags MLflow stores on a dataset created without a source (a ``code`` source).

MLflow asks its run-context providers (``mlflow.tracking.context.registry.resolve_tags()``); outside
Databricks and notebooks that gives, in this order:

* ``mlflow.user`` (``MLFLOW_TRACKING_USERNAME`` or the ``[mlflow]`` username in
  ``~/.mlflow/credentials``, else the login name), ``mlflow.source.name`` (``sys.argv[0]`` as
  given, ``<console>`` when empty) and ``mlflow.source.type`` (``LOCAL``);
* when the main file lives in a git work tree and is not git-ignored: ``mlflow.source.git.commit``,
  ``mlflow.source.git.branch`` (unless HEAD is detached) and ``mlflow.source.git.repoURL`` (the
  first remote, credentials stripped);
* the JSON object in ``MLFLOW_RUN_CONTEXT``, when that variable is set.
"""

from __future__ import annotations

import configparser
import functools
import getpass
import json
import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

__all__ = ["context_tags"]

logger = logging.getLogger(__name__)

_GIT_TIMEOUT_S = 10.0


def _user() -> str:
    for var in ("FLOWML_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME"):
        if name := os.environ.get(var):
            return name
    config = configparser.ConfigParser()
    try:
        config.read(os.path.expanduser("~/.mlflow/credentials"))
    except configparser.Error:
        logger.debug("Unreadable ~/.mlflow/credentials", exc_info=True)
    else:
        if name := config.get("mlflow", "mlflow_tracking_username", fallback=None):
            return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _git(args: list[str], cwd: str) -> str | None:
    """``git args`` run in ``cwd``: its stripped output, or ``None`` when it fails."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=_GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment)
    )


@functools.lru_cache(maxsize=8)
def _git_tags(main_file: str) -> tuple[tuple[str, str], ...]:
    path = os.path.dirname(os.path.abspath(main_file)) if os.path.isfile(main_file) else main_file
    if not os.path.isdir(path):
        return ()
    commit = _git(["rev-parse", "HEAD"], path)
    if not commit:
        return ()
    top = _git(["rev-parse", "--show-toplevel"], path)
    if top and _git(["check-ignore", "--", path], top) is not None:
        return ()  # the main file's directory is git-ignored
    tags = [("mlflow.source.git.commit", commit)]
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], path)
    if branch:
        tags.append(("mlflow.source.git.branch", branch))
    remotes = _git(["config", "--get-regexp", r"^remote\..*\.url$"], path)
    if remotes:
        first_url = remotes.splitlines()[0].partition(" ")[2]
        tags.append(("mlflow.source.git.repoURL", _strip_credentials(first_url)))
    return tuple(tags)


def context_tags() -> dict[str, str]:
    """The tags MLflow's ``registry.resolve_tags()`` gives for the current process."""
    main_file = sys.argv[0] if sys.argv and sys.argv[0] else None
    tags = {
        "mlflow.user": _user(),
        "mlflow.source.name": main_file or "<console>",
        "mlflow.source.type": "LOCAL",
    }
    if main_file is not None:
        tags.update(_git_tags(main_file))
    if "MLFLOW_RUN_CONTEXT" in os.environ:
        try:
            tags.update(json.loads(os.environ["MLFLOW_RUN_CONTEXT"]))
        except (ValueError, TypeError) as exc:
            logger.warning("Encountered unexpected error during resolving tags: %s", exc)
    return tags
