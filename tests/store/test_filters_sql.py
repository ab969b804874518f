"""SQL semantics of run / experiment search (``flowml.store.filters``) on SQLite and PostgreSQL.

Rows are inserted directly with Core into tables made by ``metadata.create_all``; the SQLite
engine deliberately does NOT set ``case_sensitive_like``, so LIKE's case sensitivity is proven
to come from the query itself.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert
from sqlalchemy.orm import Session

from flowml.entities import ViewType
from flowml.exceptions import InvalidParameterValue
from flowml.store import filters
from flowml.store.tables import metadata

NAN = math.nan
INF = math.inf


@pytest.fixture
def engine(store_uri: str) -> Iterator[Engine]:
    eng = create_engine(store_uri)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


class Corpus:
    """Builds experiments and runs with Core inserts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = 1_000

    def experiment(
        self,
        exp_id: int,
        name: str,
        *,
        created: int = 0,
        updated: int = 0,
        stage: str = "active",
        tags: dict[str, str] | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                insert(metadata.tables["experiments"]).values(
                    experiment_id=exp_id,
                    name=name,
                    artifact_location=f"/a/{exp_id}",
                    lifecycle_stage=stage,
                    creation_time=created,
                    last_update_time=updated,
                )
            )
            for k, v in (tags or {}).items():
                conn.execute(
                    insert(metadata.tables["experiment_tags"]).values(experiment_id=exp_id, key=k, value=v)
                )
        return exp_id

    def run(
        self,
        run_id: str,
        *,
        exp: int = 1,
        start: int | None = None,
        end: int | None = None,
        name: str = "",
        status: str = "FINISHED",
        user: str = "u",
        stage: str = "active",
        metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        if start is None:
            self.clock += 1
            start = self.clock
        with self.engine.begin() as conn:
            conn.execute(
                insert(metadata.tables["runs"]).values(
                    run_id=run_id,
                    experiment_id=exp,
                    run_name=name,
                    user_id=user,
                    status=status,
                    start_time=start,
                    end_time=end,
                    artifact_uri=f"/a/{exp}/{run_id}",
                    lifecycle_stage=stage,
                )
            )
            for k, value in (metrics or {}).items():
                nan = math.isnan(value)
                conn.execute(
                    insert(metadata.tables["latest_metrics"]).values(
                        run_id=run_id, key=k, step=0, timestamp=0, value=0.0 if nan else value, is_nan=nan
                    )
                )
            for k, v in (params or {}).items():
                conn.execute(
                    insert(metadata.tables["params"]).values(
                        run_id=run_id, key=k, value=v, experiment_id=exp, start_time=start
                    )
                )
            all_tags = dict(tags or {})
            if name:
                all_tags.setdefault("mlflow.runName", name)
            for k, v in all_tags.items():
                conn.execute(insert(metadata.tables["run_tags"]).values(run_id=run_id, key=k, value=v))
        return run_id


@pytest.fixture
def corpus(engine: Engine) -> Corpus:
    c = Corpus(engine)
    c.experiment(1, "one")
    c.experiment(2, "two")
    return c


def search(
    engine: Engine,
    filter_string: str | None = None,
    *,
    order_by: Sequence[str] | None = None,
    experiment_ids: Sequence[int] = (1,),
    view: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    page_token: str | None = None,
) -> tuple[list[str], str | None]:
    with Session(engine) as session:
        return filters.search_run_ids(
            session, experiment_ids, filter_string, view, max_results, order_by, page_token
        )


def ids(engine: Engine, filter_string: str | None = None, **kw: Any) -> list[str]:
    return search(engine, filter_string, **kw)[0]


def all_pages(engine: Engine, page_size: int, **kw: Any) -> list[str]:
    out: list[str] = []
    token: str | None = None
    while True:
        page, token = search(engine, max_results=page_size, page_token=token, **kw)
        out += page
        if token is None:
            return out


# -- filters -------------------------------------------------------------------------------


def test_metric_clauses_use_latest_value_and_exclude_missing_keys(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a", metrics={"acc": 0.9, "loss": 0.3})
    corpus.run("b", metrics={"acc": 0.7, "loss": NAN})
    corpus.run("c", metrics={"loss": 1.0})
    corpus.run("d", metrics={"acc": INF})
    assert sorted(ids(engine, "metrics.acc > 0.8")) == ["a", "d"]
    assert sorted(ids(engine, "metrics.acc != 0.7")) == ["a", "d"]  # c lacks acc: excluded
    assert sorted(ids(engine, "metrics.loss != 0.3")) == ["b", "c"]  # NaN matches !=
    assert ids(engine, "metrics.loss < 1") == ["a"]  # NaN (stored as 0) never matches <
    assert ids(engine, "metrics.loss = 0") == []
    assert sorted(ids(engine, "metric.acc >= -1e999")) == ["a", "b", "d"]
    assert ids(engine, "metrics.acc > 1e308") == ["d"]


def test_param_and_tag_string_comparators(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a", params={"lr": "0.01", "model type": "cnn"}, tags={"team": "Alpha"})
    corpus.run("b", params={"lr": "0.010"}, tags={"team": "alpha"})
    corpus.run("c", params={}, tags={"other": "x"})
    assert ids(engine, "params.lr = '0.01'") == ["a"]
    assert ids(engine, "params.lr != '0.01'") == ["b"]
    assert ids(engine, "params.`model type` = 'cnn'") == ["a"]
    assert ids(engine, 'params."model type" = "cnn"') == ["a"]
    assert ids(engine, "tags.team LIKE 'a%'") == ["b"]
    assert sorted(ids(engine, "tags.team ILIKE 'A%'")) == ["a", "b"]
    assert ids(engine, "tags.team IS NULL") == ["c"]
    assert sorted(ids(engine, "params.lr IS NOT NULL")) == ["a", "b"]
    assert ids(engine, "params.lr is not null AND tags.team = 'Alpha'") == ["a"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a_c", ["a%c", "a*c", "a?c", "a[c", "a\\c", "a_c", "abc"]),
        ("_bc", ["abc"]),
        ("a%", ["a%c", "a*c", "a?c", "a[c", "a\\c", "a_c", "abc"]),
        ("a*c", ["a*c"]),
        ("a?c", ["a?c"]),
        ("a[c", ["a[c"]),
        ("a\\c", ["a\\c"]),
        ("%\\%", ["a\\c"]),
        ("A%", ["Abc-x"]),
        ("%c", ["a%c", "a*c", "a?c", "a[c", "a\\c", "a_c", "abc"]),
    ],
)
def test_like_wildcards_and_literals(
    engine: Engine, corpus: Corpus, pattern: str, expected: list[str]
) -> None:
    for value in ["abc", "a_c", "a%c", "a*c", "a?c", "a[c", "a\\c", "Abc-x"]:
        corpus.run(value, tags={"t": value})
    literal = pattern.replace("'", "''")
    assert sorted(ids(engine, f"tags.t LIKE '{literal}'")) == sorted(expected)


def test_ilike_folds_ascii_only(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a", tags={"t": "ÄBC"})
    corpus.run("b", tags={"t": "äbc"})
    corpus.run("c", tags={"t": "XYZ"})
    assert ids(engine, "tags.t ILIKE 'xy%'") == ["c"]
    assert ids(engine, "tags.t ILIKE 'Äbc'") == ["a"]
    assert ids(engine, "tags.t = 'äbc'") == ["b"]


def test_attribute_clauses(engine: Engine, corpus: Corpus) -> None:
    corpus.run("r1", name="Gamma run", status="FAILED", start=100, end=200, user="ann")
    corpus.run("r2", name="alpha", status="FINISHED", start=300, end=None, user="bob")
    corpus.run("r3", name="Gold", status="RUNNING", start=500, end=600, user="ann")
    assert ids(engine, "attributes.status = 'FAILED'") == ["r1"]
    assert sorted(ids(engine, "`Run name` LIKE 'G%'")) == ["r1", "r3"]
    assert ids(engine, "run_name ILIKE '%A'") == ["r2"]
    assert ids(engine, "attributes.run_name = 'Gamma run'") == ["r1"]
    assert sorted(ids(engine, "run_id IN ('r1', 'r3', 'zz')")) == ["r1", "r3"]
    assert ids(engine, "attr.run_id NOT IN ('r1', 'r3')") == ["r2"]
    assert ids(engine, "created > 300") == ["r3"]
    assert ids(engine, "start_time >= 300 AND user_id = 'ann'") == ["r3"]
    assert ids(engine, "end_time != 200") == ["r3"]  # NULL end_time never matches
    assert ids(engine, "end_time < 1e30 AND end_time > 150.5") == ["r3", "r1"]
    assert ids(engine, "artifact_uri LIKE '%/r2'") == ["r2"]


def test_view_type_and_experiments(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a", exp=1)
    corpus.run("b", exp=1, stage="deleted")
    corpus.run("c", exp=2)
    assert ids(engine) == ["a"]
    assert ids(engine, view=ViewType.DELETED_ONLY) == ["b"]
    assert ids(engine, view=ViewType.ALL) == ["b", "a"]
    assert ids(engine, experiment_ids=[1, 2]) == ["c", "a"]
    assert ids(engine, experiment_ids=[]) == []


# -- ordering ------------------------------------------------------------------------------


def test_metric_order_real_then_nan_then_missing(engine: Engine, corpus: Corpus) -> None:
    corpus.run("nan", metrics={"m": NAN})
    corpus.run("lo", metrics={"m": -INF})
    corpus.run("missing", metrics={"x": 1.0})
    corpus.run("hi", metrics={"m": 5.0})
    corpus.run("mid", metrics={"m": 0.0})
    assert ids(engine, order_by=["metrics.m DESC"]) == ["hi", "mid", "lo", "nan", "missing"]
    assert ids(engine, order_by=["metrics.m"]) == ["lo", "mid", "hi", "nan", "missing"]


def test_param_order_missing_last_and_ties_by_start_time_then_run_id(engine: Engine, corpus: Corpus) -> None:
    corpus.run("b", start=10, params={"p": "x"})
    corpus.run("a", start=10, params={"p": "x"})
    corpus.run("c", start=20, params={"p": "x"})
    corpus.run("n", start=30)
    corpus.run("z", start=5, params={"p": "B"})
    corpus.run("y", start=5, params={"p": "a"})
    assert ids(engine, order_by=["params.p ASC"]) == ["z", "y", "c", "a", "b", "n"]
    assert ids(engine, order_by=["params.p DESC"]) == ["c", "a", "b", "y", "z", "n"]
    assert ids(engine) == ["n", "c", "a", "b", "y", "z"]
    assert ids(engine, order_by=["start_time ASC"]) == ["y", "z", "a", "b", "c", "n"]
    assert ids(engine, order_by=["run_id DESC"]) == ["z", "y", "n", "c", "b", "a"]


def test_order_by_nullable_end_time_and_names(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a", end=None, name="beta")
    corpus.run("b", end=5, name="Alpha")
    corpus.run("c", end=3, name="alpha")
    assert ids(engine, order_by=["end_time"]) == ["c", "b", "a"]  # NULL last either way
    assert ids(engine, order_by=["end_time DESC"]) == ["b", "c", "a"]
    assert ids(engine, order_by=["attributes.run_name"]) == ["b", "c", "a"]  # bytewise


# -- paging --------------------------------------------------------------------------------


def _paging_corpus(corpus: Corpus) -> None:
    for i in range(23):
        metrics = {"m": [1.0, NAN, 2.0, -INF][i % 4]} if i % 5 else {}
        corpus.run(
            f"r{i:02d}", start=100 + i // 3, metrics=metrics, params={"p": str(i % 3)} if i % 2 else {}
        )


@pytest.mark.parametrize(
    "order_by", [None, ["metrics.m DESC"], ["params.p", "metrics.m"], ["end_time", "run_name DESC"]]
)
def test_pages_concatenate_to_the_full_result(
    engine: Engine, corpus: Corpus, order_by: list[str] | None
) -> None:
    _paging_corpus(corpus)
    full = ids(engine, order_by=order_by)
    assert len(full) == 23
    for size in (1, 4, 23, 50):
        assert all_pages(engine, size, order_by=order_by) == full


def test_pages_stay_exact_while_runs_are_inserted(engine: Engine, corpus: Corpus) -> None:
    _paging_corpus(corpus)
    before = ids(engine, order_by=["metrics.m DESC"])
    seen: list[str] = []
    token: str | None = None
    n = 0
    while True:
        page, token = search(engine, order_by=["metrics.m DESC"], max_results=3, page_token=token)
        seen += page
        if token is None:
            break
        n += 1  # new runs land before, among and after the rows already returned
        corpus.run(f"new{n}", start=50 + n, metrics={"m": [9.0, 1.0, NAN][n % 3]})
    old = [r for r in seen if not r.startswith("new")]
    assert old == before
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("view", list(ViewType))
@pytest.mark.parametrize("order_by", [None, ["start_time DESC"], ["attributes.start_time DESC", "run_id"]])
def test_param_equality_driven_search_matches_the_runs_walk(
    engine: Engine, corpus: Corpus, view: ViewType, order_by: list[str] | None
) -> None:
    """``params.k = 'v'`` in the default order is read from the params index (one experiment);
    ``LIKE`` without wildcards is the same filter answered by walking the runs: same pages."""
    _paging_corpus(corpus)
    corpus.run("gone", start=105, params={"p": "1"}, stage="deleted")
    corpus.run("other", exp=2, start=104, params={"p": "1"})
    corpus.run("r-m", start=104, params={"p": "1", "q": "x"}, metrics={"m": 3.0})
    for flt in [
        "params.p = '1'",
        "params.p = '1' and metrics.m > 0",
        "params.p = '1' and params.q = 'x'",
        "params.p = '1' and params.p = '2'",
        "params.p = '1' and run_name != 'zz'",
        "params.p = 'never'",
    ]:
        walked = flt.replace("params.p = '1'", "params.p LIKE '1'").replace("= 'never'", "LIKE 'never'")
        expected = ids(engine, walked, order_by=order_by, view=view)
        assert ids(engine, flt, order_by=order_by, view=view) == expected, flt
        for size in (1, 4):
            assert all_pages(engine, size, filter_string=flt, order_by=order_by, view=view) == expected
    both = ids(engine, "params.p = '1'", experiment_ids=(1, 2), view=view)
    assert both == ids(engine, "params.p LIKE '1'", experiment_ids=(1, 2), view=view)
    assert ("other" in both) is (view is not ViewType.DELETED_ONLY)


def test_param_driven_pages_stay_exact_while_runs_are_inserted(engine: Engine, corpus: Corpus) -> None:
    _paging_corpus(corpus)
    before = ids(engine, "params.p = '1'")
    seen: list[str] = []
    token: str | None = None
    n = 0
    while True:
        page, token = search(engine, "params.p = '1'", max_results=2, page_token=token)
        seen += page
        if token is None:
            break
        n += 1  # new matching runs land before, among and after the rows already returned
        corpus.run(f"new{n}", start=[90, 104, 200][n % 3], params={"p": "1"})
    assert [r for r in seen if not r.startswith("new")] == before
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("flt", "order_by"),
    [
        ("params.p = '1'", None),
        ("metrics.m > 0", None),
        (None, ["metrics.m DESC"]),
        (None, ["metrics.m", "params.p DESC"]),
        ("run_id IN ('r01', 'r02')", ["metrics.m"]),
        (None, ["params.p", "end_time"]),
    ],
)
def test_page_rows_carry_the_runs_columns(
    engine: Engine, corpus: Corpus, flt: str | None, order_by: list[str] | None
) -> None:
    """``search_run_page`` (what ``search_runs`` loads from) = ``search_run_ids`` + each run's row."""
    from sqlalchemy import select

    _paging_corpus(corpus)
    runs = metadata.tables["runs"]
    with Session(engine) as session:
        stored = {
            r[0]: tuple(r)
            for r in session.execute(
                select(runs.c.run_id, *(runs.c[name] for name in filters.RUN_INFO_COLUMNS))
            )
        }
        token: str | None = None
        while True:
            rows, page_token = filters.search_run_page(
                session, [1], flt, ViewType.ACTIVE_ONLY, 4, order_by, token
            )
            assert ([r[0] for r in rows], page_token) == filters.search_run_ids(
                session, [1], flt, ViewType.ACTIVE_ONLY, 4, order_by, token
            )
            for row in rows:
                assert tuple(row[: 1 + len(filters.RUN_INFO_COLUMNS)]) == stored[row[0]]
            if page_token is None:
                break
            token = page_token


def test_bad_page_tokens(engine: Engine, corpus: Corpus) -> None:
    _paging_corpus(corpus)
    _, token = search(engine, max_results=2)
    assert token is not None
    with pytest.raises(InvalidParameterValue, match="different search"):
        search(engine, "metrics.m > 0", max_results=2, page_token=token)
    payload = json.loads(base64.urlsafe_b64decode(token))
    for bad in [
        "!!!",
        "bm90IGpzb24=",
        base64.b64encode(b"[1,2]").decode(),
        "é",
        base64.urlsafe_b64encode(json.dumps({**payload, "k": ["x"] * 3}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({**payload, "k": [True, 1, "a"]}).encode()).decode(),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
    ]:
        with pytest.raises(InvalidParameterValue):
            search(engine, max_results=2, page_token=bad)


@pytest.mark.parametrize("max_results", [0, -1, 50_001, True])
def test_max_results_bounds(engine: Engine, max_results: int) -> None:
    with pytest.raises(InvalidParameterValue):
        search(engine, max_results=max_results)
    with pytest.raises(InvalidParameterValue), Session(engine) as session:
        filters.search_experiment_ids(session, ViewType.ALL, max_results, None, None, None)


def test_repeated_searches_see_new_runs(engine: Engine, corpus: Corpus) -> None:
    """The statement of a repeated search is reused; its rows never are."""
    corpus.run("a", params={"p": "1"}, metrics={"m": 1.0})
    for flt in ["params.p = '1'", "metrics.m > 0", None]:
        assert ids(engine, flt, max_results=1) == ["a"]
    corpus.run("b", params={"p": "1"}, metrics={"m": 2.0})
    for flt in ["params.p = '1'", "metrics.m > 0", None]:
        assert ids(engine, flt, max_results=1) == ["b"]
        assert ids(engine, flt, max_results=1, view=ViewType.DELETED_ONLY) == []
    with pytest.raises(InvalidParameterValue):  # True == 1 as a dict key, not as max_results
        search(engine, max_results=True)


def test_max_results_upper_bound_is_allowed(engine: Engine, corpus: Corpus) -> None:
    corpus.run("a")
    assert search(engine, max_results=50_000) == (["a"], None)


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc > '0.5'",
        "params.lr = 0.1",
        "params.lr > '1'",
        "status IN ('a')",
        "metrics.a > 1 OR params.b = 'c'",
        "experiment_id = '1'",
        "end_time IS NULL",
    ],
)
def test_bad_filters_are_invalid_parameter_value(engine: Engine, bad: str) -> None:
    with pytest.raises(InvalidParameterValue, match="position"):
        search(engine, bad)


# -- experiments ---------------------------------------------------------------------------


def _experiments(
    engine: Engine,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    view: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    page_token: str | None = None,
) -> tuple[list[int], str | None]:
    with Session(engine) as session:
        return filters.search_experiment_ids(session, view, max_results, filter_string, order_by, page_token)


def test_experiment_search(engine: Engine) -> None:
    c = Corpus(engine)
    c.experiment(0, "Default", created=10, updated=10)
    c.experiment(1, "fraud", created=30, updated=40, tags={"team": "risk"})
    c.experiment(2, "Fraud-2", created=30, updated=50, tags={"team": "growth"})
    c.experiment(3, "churn", created=20, updated=60, stage="deleted")
    c.experiment(4, "ads", created=50, updated=70)
    assert _experiments(engine)[0] == [4, 1, 2, 0]
    assert _experiments(engine, view=ViewType.ALL)[0] == [4, 1, 2, 3, 0]
    assert _experiments(engine, "name LIKE 'f%'")[0] == [1]
    assert _experiments(engine, "name ILIKE 'f%'")[0] == [1, 2]
    assert _experiments(engine, "experiment_id IN ('0', '2')")[0] == [2, 0]
    assert _experiments(engine, "experiment_id != '2' AND creation_time >= 30")[0] == [4, 1]
    assert _experiments(engine, "tags.team IS NULL")[0] == [4, 0]
    assert _experiments(engine, "tags.team = 'risk'")[0] == [1]
    assert _experiments(engine, order_by=["name"])[0] == [0, 2, 4, 1]
    assert _experiments(engine, order_by=["creation_time"])[0] == [0, 2, 1, 4]  # tie: id DESC
    page, token = _experiments(engine, max_results=3)
    assert page == [4, 1, 2]
    assert _experiments(engine, max_results=3, page_token=token) == ([0], None)
    with pytest.raises(InvalidParameterValue):
        _experiments(engine, "creation_time > 1.5")


# -- differential: the same corpus and queries through MLflow itself -----------------------


def _mlflow_corpus(tmp_dir: str, seed: int) -> tuple[Any, int]:
    """A seeded MLflow store: missing keys, NaN/±inf, keys with spaces, ties, deleted and nested runs."""
    import random

    mlflow_client = pytest.importorskip("mlflow.tracking").MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    rng = random.Random(seed)
    client = mlflow_client(tracking_uri=f"sqlite:///{tmp_dir}/mlflow.db")
    exp = int(client.create_experiment("diff"))
    run_ids: list[str] = []
    for i in range(120):
        run = client.create_run(
            str(exp),
            start_time=1000 + rng.randrange(40),
            run_name=rng.choice(["alpha", "Alpha", "beta", "gamma run", f"r{i}"]),
        )
        rid = run.info.run_id
        metrics = [
            Metric(
                k,
                rng.choice([0.1, 0.5, 0.5, 0.9, -3.0, NAN, INF, -INF, 2.0]),
                rng.randrange(5),
                rng.randrange(3),
            )
            for k in ("m1", "m 2")
            if rng.random() < 0.8
        ]
        params = [
            Param(k, rng.choice(["a", "A", "b", "0.01", "0.010", "a_b", "%x"]))
            for k in ("p1", "p x")
            if rng.random() < 0.7
        ]
        tags = [
            RunTag(k, rng.choice(["x", "X", "yes", "no", "x%y"]))
            for k in ("t1", "team.name")
            if rng.random() < 0.6
        ]
        if run_ids and rng.random() < 0.2:
            tags.append(RunTag("mlflow.parentRunId", rng.choice(run_ids)))
        client.log_batch(rid, metrics=metrics, params=params, tags=tags)
        if rng.random() < 0.6:  # one dataset input (MLflow joins, so several could repeat a run)
            dataset = Dataset(
                rng.choice(["iris", "Iris", "wine", "wine quality"]),
                rng.choice(["d1", "d2", "ab%"]),
                "local",
                "s",
            )
            context = rng.choice(["training", "Training", "eval", None])
            input_tags = [InputTag("mlflow.data.context", context)] if context else []
            client.log_inputs(rid, [DatasetInput(dataset, input_tags)])
        if rng.random() < 0.5:
            client.set_terminated(rid, rng.choice(["FINISHED", "FAILED"]), end_time=2000 + rng.randrange(10))
        if rng.random() < 0.1:
            client.delete_run(rid)
        run_ids.append(rid)
    return client, exp


def _copy_mlflow_db(path: str, engine: Engine) -> None:
    import sqlite3

    src = sqlite3.connect(path)
    t = metadata.tables
    with engine.begin() as conn:
        for exp_id, name, stage, ctime, utime in src.execute(
            "SELECT experiment_id, name, lifecycle_stage, creation_time, last_update_time FROM experiments"
        ):
            conn.execute(
                insert(t["experiments"]).values(
                    experiment_id=exp_id,
                    name=name,
                    artifact_location="x",
                    lifecycle_stage=stage,
                    creation_time=ctime or 0,
                    last_update_time=utime or 0,
                )
            )
        cols = (
            "run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
            "artifact_uri, lifecycle_stage"
        )
        for row in src.execute(f"SELECT {cols} FROM runs"):
            conn.execute(
                insert(t["runs"]).values(
                    dict(
                        zip(
                            [
                                "run_id",
                                "experiment_id",
                                "run_name",
                                "user_id",
                                "status",
                                "start_time",
                                "end_time",
                                "artifact_uri",
                                "lifecycle_stage",
                            ],
                            row,
                            strict=True,
                        )
                    )
                )
            )
        rows = [
            {"run_id": r, "key": k, "value": v, "experiment_id": e, "start_time": s}
            for r, k, v, e, s in src.execute(
                "SELECT p.run_uuid, p.key, p.value, r.experiment_id, r.start_time "
                "FROM params p JOIN runs r ON r.run_uuid = p.run_uuid"
            )
        ]
        conn.execute(insert(t["params"]), rows)
        rows = [
            {"run_id": r, "key": k, "value": v}
            for r, k, v in src.execute("SELECT run_uuid, key, value FROM tags")
        ]
        conn.execute(insert(t["run_tags"]), rows)
        rows = [
            {"run_id": r, "key": k, "value": v, "step": s, "timestamp": ts, "is_nan": bool(n)}
            for r, k, v, s, ts, n in src.execute(
                "SELECT run_uuid, key, value, step, timestamp, is_nan FROM latest_metrics"
            )
        ]
        conn.execute(insert(t["latest_metrics"]), rows)
        conn.execute(
            insert(t["datasets"]),
            [
                {"dataset_id": d, "experiment_id": e, "name": n, "digest": g, "source_type": st, "source": so}
                for d, e, n, g, st, so in src.execute(
                    "SELECT dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source "
                    "FROM datasets"
                )
            ],
        )
        input_tags: dict[str, dict[str, str]] = {}
        for input_id, name, value in src.execute("SELECT input_uuid, name, value FROM input_tags"):
            input_tags.setdefault(input_id, {})[name] = value
        conn.execute(
            insert(t["run_dataset_inputs"]),
            [
                {"run_id": r, "dataset_id": d, "tags": json.dumps(input_tags.get(i, {}))}
                for i, d, r in src.execute(
                    "SELECT input_uuid, source_id, destination_id FROM inputs "
                    "WHERE source_type = 'DATASET' AND destination_type = 'RUN'"
                )
            ],
        )
    src.close()


def _random_queries(seed: int, n: int) -> list[tuple[str, list[str]]]:
    import random

    rng = random.Random(seed)
    clauses = [
        "metrics.m1 > 0.4",
        "metrics.m1 != 0.5",
        "metrics.`m 2` <= 0.5",
        "metrics.m1 = 0.5",
        "metrics.`m 2` >= -1e999",
        "metrics.m1 < 1e300",
        "metric.m1 != -3",
        "params.p1 = 'a'",
        "params.p1 != 'a'",
        "params.p1 LIKE 'a%'",
        "params.p1 ILIKE 'a%'",
        "params.`p x` = '0.01'",
        "params.p1 IS NULL",
        "params.`p x` IS NOT NULL",
        "params.p1 LIKE '%\\_%'",
        "params.p1 LIKE '\\%%'",
        "tags.t1 = 'x'",
        "tags.t1 ILIKE 'X'",
        "tags.`team.name` LIKE '%y%'",
        "tags.t1 IS NULL",
        "tags.`mlflow.parentRunId` IS NOT NULL",
        "attributes.status = 'FAILED'",
        "status != 'RUNNING'",
        "`Run name` LIKE 'a%'",
        "run_name ILIKE 'A%'",
        "attributes.run_name = 'gamma run'",
        "start_time > 1020",
        "created <= 1010",
        "end_time > 2004",
        "end_time != 2003",
        "attr.start_time = 1005",
        "datasets.name = 'iris'",
        "datasets.name != 'iris'",
        "datasets.name ILIKE 'IRIS'",
        "datasets.name NOT IN ('wine')",
        "datasets.digest LIKE 'd%'",
        "datasets.digest IN ('d1', 'ab%')",
        "datasets.context = 'training'",
        "datasets.context != 'eval'",
        "dataset.context LIKE 'T%'",
    ]
    orders = [
        "metrics.m1 DESC",
        "metrics.m1",
        "metrics.`m 2` ASC",
        "params.p1",
        "params.`p x` DESC",
        "tags.t1 DESC",
        "tags.t1",
        "start_time ASC",
        "end_time",
        "end_time DESC",
        "run_name",
        "status DESC",
        "created",
    ]
    queries: list[tuple[str, list[str]]] = []
    for _ in range(n):
        flt = " AND ".join(rng.sample(clauses, rng.choice([0, 1, 1, 2, 3])))
        chosen = rng.sample(orders, rng.choice([0, 1, 1, 2, 3]))
        keys = {o.split()[0].replace("created", "start_time") for o in chosen}
        if len(keys) == len(chosen):
            queries.append((flt, chosen))
    return queries


@dataclass
class MlflowReference:
    db_path: str
    experiment_id: int
    #: (filter, order_by, view, run ids MLflow returned) per random query
    answers: list[tuple[str, list[str], ViewType, list[str]]]


@pytest.fixture(scope="module")
def mlflow_reference(tmp_path_factory: pytest.TempPathFactory) -> MlflowReference:
    """MLflow's own answers, computed once for both flowml databases (MLflow's search is the slow part)."""
    tmp = tmp_path_factory.mktemp("mlflow-reference")
    client, exp = _mlflow_corpus(str(tmp), seed=17)
    answers = []
    for i, (flt, order_by) in enumerate(_random_queries(seed=5, n=250)):
        view = [ViewType.ACTIVE_ONLY, ViewType.ALL, ViewType.DELETED_ONLY][i % 3]
        found = client.search_runs(
            [str(exp)], flt, run_view_type=int(view), max_results=1000, order_by=order_by
        )
        answers.append((flt, order_by, view, [r.info.run_id for r in found]))
    return MlflowReference(str(tmp / "mlflow.db"), exp, answers)


def test_same_results_as_mlflow(engine: Engine, mlflow_reference: MlflowReference) -> None:
    _copy_mlflow_db(mlflow_reference.db_path, engine)
    exp = mlflow_reference.experiment_id
    checked = 0
    for i, (flt, order_by, view, expected) in enumerate(mlflow_reference.answers):
        got = ids(engine, flt, order_by=order_by, experiment_ids=[exp], view=view)
        assert got == expected, (flt, order_by, view)
        if i % 10 == 0:  # and paging reproduces the same sequence
            assert (
                all_pages(engine, 7, filter_string=flt, order_by=order_by, experiment_ids=[exp], view=view)
                == expected
            )
        checked += 1
    assert checked > 200
