"""Store side of ``flowml gc``: what may be collected, what protects it, and the hard deletes.

Functions take a ``Session`` and never commit (the caller's ``Database.write`` does). Deciding what an
artifact location *means* (``mlflow-artifacts:`` URIs, path containment) happens above, in
:mod:`flowml.ops.gc`; here are only the rows.

* Candidates: runs in the ``deleted`` lifecycle stage whose ``deleted_time`` is at or before the
  threshold, MLflow 3 logged models in the ``deleted`` stage, and every logged model of a deleted
  experiment that is itself old enough (the experiment's ``last_update_time`` is its deletion time).
* References (what protects): every live model version (``storage_location`` or ``source``, and
  ``run_id``); every version a live deployment record (PENDING / SERVING) names, falling back to the
  ``model_version.created`` outbox event when the version row is gone or redacted; and, as a guard,
  the artifact locations of active runs, active logged models and all experiments.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage
from flowml.entities_registry import STAGE_DELETED_INTERNAL, RegistryEventType
from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist
from flowml.store.deploy_tables import DeploymentRow
from flowml.store.registry_tables import ModelVersionRow, RegisteredModelRow, RegistryEventRow
from flowml.store.tables import ExperimentRow, LoggedModelRow, MetricRow, RunRow, table_of

__all__ = [
    "LIVE_DEPLOYMENT_STATUSES",
    "Candidates",
    "ModelCandidate",
    "Reference",
    "RunCandidate",
    "find_candidates",
    "find_references",
    "hard_delete",
    "model_collectable",
    "model_locations",
    "model_uri_location",
    "run_artifact_uris",
    "run_state",
]

#: Deployment records in these states still serve (or are about to serve) their version.
LIVE_DEPLOYMENT_STATUSES = ("PENDING", "SERVING")
_CHUNK = 500  # ids per IN (...) list

_R = table_of(RunRow)
_E = table_of(ExperimentRow)
_M = table_of(LoggedModelRow)
_MET = table_of(MetricRow)
_V = table_of(ModelVersionRow)
_RM = table_of(RegisteredModelRow)
_EV = table_of(RegistryEventRow)
_D = table_of(DeploymentRow)
_DELETED = LifecycleStage.DELETED


@dataclass(frozen=True, slots=True)
class RunCandidate:
    run_id: str
    experiment_id: str
    artifact_uri: str
    deleted_time: int | None


@dataclass(frozen=True, slots=True)
class ModelCandidate:
    model_id: str
    experiment_id: str
    artifact_location: str
    source_run_id: str | None


@dataclass(slots=True)
class Candidates:
    runs: list[RunCandidate] = field(default_factory=list)
    models: list[ModelCandidate] = field(default_factory=list)
    #: Deleted experiments in scope: hard-deleted (with ``--delete-rows``) once nothing is left in them.
    experiment_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reference:
    """Something that still uses an artifact location (and/or a run): why, and where."""

    reason: str
    location: str | None = None
    run_id: str | None = None
    #: Guards (active runs, experiments) protect files, never on their own a run's rows.
    guard: bool = False


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _int_ids(ids: Iterable[str], what: str) -> list[int]:
    out = []
    for raw in ids:
        try:
            out.append(int(raw))
        except ValueError:
            raise InvalidParameterValue(f"Invalid {what} {raw!r}: experiment ids are integers") from None
    return out


def _check_runs(session: Session, run_ids: Sequence[str], threshold: int | None) -> None:
    """MLflow gc's rules for explicit ``--run-ids``: each exists, is deleted and is old enough."""
    found = {}
    for chunk in _chunks(run_ids):
        rows = session.execute(
            select(_R.c.run_id, _R.c.lifecycle_stage, _R.c.deleted_time).where(_R.c.run_id.in_(chunk))
        ).all()
        found.update({r.run_id: r for r in rows})
    for run_id in run_ids:
        row = found.get(run_id)
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        if row.lifecycle_stage != _DELETED:
            raise InvalidParameterValue(
                f"Run {run_id} is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle "
                "stage can be deleted."
            )
        if threshold is not None and (row.deleted_time is None or row.deleted_time > threshold):
            raise InvalidParameterValue(f"Run {run_id} is not older than the required age.")


def _check_experiments(session: Session, experiment_ids: Sequence[int], threshold: int | None) -> None:
    rows = {
        r.experiment_id: r
        for r in session.execute(
            select(_E.c.experiment_id, _E.c.lifecycle_stage, _E.c.last_update_time).where(
                _E.c.experiment_id.in_(experiment_ids)
            )
        ).all()
    }
    for exp_id in experiment_ids:
        row = rows.get(exp_id)
        if row is None:
            raise ResourceDoesNotExist(f"No Experiment with id={exp_id} exists")
        if row.lifecycle_stage != _DELETED:
            raise InvalidParameterValue(
                f"Experiment {exp_id} is not in the deleted lifecycle stage. Only experiments in the "
                "deleted lifecycle stage can be hard-deleted."
            )
        if threshold is not None and row.last_update_time > threshold:
            raise InvalidParameterValue(f"Experiment {exp_id} is not older than the required age.")


def find_candidates(
    session: Session,
    *,
    threshold_ms: int | None,
    run_ids: Sequence[str] = (),
    experiment_ids: Sequence[str] = (),
) -> Candidates:
    """What gc may collect. ``threshold_ms`` None means any age (a run deleted at an unknown time
    counts only then). With ``run_ids``/``experiment_ids`` the scope is their union, as in MLflow."""
    exp_ids = _int_ids(experiment_ids, "experiment id")
    run_ids = list(dict.fromkeys(run_ids))
    if run_ids:
        _check_runs(session, run_ids, threshold_ms)
    if exp_ids:
        _check_experiments(session, exp_ids, threshold_ms)
    scoped = bool(run_ids or exp_ids)

    exp_where: list[Any] = [_E.c.lifecycle_stage == _DELETED, _E.c.experiment_id != 0]
    if threshold_ms is not None:
        exp_where.append(_E.c.last_update_time <= threshold_ms)
    if scoped:
        exp_where.append(_E.c.experiment_id.in_(exp_ids or [-1]))
    experiments = [int(e) for e in session.execute(select(_E.c.experiment_id).where(*exp_where)).scalars()]

    run_where: list[Any] = [_R.c.lifecycle_stage == _DELETED]
    if threshold_ms is not None:
        run_where.append(and_(_R.c.deleted_time.is_not(None), _R.c.deleted_time <= threshold_ms))
    if scoped:
        run_where.append(or_(_R.c.run_id.in_(run_ids or [""]), _R.c.experiment_id.in_(exp_ids or [-1])))
    rows = session.execute(
        select(_R.c.run_id, _R.c.experiment_id, _R.c.artifact_uri, _R.c.deleted_time)
        .where(*run_where)
        .order_by(_R.c.experiment_id, _R.c.run_id)
    ).all()
    runs = [RunCandidate(r.run_id, str(r.experiment_id), r.artifact_uri, r.deleted_time) for r in rows]

    model_where: list[Any] = []
    if experiments:
        model_where.append(_M.c.experiment_id.in_(experiments))
    if not run_ids or exp_ids:  # explicit --run-ids alone never reach logged models
        deleted = [_M.c.lifecycle_stage == _DELETED]
        if threshold_ms is not None:
            deleted.append(_M.c.last_updated_timestamp_ms <= threshold_ms)
        if scoped:
            deleted.append(_M.c.experiment_id.in_(exp_ids or [-1]))
        model_where.append(and_(*deleted))
    models = []
    if model_where:
        mrows = session.execute(
            select(_M.c.model_id, _M.c.experiment_id, _M.c.artifact_location, _M.c.source_run_id)
            .where(or_(*model_where))
            .order_by(_M.c.experiment_id, _M.c.model_id)
        ).all()
        models = [
            ModelCandidate(m.model_id, str(m.experiment_id), m.artifact_location, m.source_run_id)
            for m in mrows
        ]
    return Candidates(runs, models, [str(e) for e in experiments])


def _version_refs(session: Session) -> tuple[list[Reference], set[tuple[str, str]]]:
    rows = session.execute(
        select(_RM.c.name, _V.c.version, _V.c.source, _V.c.storage_location, _V.c.run_id)
        .join(_RM, _RM.c.model_id == _V.c.model_id)
        .where(_V.c.current_stage != STAGE_DELETED_INTERNAL)
    ).all()
    refs = [
        Reference(
            f"registered model {r.name!r} version {r.version}", r.storage_location or r.source, r.run_id
        )
        for r in rows
    ]
    return refs, {(r.name, str(r.version)) for r in rows}


def _deployment_refs(session: Session, live_versions: set[tuple[str, str]]) -> list[Reference]:
    """Live deployments of versions that are no longer live in the registry (deleted or redacted):
    their location comes from the ``model_version.created`` event the outbox kept."""
    live = session.execute(
        select(_D.c.id, _D.c.name, _D.c.version, _D.c.status).where(_D.c.status.in_(LIVE_DEPLOYMENT_STATUSES))
    ).all()
    missing = {(d.name, d.version): d for d in live if (d.name, d.version) not in live_versions}
    if not missing:
        return []
    refs: list[Reference] = []
    found: set[tuple[str, str]] = set()
    events = session.execute(
        select(_EV.c.name, _EV.c.version, _EV.c.payload).where(
            _EV.c.event_type == RegistryEventType.MODEL_VERSION_CREATED,
            _EV.c.name.in_(sorted({name for name, _ in missing})),
        )
    ).all()
    for ev in events:
        key = (ev.name, str(ev.version))
        record = missing.get(key)
        if record is None:
            continue
        try:
            payload = json.loads(ev.payload)
        except ValueError:
            continue
        found.add(key)
        refs.append(
            Reference(
                f"{record.status} deployment {record.id} of {ev.name!r} version {ev.version}",
                payload.get("storage_location") or payload.get("source"),
                payload.get("run_id"),
            )
        )
    for key, record in missing.items():
        if key not in found:  # nothing says where its files are: reported, protects nothing by path
            refs.append(
                Reference(f"UNRESOLVED {record.status} deployment {record.id} of {key[0]!r} v{key[1]}")
            )
    return refs


def find_references(session: Session, candidate_models: Collection[str] = ()) -> list[Reference]:
    """Everything that still uses artifacts (see the module docstring), guards included.

    ``candidate_models`` (logged models of deleted experiments, still active themselves) are not guards.
    """
    refs, live_versions = _version_refs(session)
    refs += _deployment_refs(session, live_versions)
    for run_id, uri in session.execute(
        select(_R.c.run_id, _R.c.artifact_uri).where(_R.c.lifecycle_stage != _DELETED)
    ).all():
        refs.append(Reference(f"active run {run_id}", uri, guard=True))
    for model_id, uri in session.execute(
        select(_M.c.model_id, _M.c.artifact_location).where(_M.c.lifecycle_stage != _DELETED)
    ).all():
        if model_id in candidate_models:
            continue
        refs.append(Reference(f"active logged model {model_id}", uri, guard=True))
    for exp_id, uri in session.execute(select(_E.c.experiment_id, _E.c.artifact_location)).all():
        refs.append(Reference(f"artifact location of experiment {exp_id}", uri, guard=True))
    return refs


def run_artifact_uris(session: Session, run_ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(list(run_ids)):
        rows = session.execute(select(_R.c.run_id, _R.c.artifact_uri).where(_R.c.run_id.in_(chunk)))
        out.update({r.run_id: r.artifact_uri for r in rows})
    return out


def model_locations(session: Session, model_ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(list(model_ids)):
        rows = session.execute(select(_M.c.model_id, _M.c.artifact_location).where(_M.c.model_id.in_(chunk)))
        out.update({r.model_id: r.artifact_location for r in rows})
    return out


def model_uri_location(session: Session, uri: str) -> str | None:
    """Where a ``models:/name/<version|stage>`` or ``models:/name@alias`` URI's files are (None when
    it names nothing live)."""
    from flowml.store._registry_versions import resolve_model_uri

    try:
        mv = resolve_model_uri(session, uri)
    except FlowmlError:
        return None
    return mv.storage_location or mv.source or None


def run_state(session: Session, run_id: str) -> tuple[bool, bool]:
    """Re-read right before a run's files go: (still deleted, named by a live model version)."""
    stage = session.execute(select(_R.c.lifecycle_stage).where(_R.c.run_id == run_id)).scalar()
    named = session.execute(
        select(exists().where(_V.c.run_id == run_id, _V.c.current_stage != STAGE_DELETED_INTERNAL))
    ).scalar()
    return stage == _DELETED, bool(named)


def model_collectable(session: Session, model_id: str) -> bool:
    """Re-read right before a logged model's files go: it, or its experiment, is still deleted."""
    row = session.execute(
        select(_M.c.lifecycle_stage, _E.c.lifecycle_stage.label("experiment_stage"))
        .join(_E, _E.c.experiment_id == _M.c.experiment_id)
        .where(_M.c.model_id == model_id)
    ).first()
    return row is not None and _DELETED in (row.lifecycle_stage, row.experiment_stage)


def hard_delete(
    session: Session, *, run_ids: Sequence[str], model_ids: Sequence[str], experiment_ids: Sequence[str]
) -> dict[str, int]:
    """Delete the rows of deleted runs and logged models (their child rows cascade, but for metrics
    on PostgreSQL, deleted here after their runs: see ``MetricRow``), then of the deleted experiments
    that are left empty. Rows that are no longer deleted are left alone."""
    counts = {"runs": 0, "logged_models": 0, "experiments": 0}
    for chunk in _chunks(list(run_ids)):
        result = session.execute(delete(_R).where(_R.c.run_id.in_(chunk), _R.c.lifecycle_stage == _DELETED))
        counts["runs"] += int(result.rowcount or 0)  # type: ignore[attr-defined]
        # After the runs' rows: a log-batch still writing to one holds it (FOR KEY SHARE), so the
        # delete above waited for it to commit, and this statement sees its points.
        session.execute(
            delete(_MET).where(_MET.c.run_id.in_(chunk), ~exists().where(_R.c.run_id == _MET.c.run_id))
        )
    for chunk in _chunks(list(model_ids)):
        result = session.execute(delete(_M).where(_M.c.model_id.in_(chunk)))
        counts["logged_models"] += int(result.rowcount or 0)  # type: ignore[attr-defined]
    ids = _int_ids(experiment_ids, "experiment id")
    if ids:
        result = session.execute(
            delete(_E).where(
                _E.c.experiment_id.in_(ids),
                _E.c.experiment_id != 0,
                _E.c.lifecycle_stage == _DELETED,
                ~exists().where(_R.c.experiment_id == _E.c.experiment_id),
                ~exists().where(_M.c.experiment_id == _E.c.experiment_id),
            )
        )
        counts["experiments"] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return counts
