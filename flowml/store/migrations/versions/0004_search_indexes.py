"""search: params carry their run's experiment_id and start_time; covering runs index

Revision ID: 0004_search_indexes
Revises: 0003_deployments
Create Date: 2026-11-26

* ``params`` gets ``experiment_id`` and ``start_time`` (copied from ``runs``; neither changes after
  a run is created) and ``ix_params_experiment_key_value`` replaces ``ix_params_key_value``: a
  search with ``params.k = 'v'`` reads the matching runs of an experiment newest first.
* ``ix_runs_experiment_start`` gains ``lifecycle_stage``, so walking runs in the default order
  never reads the table itself.

SQLite cannot add a NOT NULL column without a default, so there ``params`` is rebuilt (it is a
WITHOUT ROWID table, which batch mode would not keep); PostgreSQL adds, fills and constrains the
columns in place.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_search_indexes"
down_revision = "0003_deployments"
branch_labels = None
depends_on = None

_Columns = list[str | sa.TextClause]
_RUNS_INDEX_OLD: _Columns = ["experiment_id", sa.text("start_time DESC"), "run_id"]
_RUNS_INDEX_NEW: _Columns = [*_RUNS_INDEX_OLD, "lifecycle_stage"]
_PARAMS_INDEX: _Columns = ["experiment_id", "key", "value", sa.text("start_time DESC"), "run_id"]


def _params_columns(with_run_fields: bool) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.String(length=8000), nullable=False),
    ]
    if with_run_fields:
        columns += [
            sa.Column("experiment_id", sa.Integer(), nullable=False),
            sa.Column("start_time", sa.BigInteger(), nullable=False),
        ]
    return columns


def _rebuild_sqlite_params(with_run_fields: bool) -> None:
    """Copy ``params`` into a new table of the wanted shape and swap it in (foreign keys are off)."""
    op.create_table(
        "_params_new",
        *_params_columns(with_run_fields),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_params"),
        sqlite_with_rowid=False,
    )
    if with_run_fields:
        op.execute(
            'INSERT INTO _params_new (run_id, "key", value, experiment_id, start_time) '
            'SELECT p.run_id, p."key", p.value, r.experiment_id, r.start_time '
            "FROM params AS p JOIN runs AS r ON r.run_id = p.run_id"
        )
    else:
        op.execute('INSERT INTO _params_new (run_id, "key", value) SELECT run_id, "key", value FROM params')
    op.drop_table("params")
    op.rename_table("_params_new", "params")


def upgrade() -> None:
    op.drop_index("ix_runs_experiment_start", table_name="runs")
    op.create_index("ix_runs_experiment_start", "runs", _RUNS_INDEX_NEW)
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_params_key_value", table_name="params")
        _rebuild_sqlite_params(with_run_fields=True)
    else:
        op.add_column("params", sa.Column("experiment_id", sa.Integer(), nullable=True))
        op.add_column("params", sa.Column("start_time", sa.BigInteger(), nullable=True))
        op.execute(
            "UPDATE params SET experiment_id = r.experiment_id, start_time = r.start_time "
            "FROM runs AS r WHERE r.run_id = params.run_id"
        )
        op.alter_column("params", "experiment_id", nullable=False)
        op.alter_column("params", "start_time", nullable=False)
        op.drop_index("ix_params_key_value", table_name="params")
    op.create_index("ix_params_experiment_key_value", "params", _PARAMS_INDEX)


def downgrade() -> None:
    op.drop_index("ix_params_experiment_key_value", table_name="params")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_params(with_run_fields=False)
    else:
        op.drop_column("params", "start_time")
        op.drop_column("params", "experiment_id")
    op.create_index("ix_params_key_value", "params", ["key", "value"])
    op.drop_index("ix_runs_experiment_start", table_name="runs")
    op.create_index("ix_runs_experiment_start", "runs", _RUNS_INDEX_OLD)
