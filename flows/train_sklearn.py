"""A tracked Prefect pipeline: load data -> train -> evaluate -> log_model -> register.

Every step is a ``@flowml.task``; the flow run is one tracking run (params = the flow's parameters, the
``flowml.prefect.*`` tags link it to the Prefect UI). ``train`` gets its own child run; ``load_data`` and
``evaluate`` log into the flow's run. Run it on the embedded defaults with ``python flows/train_sklearn.py``
(a SQLite store and ``./flowml-artifacts`` in the current directory; Prefect's ephemeral API unless
``PREFECT_API_URL`` is set), or deploy it with ``deployments/prefect.yaml``.
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
from flowml.orchestration import flow, task

Data = tuple[Any, Any, Any, Any]


@task(log="parent", cache_policy=NO_CACHE)
def load_data(test_size: float, seed: int) -> Data:
    x, y = load_wine(return_X_y=True)
    flowml.set_tags({"dataset": "sklearn.wine", "n_rows": len(y)})
    parts: Data = tuple(train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y))  # type: ignore[assignment]
    return parts


@task(cache_policy=NO_CACHE)
def train(x_train: Any, y_train: Any, C: float, max_iter: int) -> Pipeline:  # noqa: N803 - sklearn's name
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    model.fit(x_train, y_train)
    flowml.log_metric("train_accuracy", float(model.score(x_train, y_train)))
    return model


@task(log="parent", log_outputs=True, cache_policy=NO_CACHE)
def evaluate(model: Pipeline, x_test: Any, y_test: Any) -> dict[str, float]:
    predicted = model.predict(x_test)
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }


@flow(experiment="train-sklearn", log_prints=True)
def train_sklearn(
    C: float = 1.0,  # noqa: N803
    max_iter: int = 500,
    test_size: float = 0.25,
    seed: int = 7,
    model_name: str = "wine-classifier",
) -> dict[str, Any]:
    x_train, x_test, y_train, y_test = load_data(test_size, seed)
    model = train(x_train, y_train, C, max_iter)
    metrics = evaluate(model, x_test, y_test)
    info = flowml.sklearn.log_model(model, name="model", input_example=x_test[:3])
    version = flowml.register_model(info.model_uri, model_name)
    active = flowml.active_run()
    assert active is not None
    print(f"run {active.run_id}: accuracy={metrics['accuracy']:.3f} -> {model_name} v{version.version}")  # noqa: T201 - the flow's report (log_prints=True)
    return {"run_id": active.run_id, "model_uri": info.model_uri, "version": version.version, **metrics}


if __name__ == "__main__":
    train_sklearn()
