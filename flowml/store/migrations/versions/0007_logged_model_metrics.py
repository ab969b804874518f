"""metrics of MLflow 3 logged models (points sent with a ``model_id``) and runs' model inputs

Revision ID: 0007_logged_model_metrics
Revises: 0006_dataset_inputs
Create Date: 2026-11-23

One row per point, by model, key, step, timestamp, run, dataset (``""`` when the point names
none) and value. ``run_model_inputs`` lists the logged models a run used. The rows go with their logged model
or their run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_logged_model_metrics"
down_revision = "0006_dataset_inputs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_name", sa.String(length=500), nullable=False),
        sa.Column("dataset_digest", sa.String(length=36), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(
            "model_id",
            "key",
            "step",
            "timestamp",
            "run_id",
            "dataset_name",
            "dataset_digest",
            "value",
            "is_nan",
            name="pk_logged_model_metrics",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_logged_model_metrics_run_id", "logged_model_metrics", ["run_id"])
    op.create_table(
        "run_model_inputs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "model_id", name="pk_run_model_inputs"),
    )
    op.create_index("ix_run_model_inputs_model_id", "run_model_inputs", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_run_model_inputs_model_id", table_name="run_model_inputs")
    op.drop_table("run_model_inputs")
    op.drop_index("ix_logged_model_metrics_run_id", table_name="logged_model_metrics")
    op.drop_table("logged_model_metrics")
