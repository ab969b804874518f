"""metrics: no per-row foreign key to runs on PostgreSQL

Revision ID: 0005_metrics_without_run_fk
Revises: 0004_search_indexes
Create Date: 2026-11-23

PostgreSQL checks a foreign key with a trigger per inserted row (a locking lookup of the run), which
was about a third of the database's work in a log-batch of 100 points. The write path now locks each
run once per group transaction (``SELECT ... FOR KEY SHARE``) and ``flowml gc`` deletes a run's
metrics with the run, so the constraint goes. SQLite keeps it (checked cheaply; removing it would
rebuild the table), hence nothing happens there.
"""

from __future__ import annotations

from alembic import op

revision = "0005_metrics_without_run_fk"
down_revision = "0004_search_indexes"
branch_labels = None
depends_on = None

_FK = "metrics_run_id_fkey"  # PostgreSQL's name for 0001's unnamed constraint


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_FK, "metrics", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Metrics of runs deleted meanwhile would fail the constraint: they belong to nothing.
        op.execute(
            "DELETE FROM metrics AS m WHERE NOT EXISTS (SELECT 1 FROM runs AS r WHERE r.run_id = m.run_id)"
        )
        op.create_foreign_key(_FK, "metrics", "runs", ["run_id"], ["run_id"], ondelete="CASCADE")
