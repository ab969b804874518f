"""The quickstart job: a tracked training run, end to end, on the embedded defaults.

Trains gradient-boosted regressors on scikit-learn's bundled diabetes data, logging params,
per-iteration validation metrics, a plot and the pickled model, then finds the best run with
MLflow's search grammar. Run it with ``scripts/quickstart`` (or ``python flows/quickstart.py``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import cloudpickle
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

import flowml as mlflow

logger = logging.getLogger("flowml.quickstart")


def train(learning_rate: float, max_depth: int, n_estimators: int) -> str:
    x, y = load_diabetes(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=7)
    with mlflow.start_run(run_name=f"gbr-lr{learning_rate}-d{max_depth}") as run:
        mlflow.log_params(
            {"learning_rate": learning_rate, "max_depth": max_depth, "n_estimators": n_estimators}
        )
        model = GradientBoostingRegressor(
            learning_rate=learning_rate, max_depth=max_depth, n_estimators=n_estimators, random_state=7
        ).fit(x_train, y_train)
        for step, pred in enumerate(model.staged_predict(x_val)):
            mlflow.log_metric("val_rmse", float(np.sqrt(mean_squared_error(y_val, pred))), step=step)
        rmse = float(np.sqrt(mean_squared_error(y_val, model.predict(x_val))))
        mlflow.log_metric("rmse", rmse)
        mlflow.set_tag("dataset", "sklearn.diabetes")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pkl"
            path.write_bytes(cloudpickle.dumps(model))
            mlflow.log_artifact(str(path), "model")
        mlflow.log_dict({"features": load_diabetes().feature_names}, "features.json")
        logger.info("run %s: rmse=%.2f", run.info.run_id, rmse)
        return run.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", default="quickstart-diabetes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    experiment = mlflow.set_experiment(args.experiment)
    for learning_rate, max_depth in [(0.05, 2), (0.1, 3), (0.2, 3)]:
        train(learning_rate, max_depth, n_estimators=150)

    best = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="metrics.rmse < 100 and params.n_estimators = '150'",
        order_by=["metrics.rmse ASC"],
        max_results=1,
        output_format="list",
    )[0]
    client = mlflow.FlowmlClient()
    history = client.get_metric_history(best.info.run_id, "val_rmse")
    print(f"tracking store : {mlflow.get_tracking_uri()}")  # noqa: T201 - this is the job's report
    print(f"experiment     : {experiment.name} (id {experiment.experiment_id})")  # noqa: T201
    print(f"best run       : {best.info.run_name} ({best.info.run_id})")  # noqa: T201
    print(f"  params       : {dict(best.data.params)}")  # noqa: T201
    print(f"  rmse         : {best.data.metrics['rmse']:.3f}")  # noqa: T201
    print(f"  val_rmse     : {len(history)} steps, {history[0].value:.1f} -> {history[-1].value:.1f}")  # noqa: T201
    print(f"  artifacts    : {[f.path for f in client.list_artifacts(best.info.run_id)]}")  # noqa: T201
    print(f"  artifact root: {best.info.artifact_uri}")  # noqa: T201


if __name__ == "__main__":
    main()
