"""Train a logistic regression on scikit-learn's bundled wine data; log metrics and the model to the run
the project runner started (its id arrives in the environment)."""

from __future__ import annotations

import argparse

from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
import flowml.sklearn
from flowml.models import infer_signature


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    args = parser.parse_args()
    data = load_wine(as_frame=True)
    x = data.data.rename(columns=lambda c: c.replace("/", "_"))
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=7, stratify=data.target
    )
    with flowml.start_run():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=500)).fit(
            x_train, y_train
        )
        flowml.log_metric("accuracy", float(model.score(x_test, y_test)))
        flowml.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(3),
        )


if __name__ == "__main__":
    main()
