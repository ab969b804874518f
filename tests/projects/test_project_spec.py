"""MLproject parsing and parameter handling: MLflow's format, flowml's stricter checks. No Prefect needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowml.projects.spec import ProjectSpecError, load_project
from tests.projects.conftest import WINE, MakeProject

SEED = """
    name: my_project

    conda_env: conda.yaml

    entry_points:
      main:
        parameters:
          learning_rate: float
          batch_size: int
        command: "python train.py --learning_rate {learning_rate} --batch_size {batch_size}"
"""


def test_seed_project_parses_with_typed_parameters(make_project: MakeProject) -> None:
    project = load_project(make_project(SEED, conda__yaml="name: x\n"))
    assert project.name == "my_project"
    assert project.conda_env == Path("conda.yaml")
    main = project.get_entry_point("main")
    assert {n: p.type for n, p in main.parameters.items()} == {"learning_rate": "float", "batch_size": "int"}
    declared, extra = main.resolve({"learning_rate": "0.01", "batch_size": "32"}, project.directory)
    assert declared == {"learning_rate": 0.01, "batch_size": 32}
    assert main.render(declared, extra) == "python train.py --learning_rate 0.01 --batch_size 32"


def test_mlproject_file_name_is_case_insensitive(make_project: MakeProject) -> None:
    root = make_project(None)
    (root / "mlproject").write_text("name: lower\nentry_points: {main: {command: 'true'}}\n")
    assert load_project(root).name == "lower"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"learning_rate": "abc", "batch_size": "1"}, "parameter 'learning_rate' expects a float, got 'abc'"),
        ({"learning_rate": "0.1", "batch_size": "3.5"}, "parameter 'batch_size' expects an int, got '3.5'"),
        ({"learning_rate": "0.1", "batch_size": True}, "parameter 'batch_size' expects an int"),
        ({"learning_rate": "0.1"}, "No value given for missing parameters: 'batch_size'"),
    ],
)
def test_int_and_float_are_validated_before_anything_runs(
    make_project: MakeProject, values: dict[str, object], message: str
) -> None:
    project = load_project(make_project(SEED, conda__yaml="name: x\n"))
    with pytest.raises(ProjectSpecError, match=message):
        project.get_entry_point("main").resolve(values, project.directory)


def test_values_are_shell_quoted_and_extras_appended(make_project: MakeProject) -> None:
    project = load_project(
        make_project(
            """
            name: q
            entry_points:
              main:
                parameters: {msg: string, n: {type: int, default: 2}}
                command: "echo {msg} {n}"
            """
        )
    )
    main = project.get_entry_point("main")
    declared, extra = main.resolve(
        {"msg": "a b; rm -rf /", "extra key": "v w", "alpha": 1}, project.directory
    )
    assert main.render(declared, extra) == "echo 'a b; rm -rf /' 2 --'extra key' 'v w' --alpha 1"


def test_path_made_absolute_and_must_exist_uri_needs_scheme(
    make_project: MakeProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        """
        name: p
        entry_points:
          main:
            parameters:
              data: {type: path, default: data.csv}
              out: uri
            command: "cat {data}"
        """,
        data__csv="x\n",
    )
    project = load_project(root)
    main = project.get_entry_point("main")
    declared, _ = main.resolve({"out": "s3://bucket/key"}, root)
    assert declared["data"] == str(root / "data.csv")  # a default resolves against the project
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.csv").write_text("y\n")
    declared, _ = main.resolve({"out": "file:///tmp/x", "data": "mine.csv"}, root)
    assert declared["data"] == str(tmp_path / "mine.csv")  # a user value against the caller's directory
    assert main.resolve({"out": "s3://b/k", "data": "s3://b/data.csv"}, root)[0]["data"] == "s3://b/data.csv"
    with pytest.raises(ProjectSpecError, match="no such file or directory"):
        main.resolve({"out": "s3://b/k", "data": "missing.csv"}, root)
    with pytest.raises(ProjectSpecError, match="Expected URI for parameter 'out' but got 'relative/path'"):
        main.resolve({"out": "relative/path"}, root)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nentry_points: {main: {parameters: {a: flaot}, command: c}}",
            r"entry_points\.main\.parameters\.a\.type: Input should be 'string', 'float', 'int', "
            r"'path' or 'uri'",
        ),
        (
            "name: x\nentry_points: {main: {parameters: {a: {type: int, default: abc}}, command: c}}",
            r"entry_points\.main\.parameters\.a: parameter 'a' expects an int, got 'abc'",
        ),
        ("name: x\nentry_points: {main: {parameters: {}}}", r"entry_points\.main\.command: Field required"),
        (
            "name: x\npython_env: p.yaml\nconda_env: c.yaml\nentry_points: {}",
            "only one of python_env, conda_env, docker_env may be set",
        ),
        ("name: x\npython_env: nope.yaml\nentry_points: {}", "python_env: file 'nope.yaml' not found"),
        ("name: x\ndocker_env: {volumes: [a]}\nentry_points: {}", r"docker_env\.image: Field required"),
        ("name: x\ndocker_env: {image: i, volumes: a}\nentry_points: {}", r"docker_env\.volumes"),
        ("name: x\nentrypoints: {}", "entrypoints: Extra inputs are not permitted"),
        ("- a list", "expected a mapping at the top level"),
        ("name: [unclosed", "invalid YAML"),
    ],
)
def test_invalid_files_name_the_field(make_project: MakeProject, text: str, message: str) -> None:
    root = make_project(None)
    (root / "MLproject").write_text(text)
    with pytest.raises(ProjectSpecError, match=message):
        load_project(root)


def test_environment_defaults_follow_mlflow(make_project: MakeProject) -> None:
    assert load_project(make_project("name: a\n", python_env__yaml="python: '3.11'\n")).python_env == Path(
        "python_env.yaml"
    )
    assert load_project(make_project("name: b\n", conda__yaml="name: c\n")).conda_env == Path("conda.yaml")
    docker = load_project(make_project("name: d\ndocker_env: {image: 'img:1', environment: [A, [B, '2']]}\n"))
    assert docker.docker_env is not None
    assert docker.docker_env.environment == ["A", ("B", "2")]
    assert docker.env_kind() == "docker"


def test_directory_without_mlproject_runs_py_and_sh_files(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/bin/bash")
    project = load_project(make_project(None, name="bare", train__py="print(1)\n", go__sh="echo hi\n"))
    assert project.name == "bare" and not project.has_mlproject
    assert project.get_entry_point("train.py").command == "python train.py"
    assert project.get_entry_point("go.sh").command == "/bin/bash go.sh"
    declared, extra = project.get_entry_point("train.py").resolve({"alpha": "0.1"}, project.directory)
    assert project.get_entry_point("train.py").render(declared, extra) == "python train.py --alpha 0.1"
    with pytest.raises(ProjectSpecError, match="Could not find entry point 'main'"):
        project.get_entry_point("main")
    with pytest.raises(ProjectSpecError, match=r"Could not find entry point 'notes\.txt'"):
        project.get_entry_point("notes.txt")


STEPS = """
    name: dag
    entry_points:
      prep: {parameters: {n: int}, command: "echo {n}"}
      fit: {parameters: {data: string, lr: {type: float, default: 0.1}}, command: "echo {data} {lr}"}
    flowml:
      parameters: {n: {type: int, default: 3}, lr: float}
      steps:
        prep: {parameters: {n: "{n}"}}
        fit:
          depends_on: [prep]
          parameters: {data: "{steps.prep.outputs.path}"}
"""


def test_flowml_steps_section(make_project: MakeProject) -> None:
    project = load_project(make_project(STEPS))
    assert project.pipeline is not None
    assert project.pipeline.order() == ["prep", "fit"]
    assert project.is_pipeline("pipeline") and project.is_pipeline("main")  # no `main` entry point
    assert set(project.parameters_for("pipeline")) == {"n", "lr"}
    fit = project.pipeline.steps["fit"]
    assert fit.entry_point == "fit"
    rendered = fit.render_parameters({"n": 3}, {"prep": {"run_id": "r1", "outputs": {"path": "/d"}}})
    assert rendered == {"data": "/d"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("a: {entry_point: nope}", r"flowml\.steps\.a\.entry_point: unknown entry point 'nope'"),
        ("a: {entry_point: e, depends_on: [b]}", r"flowml\.steps\.a\.depends_on: unknown step 'b'"),
        (
            "a: {entry_point: e, depends_on: [b]}\n    b: {entry_point: e, depends_on: [a]}",
            "dependency cycle",
        ),
        ("a: {entry_point: e, parameters: {x: '{nope}'}}", r"\{nope\} is not a flowml\.parameters entry"),
        (
            "a: {entry_point: e, parameters: {x: '{steps.b.run_id}'}}\n    b: {entry_point: e}",
            r"flowml\.steps\.a\.parameters\.x: \{steps\.b\.run_id\} must name a step this one depends on",
        ),
        (
            "a: {entry_point: e, depends_on: [b], parameters: {x: '{steps.b.what}'}}\n    b: "
            "{entry_point: e}",
            r"use \{steps\.NAME\.run_id\}",
        ),
        ("a: {entry_point: e, after: [b]}", r"flowml\.steps\.a\.after: Extra inputs are not permitted"),
    ],
)
def test_invalid_steps_name_the_field(make_project: MakeProject, steps: str, message: str) -> None:
    text = f"name: x\nentry_points: {{e: {{command: 'true'}}}}\nflowml:\n  steps:\n    {steps}\n"
    root = make_project(None)
    (root / "MLproject").write_text(text)
    with pytest.raises(ProjectSpecError, match=message):
        load_project(root)


def test_example_project_is_valid() -> None:
    project = load_project(WINE)
    assert project.name == "wine_quality"
    assert set(project.entry_points) == {"main", "prepare"}
    assert project.pipeline is not None and project.pipeline.order() == ["prepare", "train"]
