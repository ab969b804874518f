"""Split scikit-learn's bundled wine data; hand the file to the next step through $FLOWML_STEP_OUTPUTS."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--test_size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_size, random_state=args.seed, stratify=y
    )
    out = Path(tempfile.mkdtemp(prefix="wine-")) / "split.npz"
    np.savez(out, x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test)
    logging.info(f"wrote {len(y_train)} train / {len(y_test)} test rows to {out}")
    if outputs := os.environ.get("FLOWML_STEP_OUTPUTS"):
        with open(outputs, "a") as fh:
            fh.write(f"data_path={out}\n")


if __name__ == "__main__":
    main()
