"""Where a project comes from: a local directory, or a git repository cloned into a cache.

URIs: ``path/to/dir``, ``file:///abs/dir`` (a git repo there is cloned), ``https://host/repo.git#sub/dir``,
``git@host:repo.git``, ``ssh://...``, ``git+https://...``. ``version`` is a commit, tag or branch (git
URIs only).
The cache lives under ``$FLOWML_PROJECTS_CACHE`` (default ``~/.cache/flowml/projects``), one clone per
(repository, version); a cached clone is fetched and reset on every use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from flowml.projects.spec import ExecutionError, ProjectSpecError

__all__ = ["ProjectSource", "fetch_project", "is_git_uri", "split_subdirectory"]

_GIT_SCHEMES = ("http", "https", "ssh", "git", "git+https", "git+ssh", "git+http", "git+file")


@dataclass(frozen=True)
class ProjectSource:
    """A project checked out on local disk, and the facts that become ``mlflow.source.*`` tags."""

    directory: Path
    uri: str
    git_commit: str | None = None
    git_repo_url: str | None = None
    git_branch: str | None = None

    def source_tags(self) -> dict[str, str]:
        tags = {"mlflow.source.name": self.git_repo_url or self.uri}
        if self.git_commit:
            tags["mlflow.source.git.commit"] = self.git_commit
            tags["mlflow.gitRepoURL"] = tags["mlflow.source.git.repoURL"] = self.git_repo_url or self.uri
        if self.git_branch:
            tags["mlflow.source.git.branch"] = self.git_branch
        return tags


def split_subdirectory(uri: str) -> tuple[str, str]:
    """``repo#sub/dir`` -> ``("repo", "sub/dir")``; refuses ``..`` escapes."""
    base, _, sub = uri.partition("#")
    sub = sub.strip("/")
    if sub and (Path(sub).is_absolute() or ".." in Path(sub).parts):
        raise ProjectSpecError(f"Invalid subdirectory {sub!r} in project URI {uri!r}")
    return base, sub


def _is_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def is_git_uri(uri: str) -> bool:
    base, _ = split_subdirectory(uri)
    if base.startswith("git@"):
        return True
    parsed = urlparse(base)
    if parsed.scheme == "file":
        return _is_repo(Path(parsed.path))
    return parsed.scheme in _GIT_SCHEMES


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
        )
    except FileNotFoundError:
        raise ExecutionError("git is not installed: it is needed for git project URIs") from None
    if done.returncode != 0:
        raise ExecutionError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _cache_root() -> Path:
    root = os.environ.get("FLOWML_PROJECTS_CACHE") or Path.home() / ".cache" / "flowml" / "projects"
    return Path(root)


def _checkout(repo_url: str, version: str | None) -> tuple[Path, str, str | None]:
    """Clone (or refresh) ``repo_url`` at ``version``; returns (checkout dir, commit, branch or None)."""
    key = hashlib.sha256(f"{repo_url}\0{version or ''}".encode()).hexdigest()[:20]
    dest = _cache_root() / key
    if not (dest / ".git").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=dest.parent))
        try:
            _git("clone", "--quiet", "--no-checkout", repo_url, str(tmp))
            try:
                tmp.rename(dest)
            except OSError:  # another process won the race: use its clone
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        _git("fetch", "--quiet", "--tags", "--force", "--prune", "origin", cwd=dest)
    branch: str | None = None
    if version is None:
        head = _git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", cwd=dest)
        target, branch = head, head.removeprefix("origin/")
    elif _ref_exists(dest, f"refs/remotes/origin/{version}"):
        target, branch = f"origin/{version}", version
    else:
        target = version
    try:
        _git("checkout", "--quiet", "--force", "--detach", target, cwd=dest)
    except ExecutionError as exc:
        raise ExecutionError(
            f"Unable to checkout version {version!r} of git repo {repo_url}: {exc}"
        ) from None
    _git("clean", "-fdxq", cwd=dest)
    return dest, _git("rev-parse", "HEAD", cwd=dest), branch


def _ref_exists(repo: Path, ref: str) -> bool:
    try:
        _git("rev-parse", "--verify", "--quiet", ref, cwd=repo)
    except ExecutionError:
        return False
    return True


def _local_git_facts(directory: Path) -> tuple[str | None, str | None, str | None]:
    """(commit, repo URL, branch) of the working tree containing ``directory``, when it is one."""
    try:
        top = Path(_git("rev-parse", "--show-toplevel", cwd=directory))
        commit = _git("rev-parse", "HEAD", cwd=top)
    except (ExecutionError, OSError):
        return None, None, None
    try:
        url: str = _git("remote", "get-url", "origin", cwd=top)
    except ExecutionError:
        url = str(top)
    try:
        branch: str | None = _git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=top)
    except ExecutionError:
        branch = None
    return commit, url, branch


def fetch_project(uri: str, version: str | None = None) -> ProjectSource:
    """Resolve ``uri`` (+ ``#subdir``) to a local directory, cloning git URIs into the cache."""
    base, sub = split_subdirectory(uri)
    if is_git_uri(uri):
        repo_url = base.removeprefix("git+") if not base.startswith("git+file") else base[4:]
        checkout, commit, branch = _checkout(repo_url, version)
        directory = checkout / sub if sub else checkout
        if not directory.is_dir():
            raise ProjectSpecError(f"Subdirectory {sub!r} not found in git repo {repo_url}")
        return ProjectSource(directory, uri, commit, repo_url, branch)
    if version is not None:
        raise ProjectSpecError("Setting a version is only supported for Git project URIs")
    parsed = urlparse(base)
    if parsed.scheme and parsed.scheme != "file" and len(parsed.scheme) > 1:
        raise ProjectSpecError(f"Unsupported project URI {uri!r}: expected a local directory or a git URI")
    root = Path(parsed.path if parsed.scheme == "file" else base).expanduser().resolve()
    directory = root / sub if sub else root
    if not directory.is_dir():
        raise ProjectSpecError(f"Project directory {str(directory)!r} does not exist")
    local_commit, url, local_branch = _local_git_facts(directory)
    return ProjectSource(directory, str(directory), local_commit, url, local_branch)
