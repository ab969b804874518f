"""SQLModel table classes: the store's schema (migrations in ``store/migrations`` mirror it).

Times are epoch milliseconds in BIGINT columns. A metric value of NaN is stored as ``0.0`` with
``is_nan`` set (SQLite turns NaN into NULL); ±inf are stored as such (both backends keep them).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

__all__ = [
    "LATEST_UPSERT",
    "POINT_COLUMNS",
    "ArtifactFileRow",
    "AuthTokenRow",
    "AuthUserRow",
    "DatasetRow",
    "ExperimentPermissionRow",
    "ExperimentRow",
    "ExperimentTagRow",
    "LatestMetricRow",
    "LoggedModelMetricRow",
    "LoggedModelParamRow",
    "LoggedModelRow",
    "LoggedModelTagRow",
    "MetricRow",
    "ParamRow",
    "PointRow",
    "RegisteredModelPermissionRow",
    "RunDatasetInputRow",
    "RunModelInputRow",
    "RunOutputRow",
    "RunRow",
    "RunTagRow",
    "insert_on_conflict",
    "metadata",
    "table_of",
]

metadata = SQLModel.metadata


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a table model (for bulk Core statements)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def insert_on_conflict(session: Session, table: Table) -> Any:
    """The dialect's INSERT that supports ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"Unsupported database dialect {name!r}")


_CASCADE = "CASCADE"
# Key/value tables are read by primary key (run_id, key): on SQLite store the rows in that B-tree
# (WITHOUT ROWID) so each lookup is one search, not two.
_CLUSTERED = {"sqlite_with_rowid": False}


def _run_fk() -> Column[str]:
    return Column("run_id", String(32), ForeignKey("runs.run_id", ondelete=_CASCADE), nullable=False)


class ExperimentRow(SQLModel, table=True):
    __tablename__ = "experiments"

    experiment_id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(500), nullable=False, unique=True))
    artifact_location: str = Field(sa_column=Column(String(2048), nullable=False))
    lifecycle_stage: str = Field(default="active", sa_column=Column(String(32), nullable=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_update_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class ExperimentTagRow(SQLModel, table=True):
    __tablename__ = "experiment_tags"
    __table_args__ = (PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),)

    experiment_id: int = Field(
        sa_column=Column(
            "experiment_id",
            ForeignKey("experiments.experiment_id", ondelete=_CASCADE),
            nullable=False,
        )
    )
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    # Serves the default search order (start_time DESC, run_id) straight from the index; with
    # lifecycle_stage in it, a search reads only the index (a covering index) until the page is found.
    __table_args__ = (
        Index(
            "ix_runs_experiment_start", "experiment_id", text("start_time DESC"), "run_id", "lifecycle_stage"
        ),
    )

    run_id: str = Field(sa_column=Column(String(32), primary_key=True))
    experiment_id: int = Field(
        sa_column=Column("experiment_id", ForeignKey("experiments.experiment_id"), nullable=False)
    )
    run_name: str = Field(default="", sa_column=Column(String(250), nullable=False))
    user_id: str = Field(default="", sa_column=Column(String(256), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    start_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    deleted_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    artifact_uri: str = Field(sa_column=Column(String(2048), nullable=False))
    lifecycle_stage: str = Field(default="active", sa_column=Column(String(32), nullable=False))


class RunTagRow(SQLModel, table=True):
    __tablename__ = "run_tags"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "key", name="pk_run_tags"),
        _CLUSTERED,
    )

    run_id: str = Field(sa_column=_run_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(String(8000), nullable=False))


class ParamRow(SQLModel, table=True):
    """A run's param, with copies of the run's ``experiment_id`` and ``start_time``.

    Both never change after the run is created. The copies let a search with ``params.k = 'v'``
    read the matching runs of one experiment from ``ix_params_experiment_key_value`` already in the
    default order (newest first), instead of walking every run of the experiment.
    """

    __tablename__ = "params"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "key", name="pk_params"),
        Index(
            "ix_params_experiment_key_value",
            "experiment_id",
            "key",
            "value",
            text("start_time DESC"),
            "run_id",
        ),
        _CLUSTERED,
    )

    run_id: str = Field(sa_column=_run_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(String(8000), nullable=False))
    experiment_id: int = Field(sa_column=Column(Integer, nullable=False))
    start_time: int = Field(sa_column=Column(BigInteger, nullable=False))


#: A point's columns in driver-level SQL, the same in ``metrics`` and ``latest_metrics``.
POINT_COLUMNS = '(run_id, "key", step, "timestamp", "value", is_nan)'
#: One row of either table in driver-level writes, in :data:`POINT_COLUMNS` order (the value as
#: stored: a NaN is 0.0 with ``is_nan`` set).
PointRow = tuple[str, str, int, int, float, bool]
#: How an insert into ``latest_metrics`` keeps the newest point per (run, key): MLflow's
#: (step, timestamp, value) order. Replaces only with a strictly newer point, so it is idempotent.
LATEST_UPSERT = (
    'ON CONFLICT (run_id, "key") DO UPDATE SET step = excluded.step, '
    '"timestamp" = excluded."timestamp", "value" = excluded."value", is_nan = excluded.is_nan '
    'WHERE (excluded.step, excluded."timestamp", excluded."value") > '
    '(latest_metrics.step, latest_metrics."timestamp", latest_metrics."value")'
)


class MetricRow(SQLModel, table=True):
    """Every logged point; an identical point logged twice is kept once (it is the primary key).

    On PostgreSQL the table has no foreign key to ``runs``: its per-row trigger (a locking lookup of
    the run for every point) was a third of a log-batch's database time. The write path takes that
    lock once per run and group instead (``_pg_batch.lock_runs``: ``FOR KEY SHARE``), and the one
    hard delete of runs (``gc.hard_delete``) deletes their metrics itself. SQLite keeps the key: its
    check is cheap there, and dropping it would mean rebuilding the table.
    """

    __tablename__ = "metrics"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "key", "step", "timestamp", "value", "is_nan", name="pk_metrics"),
        ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete=_CASCADE).ddl_if(dialect="sqlite"),
        # The primary key holds every column: on SQLite keep the rows in it (written once, not twice).
        {"sqlite_with_rowid": False},
    )

    run_id: str = Field(sa_column=Column("run_id", String(32), nullable=False))
    key: str = Field(sa_column=Column(String(250), nullable=False))
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float = Field(sa_column=Column(Double, nullable=False))
    is_nan: bool = Field(default=False, nullable=False)


class LatestMetricRow(SQLModel, table=True):
    """The point with the highest (step, timestamp, value) per run and key: what search compares."""

    __tablename__ = "latest_metrics"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "key", name="pk_latest_metrics"),
        Index("ix_latest_metrics_key_value", "key", "value"),
        _CLUSTERED,
    )

    run_id: str = Field(sa_column=_run_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float = Field(sa_column=Column(Double, nullable=False))
    is_nan: bool = Field(default=False, nullable=False)


class ArtifactFileRow(SQLModel, table=True):
    """Size and sha256 of each file logged to a run's artifact root (path relative to it)."""

    __tablename__ = "artifact_files"
    __table_args__ = (PrimaryKeyConstraint("run_id", "path", name="pk_artifact_files"),)

    run_id: str = Field(sa_column=_run_fk())
    path: str = Field(sa_column=Column(String(1024), nullable=False))
    file_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    logged_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class LoggedModelRow(SQLModel, table=True):
    """An MLflow 3 logged model (what ``log_model`` creates before uploading its files)."""

    __tablename__ = "logged_models"
    __table_args__ = (Index("ix_logged_models_experiment_name", "experiment_id", "name"),)

    model_id: str = Field(sa_column=Column(String(64), primary_key=True))
    experiment_id: int = Field(
        sa_column=Column("experiment_id", ForeignKey("experiments.experiment_id"), nullable=False)
    )
    name: str = Field(sa_column=Column(String(500), nullable=False))
    artifact_location: str = Field(sa_column=Column(String(2048), nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    status_message: str | None = Field(default=None, sa_column=Column(Text))
    model_type: str | None = Field(default=None, sa_column=Column(String(500)))
    source_run_id: str | None = Field(default=None, sa_column=Column(String(32)))
    creation_timestamp_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_timestamp_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    lifecycle_stage: str = Field(default="active", sa_column=Column(String(32), nullable=False))


def _model_fk() -> Column[str]:
    return Column(
        "model_id", String(64), ForeignKey("logged_models.model_id", ondelete=_CASCADE), nullable=False
    )


class LoggedModelTagRow(SQLModel, table=True):
    __tablename__ = "logged_model_tags"
    __table_args__ = (PrimaryKeyConstraint("model_id", "key", name="pk_logged_model_tags"),)

    model_id: str = Field(sa_column=_model_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))


class LoggedModelParamRow(SQLModel, table=True):
    __tablename__ = "logged_model_params"
    __table_args__ = (PrimaryKeyConstraint("model_id", "key", name="pk_logged_model_params"),)

    model_id: str = Field(sa_column=_model_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))


class LoggedModelMetricRow(SQLModel, table=True):
    """A metric point logged for a logged model (MLflow 3: a metric sent with ``model_id``), by the run
    that logged it and, optionally, on a dataset (``""`` when none: the columns are in the key). As
    for run metrics, an identical point is kept once and two values at one step and time both stay."""

    __tablename__ = "logged_model_metrics"
    __table_args__ = (
        PrimaryKeyConstraint(
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
        Index("ix_logged_model_metrics_run_id", "run_id"),  # the run's cascade
        _CLUSTERED,
    )

    model_id: str = Field(sa_column=_model_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    run_id: str = Field(sa_column=_run_fk())
    dataset_name: str = Field(default="", sa_column=Column(String(500), nullable=False))
    dataset_digest: str = Field(default="", sa_column=Column(String(36), nullable=False))
    value: float = Field(sa_column=Column(Double, nullable=False))
    is_nan: bool = Field(default=False, nullable=False)


class RunModelInputRow(SQLModel, table=True):
    """A logged model a run used (MLflow 3's run ``inputs.model_inputs``)."""

    __tablename__ = "run_model_inputs"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "model_id", name="pk_run_model_inputs"),
        Index("ix_run_model_inputs_model_id", "model_id"),  # the logged model's cascade
    )

    run_id: str = Field(sa_column=_run_fk())
    model_id: str = Field(sa_column=_model_fk())


class RunOutputRow(SQLModel, table=True):
    """A logged model produced by a run (MLflow 3's run outputs)."""

    __tablename__ = "run_outputs"
    __table_args__ = (PrimaryKeyConstraint("run_id", "model_id", name="pk_run_outputs"),)

    run_id: str = Field(sa_column=_run_fk())
    model_id: str = Field(sa_column=_model_fk())
    step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class DatasetRow(SQLModel, table=True):
    """A dataset runs of an experiment used (MLflow's ``datasets``): one row per name and digest."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
    )

    dataset_id: str = Field(sa_column=Column(String(32), primary_key=True))
    experiment_id: int = Field(
        sa_column=Column(ForeignKey("experiments.experiment_id", ondelete=_CASCADE), nullable=False)
    )
    name: str = Field(sa_column=Column(String(500), nullable=False))
    digest: str = Field(sa_column=Column(String(36), nullable=False))
    source_type: str = Field(sa_column=Column(String(36), nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    schema_: str | None = Field(default=None, sa_column=Column("schema", Text))
    profile: str | None = Field(default=None, sa_column=Column(Text))


class RunDatasetInputRow(SQLModel, table=True):
    """A dataset as a run's input; ``tags`` is the input's tags as a JSON object."""

    __tablename__ = "run_dataset_inputs"
    __table_args__ = (PrimaryKeyConstraint("run_id", "dataset_id", name="pk_run_dataset_inputs"),)

    run_id: str = Field(sa_column=_run_fk())
    dataset_id: str = Field(
        sa_column=Column(String(32), ForeignKey("datasets.dataset_id", ondelete=_CASCADE), nullable=False)
    )
    tags: str = Field(sa_column=Column(Text, nullable=False))


class AuthUserRow(SQLModel, table=True):
    """A server user (``flowml server --auth``); the password is stored as a scrypt hash."""

    __tablename__ = "auth_users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    is_admin: bool = Field(default=False, nullable=False)
    created_time: int = Field(sa_column=Column(BigInteger, nullable=False))


def _user_fk() -> Column[int]:
    return Column("user_id", ForeignKey("auth_users.id", ondelete=_CASCADE), nullable=False)


class AuthTokenRow(SQLModel, table=True):
    """An API token (sent as ``Authorization: Bearer``); only its sha256 is stored."""

    __tablename__ = "auth_tokens"

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: int = Field(sa_column=_user_fk())
    name: str = Field(sa_column=Column(String(255), nullable=False))
    created_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class ExperimentPermissionRow(SQLModel, table=True):
    __tablename__ = "auth_experiment_permissions"
    __table_args__ = (
        PrimaryKeyConstraint("experiment_id", "user_id", name="pk_auth_experiment_permissions"),
    )

    experiment_id: int = Field(
        sa_column=Column(
            "experiment_id", ForeignKey("experiments.experiment_id", ondelete=_CASCADE), nullable=False
        )
    )
    user_id: int = Field(sa_column=_user_fk())
    permission: str = Field(sa_column=Column(String(16), nullable=False))


class RegisteredModelPermissionRow(SQLModel, table=True):
    __tablename__ = "auth_registered_model_permissions"
    __table_args__ = (PrimaryKeyConstraint("name", "user_id", name="pk_auth_registered_model_permissions"),)

    name: str = Field(sa_column=Column(String(256), nullable=False))
    user_id: int = Field(sa_column=_user_fk())
    permission: str = Field(sa_column=Column(String(16), nullable=False))


# The registry's tables live in their own module; importing it here puts them in ``metadata`` for
# everyone who builds or migrates the schema.
from flowml.store import registry_tables as _registry_tables  # noqa: E402

del _registry_tables
from flowml.store import deploy_tables as _deploy_tables  # noqa: E402

del _deploy_tables
