"""The filter / order_by grammar (``flowml.search``): MLflow 3.17's accepted and rejected inputs."""

from __future__ import annotations

import pytest

import flowml.search as search
from flowml.exceptions import InvalidParameterValue
from flowml.search import (
    Comparator,
    Comparison,
    Entity,
    Filter,
    Key,
    OrderBy,
    SearchKind,
    parse_filter,
    parse_order_by,
)

RUNS = SearchKind.RUNS


def test_public_api_is_pinned() -> None:
    assert sorted(search.__all__) == [
        "Comparator",
        "Comparison",
        "Entity",
        "Filter",
        "Key",
        "OrderBy",
        "SearchKind",
        "Value",
        "parse_filter",
        "parse_order_by",
    ]


def test_typed_tree() -> None:
    parsed = parse_filter("metrics.acc > 0.8 and params.`model type` = 'cnn' AND run_id IN ('a','b')")
    assert parsed == Filter(
        RUNS,
        (
            Comparison(Key(Entity.METRIC, "acc"), Comparator.GT, 0.8),
            Comparison(Key(Entity.PARAM, "model type"), Comparator.EQ, "cnn"),
            Comparison(Key(Entity.ATTRIBUTE, "run_id"), Comparator.IN, ("a", "b")),
        ),
    )
    assert parsed.to_string() == (
        "metrics.acc > 0.8 AND params.`model type` = 'cnn' AND run_id IN ('a', 'b')"
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("metrics.acc > 0.8", "metrics.acc > 0.8"),
        ("metric.acc>=1", "metrics.acc >= 1"),
        ("metrics.`acc` != -1.5e3", "metrics.acc != -1500.0"),
        ("metrics.x < .5", "metrics.x < 0.5"),
        ("metrics.x <= 5.", "metrics.x <= 5.0"),
        ("metrics.x = 1E5", "metrics.x = 100000.0"),
        ("metrics.x > 1e999", "metrics.x > 1e999"),
        ("metrics.x > 99999999999999999999", "metrics.x > 1e+20"),
        ("metrics.1x > 1", "metrics.1x > 1"),
        ("params.lr = '0.01'", "params.lr = '0.01'"),
        ('param.lr = "0.01"', "params.lr = '0.01'"),
        ("parameter.lr LIKE '0.%'", "params.lr LIKE '0.%'"),
        ("parameters.lr ilike '%1'", "params.lr ILIKE '%1'"),
        ("params.\"model type\" = 'cnn'", "params.`model type` = 'cnn'"),
        ("params.'x' = 'it''s'", "params.x = 'it''s'"),
        ("tags.`mlflow.runName` = 'beta'", "tags.mlflow.runName = 'beta'"),
        ("tags.mlflow.runName = 'beta'", "tags.mlflow.runName = 'beta'"),
        ("tag.`a-b c` is null", "tags.`a-b c` IS NULL"),
        ("tags.t Is Not Null", "tags.t IS NOT NULL"),
        ("attributes.status = 'FAILED'", "status = 'FAILED'"),
        ("attribute.user_id != 'x'", "user_id != 'x'"),
        ("attr.artifact_uri LIKE 's3://%'", "artifact_uri LIKE 's3://%'"),
        ("run.run_id = 'abc'", "run_id = 'abc'"),
        ("`Run name` LIKE 'G%'", "run_name LIKE 'G%'"),
        ("\"Run Name\" = 'x'", "run_name = 'x'"),
        ("attributes.`run name` = 'x'", "run_name = 'x'"),
        ("created > 1700000000000", "start_time > 1700000000000"),
        ("Created < 1.5", "start_time < 1.5"),
        ("end_time >= 0", "end_time >= 0"),
        ("`metrics`.acc > 1", "metrics.acc > 1"),
        ("run_id not in ('a', \"b\")", "run_id NOT IN ('a', 'b')"),
        ("metrics.a > 1 aNd metrics.a < 2", "metrics.a > 1 AND metrics.a < 2"),
    ],
)
def test_valid_run_filters(text: str, canonical: str) -> None:
    parsed = parse_filter(text)
    assert parsed.to_string() == canonical
    assert parse_filter(canonical) == parsed


@pytest.mark.parametrize(
    ("text", "token", "position"),
    [
        ("metrics.acc > 0.5 OR params.lr = '0.1'", "OR", 18),
        ("metrics.acc > '0.5'", "'0.5'", 14),
        ("params.lr = 0.1", "0.1", 12),
        ("params.lr > '0.01'", ">", 10),
        ("status IN ('a')", "IN", 7),
        ("start_time IS NULL", "IS NULL", 11),
        ("end_time is null", "IS NULL", 9),
        ("experiment_id = '1'", "experiment_id", 0),
        ("attributes.lifecycle_stage = 'active'", "attributes.lifecycle_stage", 0),
        ("METRICS.acc > 1", "METRICS", 0),
        ("datasets.size = 'x'", "datasets.size", 0),
        ("datasets.name > 'x'", ">", 14),
        ("datasets.context IS NULL", "IS NULL", 17),
        ("metrics.acc > 1 AND", "end of input", 19),
        ("(metrics.acc > 1)", "(", 0),
        ("NOT metrics.acc > 1", "NOT", 0),
        ("metrics.acc > 1;", ";", 15),
        ("metrics.acc", "end of input", 11),
        ("metrics.acc == 1", "==", 12),
        ("params.p <> 'a'", "<>", 9),
        ("metrics.x > 1and params.y = '2'", "1and", 12),
        ("metrics.x > 0x10", "0x10", 12),
        ("metrics.x > +5", "+", 12),
        ("metrics.my-key > 1", "-", 10),
        ("run_id IN ()", ")", 11),
        ("run_id IN ('a', 5)", "5", 16),
        ("run_id IN 'a'", "'a'", 10),
        ("run_id = ('a')", "(", 9),
        ("params.x = 'unterminated", "'unterminated", 11),
        ("tags.`a`b` = 'x'", "` = 'x'", 9),
        ("metrics. > 1", "metrics.", 7),
        ("run name = 'x'", "run", 0),
        ("tags.t IS 'x'", "'x'", 10),
        ("metrics.`` > 1", "metrics.``", 0),
    ],
)
def test_invalid_run_filters_name_token_and_position(text: str, token: str, position: int) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse_filter(text)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert token in info.value.message
    assert f"at position {position}" in info.value.message


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["metrics.acc DESC"], [OrderBy(Key(Entity.METRIC, "acc"), False)]),
        (
            ["metrics.`acc` desc", "params.lr"],
            [OrderBy(Key(Entity.METRIC, "acc"), False), OrderBy(Key(Entity.PARAM, "lr"), True)],
        ),
        (["tags.`a b` ASC"], [OrderBy(Key(Entity.TAG, "a b"), True)]),
        (['metrics."a b" DESC'], [OrderBy(Key(Entity.METRIC, "a b"), False)]),
        (["attributes.start_time ASC"], [OrderBy(Key(Entity.ATTRIBUTE, "start_time"), True)]),
        (["created"], [OrderBy(Key(Entity.ATTRIBUTE, "start_time"), True)]),
        (
            ["run_name", "`status` desc"],
            [
                OrderBy(Key(Entity.ATTRIBUTE, "run_name"), True),
                OrderBy(Key(Entity.ATTRIBUTE, "status"), False),
            ],
        ),
        (None, []),
        ([], []),
    ],
)
def test_valid_run_order_by(items: list[str] | None, expected: list[OrderBy]) -> None:
    assert list(parse_order_by(items)) == expected
    assert list(parse_order_by([o.to_string() for o in expected])) == expected


@pytest.mark.parametrize(
    ("items", "token"),
    [
        (["`Run name` DESC"], "`Run name`"),
        (["run name"], "run"),
        (["params.x foo"], "foo"),
        (["metrics.x desc asc"], "asc"),
        (["experiment_id"], "experiment_id"),
        (["metrics.a", "metrics.`a` DESC"], "metrics.a"),
        (["created", "start_time"], "start_time"),
        ([""], "empty"),
    ],
)
def test_invalid_run_order_by(items: list[str], token: str) -> None:
    with pytest.raises(InvalidParameterValue, match="position") as info:
        parse_order_by(items)
    assert token in info.value.message


@pytest.mark.parametrize(
    ("kind", "text", "canonical"),
    [
        (SearchKind.EXPERIMENTS, "name LIKE 'f%'", "name LIKE 'f%'"),
        (SearchKind.EXPERIMENTS, "attribute.experiment_id IN ('1', '2')", "experiment_id IN ('1', '2')"),
        (
            SearchKind.EXPERIMENTS,
            "creation_time > 5 and tags.t is null",
            "creation_time > 5 AND tags.t IS NULL",
        ),
        (SearchKind.EXPERIMENTS, "tag.`a b` ILIKE 'x'", "tags.`a b` ILIKE 'x'"),
        (SearchKind.REGISTERED_MODELS, "name IN ('fraud','Churn')", "name IN ('fraud', 'Churn')"),
        (SearchKind.REGISTERED_MODELS, "tags.`team name` = 'risk'", "tags.`team name` = 'risk'"),
        (
            SearchKind.MODEL_VERSIONS,
            "name = 'fraud' AND version_number >= 2",
            "name = 'fraud' AND version_number >= 2",
        ),
        (SearchKind.MODEL_VERSIONS, "version_number > '1'", "version_number > 1"),
        (SearchKind.MODEL_VERSIONS, "run_id IN ('abc','def')", "run_id IN ('abc', 'def')"),
        (SearchKind.MODEL_VERSIONS, "source_path LIKE 's3://%'", "source_path LIKE 's3://%'"),
    ],
)
def test_other_searches(kind: SearchKind, text: str, canonical: str) -> None:
    parsed = parse_filter(text, kind)
    assert parsed.to_string() == canonical
    assert parse_filter(canonical, kind) == parsed


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (SearchKind.EXPERIMENTS, "experiment_id > '1'"),
        (SearchKind.EXPERIMENTS, "experiment_id = 1"),
        (SearchKind.EXPERIMENTS, "experiment_id = 'x'"),
        (SearchKind.EXPERIMENTS, "name IN ('a')"),
        (SearchKind.EXPERIMENTS, "creation_time > 1.5"),
        (SearchKind.EXPERIMENTS, "metrics.a > 1"),
        (SearchKind.EXPERIMENTS, "attributes.name = 'x'"),
        (SearchKind.REGISTERED_MODELS, "tags.t IS NULL"),
        (SearchKind.REGISTERED_MODELS, "creation_timestamp > 1"),
        (SearchKind.MODEL_VERSIONS, "version_number IN (1, 2)"),
        (SearchKind.MODEL_VERSIONS, "current_stage = 'Production'"),
        (SearchKind.MODEL_VERSIONS, "description = 'x'"),
        (SearchKind.MODEL_VERSIONS, "source_path IN ('a')"),
        (SearchKind.MODEL_VERSIONS, "version_number = 'x1'"),
    ],
)
def test_other_searches_reject(kind: SearchKind, text: str) -> None:
    with pytest.raises(InvalidParameterValue, match="position"):
        parse_filter(text, kind)


def test_other_order_by_keys() -> None:
    assert parse_order_by(["timestamp DESC"], SearchKind.REGISTERED_MODELS) == (
        OrderBy(Key(Entity.ATTRIBUTE, "last_updated_timestamp"), False),
    )
    for bad in ["creation_timestamp", "tags.x"]:
        with pytest.raises(InvalidParameterValue):
            parse_order_by([bad], SearchKind.REGISTERED_MODELS)
    assert (
        len(parse_order_by(["name", "version_number DESC", "creation_timestamp"], SearchKind.MODEL_VERSIONS))
        == 3
    )
    assert len(parse_order_by(["last_update_time", "experiment_id"], SearchKind.EXPERIMENTS)) == 2
    with pytest.raises(InvalidParameterValue):
        parse_order_by(["metrics.m"], SearchKind.EXPERIMENTS)


@pytest.mark.parametrize("bad", [123, b"metrics.a > 1", ["x"]])
def test_non_string_input_is_invalid_parameter_value(bad: object) -> None:
    with pytest.raises(InvalidParameterValue):
        parse_filter(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue):
        parse_order_by([bad])  # type: ignore[list-item]


def test_long_garbage_is_echoed_truncated() -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse_filter("metrics.a > 1 " + "x" * 10_000)
    assert len(info.value.message) < 400


def test_dataset_clauses_parse_and_round_trip() -> None:
    """MLflow's ``datasets.name|digest|context`` run filters (context: the input's context tag)."""
    text = "datasets.name IN ('iris', 'wine') AND dataset.context = 'training' AND datasets.digest LIKE 'a%'"
    parsed = parse_filter(text)
    assert [c.key for c in parsed.clauses] == [
        Key(Entity.DATASET, "name"),
        Key(Entity.DATASET, "context"),
        Key(Entity.DATASET, "digest"),
    ]
    assert parse_filter(parsed.to_string()) == parsed
    with pytest.raises(InvalidParameterValue):
        parse_order_by(["datasets.name"])
