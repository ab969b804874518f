"""Project sources (local dirs, git repos cloned into the cache) and environments. No Prefect needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flowml.projects.env import docker_available, prepare_environment
from flowml.projects.git import fetch_project, is_git_uri, split_subdirectory
from flowml.projects.spec import ExecutionError, ProjectSpecError, load_project
from tests.projects.conftest import MakeProject


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A repository with the project in ``sub/``: ``v1`` tag / branch ``main`` (x=1), branch ``dev`` (x=2)."""
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "sub" / "MLproject").write_text("name: gitproj\nentry_points: {main: {command: 'cat x'}}\n")
    (repo / "sub" / "x").write_text("1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    _git(repo, "tag", "v1")
    _git(repo, "checkout", "-qb", "dev")
    (repo / "sub" / "x").write_text("2\n")
    _git(repo, "commit", "-qam", "two")
    _git(repo, "checkout", "-q", "main")
    return repo


def test_uri_classification(git_repo: Path, tmp_path: Path) -> None:
    assert split_subdirectory("https://h/r.git#a/b") == ("https://h/r.git", "a/b")
    with pytest.raises(ProjectSpecError, match="Invalid subdirectory"):
        split_subdirectory("https://h/r.git#../etc")
    assert is_git_uri("https://github.com/mlflow/mlflow-example")
    assert is_git_uri("git@github.com:org/repo.git")
    assert is_git_uri(f"file://{git_repo}#sub")
    assert not is_git_uri(f"file://{tmp_path}")
    assert not is_git_uri(str(git_repo))


def test_git_uri_with_subdirectory_and_version(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWML_PROJECTS_CACHE", str(tmp_path / "cache"))
    uri = f"file://{git_repo}#sub"
    head = fetch_project(uri)
    assert (head.directory / "x").read_text() == "1\n"
    assert head.git_branch == "main" and head.git_commit == _git(git_repo, "rev-parse", "main")
    assert head.source_tags()["mlflow.source.git.repoURL"] == f"file://{git_repo}"
    assert load_project(head.directory).name == "gitproj"
    dev = fetch_project(uri, version="dev")
    assert (dev.directory / "x").read_text() == "2\n" and dev.git_branch == "dev"
    tag = fetch_project(uri, version="v1")
    assert tag.git_branch is None and tag.git_commit == head.git_commit
    commit = fetch_project(uri, version=dev.git_commit)
    assert (commit.directory / "x").read_text() == "2\n"
    # A new commit upstream is picked up by the cached clone.
    (git_repo / "sub" / "x").write_text("3\n")
    _git(git_repo, "commit", "-qam", "three")
    assert (fetch_project(uri).directory / "x").read_text() == "3\n"
    with pytest.raises(ExecutionError, match="Unable to checkout version 'nope'"):
        fetch_project(uri, version="nope")
    with pytest.raises(ProjectSpecError, match="Subdirectory 'missing' not found"):
        fetch_project(f"file://{git_repo}#missing")


def test_local_directory_in_a_repo_records_git_facts(git_repo: Path, tmp_path: Path) -> None:
    source = fetch_project(str(git_repo / "sub"))
    assert source.directory == git_repo / "sub"
    assert source.git_commit == _git(git_repo, "rev-parse", "HEAD")
    assert source.git_branch == "main"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert fetch_project(str(plain)).source_tags() == {"mlflow.source.name": str(plain)}
    with pytest.raises(ProjectSpecError, match="only supported for Git project URIs"):
        fetch_project(str(plain), version="v1")
    with pytest.raises(ProjectSpecError, match="does not exist"):
        fetch_project(str(tmp_path / "nope"))


def test_local_env_puts_this_interpreter_first(make_project: MakeProject) -> None:
    env = prepare_environment(load_project(make_project("name: a\n")), "local")
    argv, full = env.argv("python -c 'import sys; print(sys.executable)'", {"X": "1"}, Path.cwd())
    done = subprocess.run(argv, env=full, capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()).parent == Path(sys.executable).parent
    assert env.kind == "local" and full["X"] == "1"
    with pytest.raises(ProjectSpecError, match="env_manager must be one of"):
        prepare_environment(load_project(make_project("name: b\n")), "pipenv")


@pytest.mark.skipif(docker_available() is None, reason="a Docker engine is running here")
def test_docker_env_without_docker_is_a_clear_error(make_project: MakeProject) -> None:
    project = load_project(make_project("name: d\ndocker_env: {image: 'python:3.11'}\n"))
    with pytest.raises(
        ExecutionError, match=r"Docker is not available \(.+\); project 'd' declares docker_env"
    ):
        prepare_environment(project, "local")


def test_conda_without_conda_is_a_clear_error(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("MLFLOW_CONDA_HOME", raising=False)
    project = load_project(make_project("name: c\n", conda__yaml="name: c\n"))
    with pytest.raises(ExecutionError, match="conda is not available"):
        prepare_environment(project, "conda")


def test_virtualenv_is_built_once_and_cached(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWML_ENVS_DIR", str(tmp_path / "envs"))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    project = load_project(
        make_project("name: v\n", python_env__yaml=f"python: '{version}'\ndependencies: []\n")
    )
    env = prepare_environment(project, "virtualenv")
    assert env.kind in ("uv", "virtualenv") and env.bin_dir is not None
    assert env.bin_dir.parent.parent == tmp_path / "envs"
    argv, full = env.argv("python -c 'import sys; print(sys.prefix)'", {}, project.directory)
    out = subprocess.run(argv, env=full, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == env.bin_dir.parent
    again = prepare_environment(project, "virtualenv")
    assert again.bin_dir == env.bin_dir
    assert len(list((tmp_path / "envs").iterdir())) == 1
