"""``load_runs`` (the second half of every search page) on SQLite and PostgreSQL: exact values.

Metric values must round-trip bit for bit (SQLite's JSON and REAL-to-text keep only 15 digits),
params and tags may hold any text, and the entities built through slot descriptors must equal
the ones the dataclasses build themselves.
"""

from __future__ import annotations

import dataclasses
import math
import random
import struct
from collections.abc import Iterator

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Metric, Param, Run, RunData, RunInfo, RunTag, ViewType
from flowml.store import run_load

# Floats SQLite would print inexactly (15 digits), extremes, and ones needing all 17 digits.
_AWKWARD = [
    0.9222206645767791,
    0.1 + 0.2,
    1 / 3,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -0.0,
    123456789012345678.0,
    math.inf,
    -math.inf,
    math.nan,
]
_TEXT = ['he said "hi"\\n', "tab\there", "ünïcödé ✓ 🚀", "{}", "[1, 2]", "", "line\nbreak", "'quoted'"]


@pytest.fixture
def backend(store_uri: str, artifact_root: str) -> Iterator[SqlBackend]:
    b = SqlBackend(store_uri, artifact_root)
    yield b
    b.close()


def _random_doubles(n: int) -> list[float]:
    rng = random.Random(7)
    out: list[float] = []
    while len(out) < n:
        value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(value):
            out.append(value)
    return out


def _same(a: float, b: float) -> bool:
    """The same float (float ``==`` is exact; SQLite stores -0.0 as the integer 0, like MLflow's)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_values_round_trip_exactly(backend: SqlBackend) -> None:
    exp = backend.create_experiment("load", None, None)
    values = _AWKWARD + _random_doubles(300)
    run = backend.create_run(exp, "u", 1000, {}, "r")
    metrics = [Metric(f"m{i}", v, 1_700_000_000_000 + i, i) for i, v in enumerate(values)]
    for start in range(0, len(metrics), 100):
        backend.log_batch(run.info.run_id, metrics[start : start + 100], [], [])
    params = [Param(f"p {i}.x-y", text) for i, text in enumerate(_TEXT)]
    tags = [RunTag(f"t{i}", text) for i, text in enumerate(_TEXT)]
    backend.log_batch(run.info.run_id, [], params, tags)

    loaded = backend.search_runs([exp], None, ViewType.ALL, 10, None, None)[0]
    assert loaded == backend.get_run(run.info.run_id)
    data = loaded.data
    assert len(data.metrics) == len(values)
    for i, value in enumerate(values):
        assert _same(data.metrics[f"m{i}"], value), (i, value, data.metrics[f"m{i}"])
        point = data.latest_metrics[f"m{i}"]
        assert (point.key, point.timestamp, point.step) == (f"m{i}", 1_700_000_000_000 + i, i)
        assert _same(point.value, value)
    assert data.params == {p.key: p.value for p in params}
    assert data.tags == {"mlflow.runName": "r", "mlflow.user": "u", **{t.key: t.value for t in tags}}
    info = loaded.info
    assert (info.experiment_id, info.run_name, info.user_id, info.status, info.start_time) == (
        exp,
        "r",
        "u",
        "RUNNING",
        1000,
    )
    assert info.end_time is None and info.lifecycle_stage == "active"


def test_order_of_ids_is_kept_and_unknown_ids_are_left_out(backend: SqlBackend) -> None:
    exp = backend.create_experiment("order", None, None)
    ids = [backend.create_run(exp, "", 1000 + i, {}, f"r{i}").info.run_id for i in range(5)]
    backend.log_batch(ids[1], [Metric("m", 1.0, 1, 0)], [Param("p", "v")], [])
    wanted = [ids[3], "f" * 32, ids[1], ids[4]]
    with backend.db.read() as session:
        runs = run_load.load_runs(session, wanted)
        assert run_load.load_runs(session, []) == []
    assert [r.info.run_id for r in runs] == [ids[3], ids[1], ids[4]]
    bare, full = runs[0], runs[1]
    assert (bare.data.metrics, bare.data.params, bare.data.latest_metrics) == ({}, {}, {})
    assert bare.data.tags == {"mlflow.runName": "r3"}
    assert full.data.metrics == {"m": 1.0} and full.data.params == {"p": "v"}


def test_a_page_of_thousands_of_runs(backend: SqlBackend) -> None:
    """The ids travel as one parameter: any page size, duplicates kept in the order asked."""
    exp = backend.create_experiment("many", None, None)
    ids = [backend.create_run(exp, "", i, {}, f"r{i}").info.run_id for i in range(600)]
    page = backend.search_runs([exp], "", ViewType.ACTIVE_ONLY, 5000, None, None)
    assert [r.info.run_id for r in page] == ids[::-1]
    with backend.db.read() as session:
        runs = run_load.load_runs(session, ids * 3)
    assert [r.info.run_id for r in runs] == ids * 3
    assert [r.info.run_name for r in runs[:3]] == ["r0", "r1", "r2"]


def test_loaded_entities_equal_what_the_constructors_build(backend: SqlBackend) -> None:
    """The loader fills the frozen dataclasses' slots itself; the result must be indistinguishable."""
    assert [f.name for f in dataclasses.fields(RunInfo)] == [
        "run_id",
        "experiment_id",
        "run_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "artifact_uri",
        "lifecycle_stage",
    ]
    assert [f.name for f in dataclasses.fields(RunData)] == ["metrics", "params", "tags", "latest_metrics"]
    assert [f.name for f in dataclasses.fields(Run)] == ["info", "data", "links"]
    assert [f.name for f in dataclasses.fields(Metric)] == ["key", "value", "timestamp", "step"]
    exp = backend.create_experiment("ctor", None, None)
    run_id = backend.create_run(exp, "u", 5, {"t": "x"}, "r").info.run_id
    backend.log_batch(run_id, [Metric("m", 0.5, 7, 2)], [Param("p", "v")], [])
    backend.update_run_info(run_id, "FINISHED", 9, None)
    loaded = backend.get_run(run_id)
    info = RunInfo(run_id, exp, "r", "u", "FINISHED", 5, 9, loaded.info.artifact_uri, "active")
    data = RunData(
        {"m": 0.5},
        {"p": "v"},
        {"mlflow.runName": "r", "mlflow.user": "u", "t": "x"},  # in key order, as stored
        {"m": Metric("m", 0.5, 7, 2)},
    )
    expected = Run(info, data)
    assert loaded == expected and repr(loaded) == repr(expected)
    assert hash(loaded.info) == hash(info) and hash(loaded.data.latest_metrics["m"]) == hash(
        Metric("m", 0.5, 7, 2)
    )
    assert dataclasses.replace(loaded.info, run_name="s").run_name == "s"
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.info.run_name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.data.latest_metrics["m"].value = 1.0  # type: ignore[misc]


def test_latest_points_behave_as_the_dict_of_metrics(backend: SqlBackend) -> None:
    import copy
    import pickle

    exp = backend.create_experiment("points", None, None)
    run_id = backend.create_run(exp, "", 1, {}, "r").info.run_id
    backend.log_batch(run_id, [Metric("a", 1.5, 10, 3), Metric("b", math.nan, 11, 4)], [], [])
    points = backend.get_run(run_id).data.latest_metrics
    assert isinstance(points, run_load.LatestPoints)
    assert len(points) == 2 and "a" in points and "z" not in points and list(points) == ["a", "b"]
    expected = {"a": Metric("a", 1.5, 10, 3)}
    assert points["a"] == expected["a"] and points.get("z") is None
    b = points["b"]
    assert (b.key, b.timestamp, b.step) == ("b", 11, 4) and math.isnan(b.value)
    plain = dict(points)
    assert points == plain and plain == points and points != {"a": Metric("a", 1.5, 10, 3)}
    assert repr(points) == repr(plain)
    clones = (pickle.loads(pickle.dumps(points)), copy.deepcopy(points), copy.copy(points), points.copy())
    for clone in clones:
        assert type(clone) is dict and clone.keys() == plain.keys() and clone["a"] == plain["a"]
