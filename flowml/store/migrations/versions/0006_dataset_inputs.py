"""datasets and the runs that used them (MLflow's ``log-inputs``)

Revision ID: 0006_dataset_inputs
Revises: 0005_metrics_without_run_fk
Create Date: 2026-11-23

``datasets`` holds one row per experiment, name and digest; ``run_dataset_inputs`` links a run to a
dataset with the input's tags (a JSON object). Both go with their run or experiment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_dataset_inputs"
down_revision = "0005_metrics_without_run_fk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=36), nullable=False),
        sa.Column("source_type", sa.String(length=36), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id"),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
    )
    op.create_table(
        "run_dataset_inputs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.dataset_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", name="pk_run_dataset_inputs"),
    )


def downgrade() -> None:
    op.drop_table("run_dataset_inputs")
    op.drop_table("datasets")
