"""Helpers for the gc and backup tests: a store with runs, files, models and deployments in it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

DAY_MS = 24 * 3600 * 1000


def age(
    uri: str,
    *,
    days: float,
    runs: Sequence[str] = (),
    experiments: Sequence[str] = (),
    models: Sequence[str] = (),
) -> None:
    """Pretend these were deleted ``days`` ago (sets the times gc compares)."""
    import time

    when = time.time_ns() // 1_000_000 - int(days * DAY_MS)
    engine = create_engine(uri)
    try:
        with engine.begin() as conn:
            for run_id in runs:
                conn.execute(
                    text("UPDATE runs SET deleted_time = :t WHERE run_id = :r"), {"t": when, "r": run_id}
                )
            for exp_id in experiments:
                conn.execute(
                    text("UPDATE experiments SET last_update_time = :t WHERE experiment_id = :e"),
                    {"t": when, "e": int(exp_id)},
                )
                conn.execute(
                    text("UPDATE runs SET deleted_time = :t WHERE experiment_id = :e AND deleted_time > 0"),
                    {"t": when, "e": int(exp_id)},
                )
            for model_id in models:
                conn.execute(
                    text("UPDATE logged_models SET last_updated_timestamp_ms = :t WHERE model_id = :m"),
                    {"t": when, "m": model_id},
                )
    finally:
        engine.dispose()


def snapshot(root: str) -> dict[str, str]:
    """relative path -> sha256 of every file under a local directory."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def row_count(uri: str, table: str, where: str = "1=1", **params: Any) -> int:
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one())
    finally:
        engine.dispose()


@dataclass
class Store:
    """Ids of what :func:`populate` created."""

    runs: dict[str, str] = field(default_factory=dict)
    experiments: dict[str, str] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    #: run name -> its artifact directory
    dirs: dict[str, Path] = field(default_factory=dict)


def log_files(client: Any, run_id: str, files: dict[str, str]) -> None:
    for path, content in files.items():
        client.log_text(run_id, content, path)


def populate(client: Any, uri: str) -> Store:
    """The gc scenario (see test_gc.py's module docstring)."""
    from flowml.artifacts import get_artifact_repository
    from flowml.deploy.records import records

    s = Store()
    exp_a = client.create_experiment("gc-a")
    exp_b = client.create_experiment("gc-b")
    s.experiments.update(a=exp_a, b=exp_b)

    def run(name: str, exp: str, files: dict[str, str]) -> str:
        run_id = client.create_run(exp, run_name=name).info.run_id
        log_files(client, run_id, files)
        client.log_metric(run_id, "loss", 0.5, step=1)
        client.set_terminated(run_id)
        s.runs[name] = run_id
        s.dirs[name] = Path(client.get_run(run_id).info.artifact_uri)
        return run_id

    model_files = {"model/MLmodel": "flavors: {}\n", "model/model.pkl": "weights"}
    r1 = run("registered", exp_a, {**model_files, "plots/loss.txt": "loss", "data/big.bin": "x" * 5000})
    r2 = run("plain", exp_a, {"a.txt": "a", "sub/b.txt": "b"})
    r3 = run("recent", exp_a, {"c.txt": "c"})
    run("active", exp_a, {"d.txt": "d"})
    r5 = run("deployed", exp_a, {**model_files, "notes.txt": "n"})
    run("in_deleted_exp", exp_b, {"e.txt": "e", "deep/er/f.txt": "f"})

    client.create_registered_model("m1")
    client.create_model_version("m1", f"runs:/{r1}/model", run_id=r1)
    client.create_registered_model("m2")
    client.create_model_version("m2", f"runs:/{r5}/model", run_id=r5)
    records(client).create("m2", "1", "local", status="SERVING")
    client.delete_model_version("m2", "1")  # redacted in the registry, still served

    lm = client.backend.logged_models
    for key, exp in (("lm_active_in_deleted_exp", exp_b), ("lm_registered", exp_b), ("lm_deleted", exp_a)):
        model = lm.create(exp, key, None, {}, {}, None)
        repo = get_artifact_repository(model.artifact_location)
        repo.log_bytes(b"flavors: {}\n", "MLmodel")
        repo.log_bytes(b"w" * 100, "model.bin")
        s.models[key] = model
    client.create_registered_model("m3")
    client.create_model_version("m3", s.models["lm_registered"].artifact_location)
    lm.delete(s.models["lm_deleted"].model_id)

    for run_id in (r1, r2, r3, r5):
        client.delete_run(run_id)
    client.delete_experiment(exp_b)
    age(uri, days=40, runs=[r1, r2, r5], experiments=[exp_b], models=[s.models["lm_deleted"].model_id])
    age(uri, days=1, runs=[r3])
    return s
