"""A hyper-parameter sweep on Dask, then the best model retrained, logged and registered.

``flowml.sweep`` runs each trial as a ``@flowml.task`` on a ``DaskTaskRunner`` (a LocalCluster of worker
processes by default; pass ``scheduler_address`` to use a running cluster): one child run per trial with its
params and metrics, the best trial's params and ``logloss`` on the sweep's run, which is nested in this flow's
run. Run it with ``python flows/xgboost_sweep.py`` (embedded defaults), or deploy it with
``deployments/prefect.yaml``. Trial functions reach the Dask workers pickled by value, so this file need not
be importable there."""

from __future__ import annotations

import sys
from typing import Any

import cloudpickle

import flowml
from flowml.orchestration import flow, loguniform, randint, sweep

if __name__ != "__main__":  # loaded from a deployment entrypoint: ship the trial function by value to workers
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

SPACE: dict[str, Any] = {
    "max_depth": randint(2, 6),
    "learning_rate": loguniform(0.02, 0.4),
    "subsample": [0.7, 0.85, 1.0],
}


def _data(seed: int) -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    parts: tuple[Any, Any, Any, Any] = tuple(
        train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    )  # type: ignore[assignment]
    return parts


def _model(max_depth: int, learning_rate: float, subsample: float, n_estimators: int) -> Any:
    import xgboost as xgb

    return xgb.XGBClassifier(
        max_depth=int(max_depth),
        learning_rate=learning_rate,
        subsample=subsample,
        n_estimators=n_estimators,
        n_jobs=1,
        random_state=0,
    )


def train_trial(
    max_depth: int, learning_rate: float, subsample: float, n_estimators: int = 100, seed: int = 0
) -> dict[str, float]:
    """One trial (runs on a Dask worker): fit on the train split, score on the held-out split."""
    from sklearn.metrics import accuracy_score, log_loss

    x_train, x_test, y_train, y_test = _data(seed)
    model = _model(max_depth, learning_rate, subsample, n_estimators).fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    return {"logloss": float(log_loss(y_test, proba)), "accuracy": float(accuracy_score(y_test, proba > 0.5))}


@flow(experiment="xgboost-sweep", log_prints=True)
def xgboost_sweep(
    n_trials: int = 8,
    n_workers: int = 2,
    n_estimators: int = 100,
    seed: int = 0,
    scheduler_address: str | None = None,
    model_name: str = "breast-cancer-xgb",
) -> dict[str, Any]:
    from prefect_dask import DaskTaskRunner

    runner = (
        DaskTaskRunner(address=scheduler_address)
        if scheduler_address
        else DaskTaskRunner(
            cluster_kwargs={
                "n_workers": n_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    )
    result = sweep(
        train_trial,
        SPACE,
        n_trials,
        metric="logloss",
        mode="min",
        search="random",
        seed=seed,
        task_runner=runner,
        fixed_params={"n_estimators": n_estimators, "seed": seed},
    )
    x_train, x_test, y_train, _ = _data(seed)
    best = _model(n_estimators=n_estimators, **result.best_params).fit(x_train, y_train)
    flowml.log_params({f"best.{k}": v for k, v in result.best_params.items()})
    flowml.log_metric("best_logloss", result.best_value)
    info = flowml.xgboost.log_model(best, name="model", input_example=x_test[:3])
    version = flowml.register_model(info.model_uri, model_name, tags={"sweep_run_id": result.run_id})
    print(f"best of {len(result.trials)} trials: {result.best_params} logloss={result.best_value:.4f}")  # noqa: T201 - the flow's report (log_prints=True)
    print(f"registered {model_name} v{version.version} from {info.model_uri}")  # noqa: T201 - the flow's report (log_prints=True)
    return {
        "sweep_run_id": result.run_id,
        "best_params": result.best_params,
        "best_logloss": result.best_value,
        "model_uri": info.model_uri,
        "version": version.version,
    }


if __name__ == "__main__":
    xgboost_sweep()
