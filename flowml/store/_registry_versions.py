"""Model versions: create (source validated, version max+1), read, update, soft delete, tags, search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from flowml.entities import PagedList
from flowml.entities_registry import (
    ALL_STAGES,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    HistoryKind,
    ModelUri,
    ModelVersion,
    ModelVersionStatus,
    RegistryEventType,
    canonical_stage,
    parse_model_uri,
)
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store import _registry_events as events
from flowml.store._registry_read import (
    ALIASES,
    MODELS,
    VERSION_TAGS,
    VERSIONS,
    as_dict,
    check_description,
    check_tags,
    load_versions,
    model_row,
    parse_version,
    touch_model,
    version_row,
)
from flowml.store._registry_search import search_model_version_keys
from flowml.store._registry_source import resolve_source
from flowml.store._registry_stages import get_model_version_by_alias
from flowml.store.logged_models import get_logged_model, run_model_location, run_model_locations
from flowml.store.tracking import get_run_row, now_ms
from flowml.validation import validate_key, validate_run_id

__all__ = [
    "create_model_version",
    "delete_model_version",
    "delete_model_version_tag",
    "get_latest_versions",
    "get_model_version",
    "get_model_version_download_uri",
    "resolve_model_uri",
    "search_model_versions",
    "set_model_version_tag",
    "update_model_version",
]


def _version(session: Session, model: Row[Any], number: int) -> ModelVersion:
    row = version_row(session, model, number)
    return load_versions(session, [row], {model.model_id: model.name})[0]


def get_latest_versions(
    session: Session, name: str, stages: Sequence[str] | None = None
) -> list[ModelVersion]:
    """The highest version in each of ``stages`` (all four when empty), in the order asked."""
    model = model_row(session, name)
    try:
        wanted = [canonical_stage(s) for s in stages] if stages else list(ALL_STAGES)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    latest = as_dict(
        session.execute(
            select(VERSIONS.c.current_stage, func.max(VERSIONS.c.version))
            .where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.current_stage.in_(wanted))
            .group_by(VERSIONS.c.current_stage)
        ).all()
    )
    rows = [version_row(session, model, latest[s]) for s in dict.fromkeys(wanted) if s in latest]
    return load_versions(session, rows, {model.model_id: model.name})


# -- model versions ---------------------------------------------------------------------------
def _model_location(session: Session, uri: ModelUri) -> str:
    mv = resolve_model_uri(session, uri)
    return mv.storage_location or mv.source or ""


def create_model_version(
    session: Session,
    name: str,
    source: str,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_link: str | None = None,
    description: str | None = None,
    user_id: str | None = None,
    *,
    allowed_source_roots: Sequence[str],
) -> ModelVersion:
    """Register ``source`` as version max+1 (READY, stage "None"); see ``_registry_source`` for
    which sources are accepted."""
    model = model_row(session, name, lock=True)
    run_id = validate_run_id(run_id) if run_id else None
    checked = check_tags(tags)
    check_description(description)
    source_run_id: str | None = None  # the logged model's run, when the source is one

    def logged_model_location(model_id: str) -> str:
        nonlocal source_run_id
        model = get_logged_model(session, model_id)
        source_run_id = model.source_run_id
        return model.artifact_location

    storage = resolve_source(
        source,
        run_id=run_id,
        run_artifact_uri=lambda rid: get_run_row(session, rid).artifact_uri,
        model_location=lambda uri: _model_location(session, uri),
        allowed_roots=allowed_source_roots,
        logged_model_location=logged_model_location,
        run_model_locations=lambda rid: run_model_locations(session, rid),
        run_model_named=lambda rid, model_name: run_model_location(session, rid, model_name),
    )
    run_id = run_id or source_run_id  # as MLflow: a logged model's version belongs to its run
    if run_id is not None:
        get_run_row(session, run_id)  # 404 for an unknown run, whatever the source
    last = session.execute(
        select(func.max(VERSIONS.c.version)).where(VERSIONS.c.model_id == model.model_id)
    ).scalar()
    number = int(last or 0) + 1
    ts = now_ms()
    session.execute(
        insert(VERSIONS).values(
            model_id=model.model_id,
            version=number,
            creation_time=ts,
            last_updated_time=ts,
            description=description,
            user_id=user_id,
            current_stage=STAGE_NONE,
            source=source,
            storage_location=storage,
            run_id=run_id,
            run_link=run_link,
            status=ModelVersionStatus.READY,
        )
    )
    if checked:
        session.execute(
            insert(VERSION_TAGS),
            [
                {"model_id": model.model_id, "version": number, "key": k, "value": v}
                for k, v in checked.items()
            ],
        )
    touch_model(session, model.model_id, ts)
    events.add_history(
        session, model.model_id, name, HistoryKind.CREATED, timestamp=ts, version=number,
        to_value=STAGE_NONE, user_id=user_id,
    )  # fmt: skip
    events.add_event(
        session,
        model.model_id,
        name,
        RegistryEventType.MODEL_VERSION_CREATED,
        timestamp=ts,
        version=number,
        payload={
            "source": source,
            "storage_location": storage or source,
            "run_id": run_id,
            "tags": checked,
            "description": description,
            "actor": user_id,
        },
    )
    return _version(session, model, number)


def get_model_version(session: Session, name: str, version: str | int) -> ModelVersion:
    model = model_row(session, name)
    return _version(session, model, parse_version(version))


def update_model_version(
    session: Session, name: str, version: str | int, description: str | None
) -> ModelVersion:
    model = model_row(session, name)
    row = version_row(session, model, version)
    ts = now_ms()
    session.execute(
        update(VERSIONS)
        .where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.version == row.version)
        .values(description=check_description(description), last_updated_time=ts)
    )
    return _version(session, model, row.version)


def delete_model_version(session: Session, name: str, version: str | int, user_id: str | None = None) -> None:
    """MLflow's soft delete: stage ``Deleted_Internal``, source and run redacted, aliases removed."""
    model = model_row(session, name, lock=True)
    row = version_row(session, model, version)
    removed = list(
        session.execute(
            select(ALIASES.c.alias).where(
                ALIASES.c.model_id == model.model_id, ALIASES.c.version == row.version
            )
        ).scalars()
    )
    session.execute(
        delete(ALIASES).where(ALIASES.c.model_id == model.model_id, ALIASES.c.version == row.version)
    )
    ts = now_ms()
    session.execute(
        update(VERSIONS)
        .where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.version == row.version)
        .values(
            current_stage=STAGE_DELETED_INTERNAL,
            last_updated_time=ts,
            description=None,
            user_id=None,
            source="REDACTED-SOURCE-PATH",
            storage_location=None,
            run_id="REDACTED-RUN-ID",
            run_link="REDACTED-RUN-LINK",
            status_message=None,
        )
    )
    touch_model(session, model.model_id, ts)
    events.add_history(
        session, model.model_id, name, HistoryKind.DELETED, timestamp=ts, version=row.version,
        from_value=row.current_stage, user_id=user_id, details={"removed_aliases": removed},
    )  # fmt: skip
    events.add_event(
        session,
        model.model_id,
        name,
        RegistryEventType.MODEL_VERSION_DELETED,
        timestamp=ts,
        version=row.version,
        payload={"from_stage": row.current_stage, "removed_aliases": removed, "actor": user_id},
    )


def set_model_version_tag(session: Session, name: str, version: str | int, key: str, value: str) -> None:
    checked = check_tags({key: value})
    model = model_row(session, name)
    row = version_row(session, model, version)
    where = (
        VERSION_TAGS.c.model_id == model.model_id,
        VERSION_TAGS.c.version == row.version,
        VERSION_TAGS.c.key == key,
    )
    session.execute(delete(VERSION_TAGS).where(*where))
    session.execute(
        insert(VERSION_TAGS).values(model_id=model.model_id, version=row.version, key=key, value=checked[key])
    )


def delete_model_version_tag(session: Session, name: str, version: str | int, key: str) -> None:
    validate_key(key, "tag")
    model = model_row(session, name)
    row = version_row(session, model, version)
    session.execute(
        delete(VERSION_TAGS).where(
            VERSION_TAGS.c.model_id == model.model_id,
            VERSION_TAGS.c.version == row.version,
            VERSION_TAGS.c.key == key,
        )
    )


def search_model_versions(
    session: Session,
    filter_string: str | None = None,
    max_results: int = 10_000,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[ModelVersion]:
    keys, token = search_model_version_keys(session, filter_string, max_results, order_by, page_token)
    if not keys:
        return PagedList([], token)
    model_ids = sorted({k[0] for k in keys})
    names = as_dict(
        session.execute(
            select(MODELS.c.model_id, MODELS.c.name).where(MODELS.c.model_id.in_(model_ids))
        ).all()
    )
    wanted = set(keys)
    rows = {
        (r.model_id, r.version): r
        for r in session.execute(
            select(VERSIONS).where(
                VERSIONS.c.model_id.in_(model_ids), VERSIONS.c.version.in_(sorted({k[1] for k in keys}))
            )
        )
        if (r.model_id, r.version) in wanted
    }
    return PagedList(load_versions(session, [rows[k] for k in keys if k in rows], names), token)


def get_model_version_download_uri(session: Session, name: str, version: str | int) -> str:
    mv = get_model_version(session, name, version)
    return mv.storage_location or mv.source or ""


def resolve_model_uri(session: Session, uri: str | ModelUri) -> ModelVersion:
    """The version a ``models:/`` URI names (by version, stage, alias or ``latest``)."""
    if isinstance(uri, str):
        try:
            uri = parse_model_uri(uri)
        except ValueError as exc:
            raise InvalidParameterValue(str(exc)) from exc
    if uri.version is not None:
        return get_model_version(session, uri.name, uri.version)
    if uri.alias is not None:
        return get_model_version_by_alias(session, uri.name, uri.alias)
    assert uri.stage is not None
    found = get_latest_versions(session, uri.name, [uri.stage])
    if not found:
        raise ResourceDoesNotExist(
            f"No versions of model with name '{uri.name}' and stage '{uri.stage}' found"
        )
    return found[0]
