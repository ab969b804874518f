"""Train a logistic regression on scikit-learn's bundled wine data and log it to the project's run.

Run by `flowml run` / `mlflow run` (which pass the run through FLOWML_RUN_ID / MLFLOW_RUN_ID), or directly.
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

try:
    import flowml as mlflow
except ImportError:  # an isolated env without flowml: MLflow's client against a flowml server
    import mlflow  # type: ignore[no-redef]

if "FLOWML_TRACKING_URI" not in os.environ and os.environ.get("MLFLOW_TRACKING_URI"):
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])  # launched by `mlflow run`


def load(data: str, test_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if data:
        split = np.load(data)
        return split["x_train"], split["x_test"], split["y_train"], split["y_test"]
    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=7, stratify=y)
    return x_train, x_test, y_train, y_test


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--max_iter", type=int, default=200)
    parser.add_argument("--test_size", type=float, default=0.25)
    parser.add_argument("--data", default="")
    args = parser.parse_args()
    x_train, x_test, y_train, y_test = load(args.data, args.test_size)
    with mlflow.start_run():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=args.max_iter))
        model.fit(x_train, y_train)
        pred = model.predict(x_test)
        metrics = {
            "accuracy": float(accuracy_score(y_test, pred)),
            "f1_macro": float(f1_score(y_test, pred, average="macro")),
            "log_loss": float(log_loss(y_test, model.predict_proba(x_test))),
            "n_train": float(len(y_train)),
        }
        mlflow.log_metrics(metrics)
        mlflow.set_tag("model", "LogisticRegression")
        logging.info(" ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
