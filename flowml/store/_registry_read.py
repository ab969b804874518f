"""Registry reads: name rules, row lookups (optionally locking), and rows → entities in few queries."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from flowml.entities_registry import (
    ALL_STAGES,
    STAGE_DELETED_INTERNAL,
    ModelVersion,
    RegisteredModel,
)
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store.registry_tables import (
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelAliasRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
    table_of,
)
from flowml.validation import validate_key, validate_tag_value

__all__ = [
    "ALIASES",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_REGISTRY_TAG_VALUE_LENGTH",
    "MODELS",
    "MODEL_TAGS",
    "VERSIONS",
    "VERSION_TAGS",
    "as_dict",
    "check_description",
    "check_tags",
    "load_models",
    "load_versions",
    "model_row",
    "name_key",
    "parse_version",
    "touch_model",
    "validate_model_name",
    "version_row",
]

MODELS = table_of(RegisteredModelRow)
MODEL_TAGS = table_of(RegisteredModelTagRow)
VERSIONS = table_of(ModelVersionRow)
VERSION_TAGS = table_of(ModelVersionTagRow)
ALIASES = table_of(RegisteredModelAliasRow)

MAX_MODEL_NAME_LENGTH = 256
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def validate_model_name(name: object) -> str:
    """MLflow's rules (non-empty, no ``/`` or ``:``, path-safe) plus flowml's anti-spoofing ones.

    Also refused: leading/trailing whitespace, control characters and ``%XX`` escapes (a name like
    ``prod%2Dmodel`` next to ``prod-model``, CVE-2024-3099).
    """
    if not isinstance(name, str) or name == "":
        raise InvalidParameterValue("Registered model name cannot be empty.")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Registered model name exceeds the maximum length of {MAX_MODEL_NAME_LENGTH} characters"
        )
    if "/" in name or ":" in name:
        raise InvalidParameterValue(f"Invalid model name: '{name}'. Names cannot contain '/' or ':'.")
    if name in (".", "..") or name != name.strip():
        raise InvalidParameterValue(
            f"Invalid model name: '{name}'. Names cannot be '.' or '..' or start or end with whitespace."
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name) or _PERCENT_ESCAPE.search(name):
        raise InvalidParameterValue(
            f"Invalid model name: {name!r}. Names cannot contain control characters or %-escapes."
        )
    return name


def name_key(name: str) -> str:
    """The uniqueness key of a model name: NFKC-normalised and case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def parse_version(version: object) -> int:
    text = str(version).strip() if isinstance(version, str | int) and not isinstance(version, bool) else ""
    if not text.isdigit() or len(text) > 9:
        raise InvalidParameterValue(f"Parameter 'version' must be an integer, got '{version}'.")
    return int(text)


def model_row(session: Session, name: str, *, lock: bool = False) -> Row[Any]:
    """The registered model called ``name`` (404 if none); ``lock`` takes its row lock (PostgreSQL)."""
    validate_model_name(name)
    stmt = select(MODELS).where(MODELS.c.name == name)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
    return row


def as_dict(rows: Iterable[Row[Any]]) -> dict[Any, Any]:
    """``{first column: second column}`` of a two-column result."""
    return {row[0]: row[1] for row in rows}


def touch_model(session: Session, model_id: int, ts: int) -> None:
    session.execute(update(MODELS).where(MODELS.c.model_id == model_id).values(last_updated_time=ts))


def version_row(session: Session, model: Row[Any], version: object) -> Row[Any]:
    number = parse_version(version)
    row = session.execute(
        select(VERSIONS).where(
            VERSIONS.c.model_id == model.model_id,
            VERSIONS.c.version == number,
            VERSIONS.c.current_stage != STAGE_DELETED_INTERNAL,
        )
    ).first()
    if row is None:
        raise ResourceDoesNotExist(f"Model Version (name={model.name}, version={number}) not found")
    return row


def load_versions(session: Session, rows: Sequence[Row[Any]], names: dict[int, str]) -> list[ModelVersion]:
    """Entities for version rows (tags and aliases in two queries), in the order given."""
    if not rows:
        return []
    model_ids = sorted({r.model_id for r in rows})
    numbers = sorted({r.version for r in rows})
    wanted = {(r.model_id, r.version) for r in rows}
    tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for mid, ver, key, value in session.execute(
        select(
            VERSION_TAGS.c.model_id, VERSION_TAGS.c.version, VERSION_TAGS.c.key, VERSION_TAGS.c.value
        ).where(VERSION_TAGS.c.model_id.in_(model_ids), VERSION_TAGS.c.version.in_(numbers))
    ):
        if (mid, ver) in wanted:
            tags[(mid, ver)][key] = value
    aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
    for mid, ver, alias in session.execute(
        select(ALIASES.c.model_id, ALIASES.c.version, ALIASES.c.alias)
        .where(ALIASES.c.model_id.in_(model_ids))
        .order_by(ALIASES.c.alias)
    ):
        aliases[(mid, ver)].append(alias)
    return [
        ModelVersion(
            name=names[r.model_id],
            version=str(r.version),
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            current_stage=r.current_stage,
            description=r.description,
            user_id=r.user_id,
            source=r.source,
            run_id=r.run_id,
            status=r.status,
            status_message=r.status_message,
            run_link=r.run_link,
            tags=tags.get((r.model_id, r.version), {}),
            aliases=tuple(aliases.get((r.model_id, r.version), ())),
            storage_location=r.storage_location,
        )
        for r in rows
    ]


def load_models(session: Session, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    """Entities for model rows with tags, aliases and latest version per stage, in the order given."""
    if not rows:
        return []
    ids = [r.model_id for r in rows]
    names = {r.model_id: r.name for r in rows}
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for mid, key, value in session.execute(
        select(MODEL_TAGS.c.model_id, MODEL_TAGS.c.key, MODEL_TAGS.c.value).where(
            MODEL_TAGS.c.model_id.in_(ids)
        )
    ):
        tags[mid][key] = value
    aliases: dict[int, dict[str, str]] = defaultdict(dict)
    for mid, alias, ver in session.execute(
        select(ALIASES.c.model_id, ALIASES.c.alias, ALIASES.c.version)
        .where(ALIASES.c.model_id.in_(ids))
        .order_by(ALIASES.c.alias)
    ):
        aliases[mid][alias] = str(ver)
    latest = (
        select(VERSIONS.c.model_id, VERSIONS.c.current_stage, func.max(VERSIONS.c.version).label("version"))
        .where(VERSIONS.c.model_id.in_(ids), VERSIONS.c.current_stage != STAGE_DELETED_INTERNAL)
        .group_by(VERSIONS.c.model_id, VERSIONS.c.current_stage)
        .subquery()
    )
    version_rows = list(
        session.execute(
            select(VERSIONS).join(
                latest, and_(VERSIONS.c.model_id == latest.c.model_id, VERSIONS.c.version == latest.c.version)
            )
        )
    )
    stage_order = {s: i for i, s in enumerate(ALL_STAGES)}
    version_rows.sort(key=lambda r: (stage_order.get(r.current_stage, 99), r.version))
    per_model: dict[int, list[ModelVersion]] = defaultdict(list)
    for row, mv in zip(version_rows, load_versions(session, version_rows, names), strict=True):
        per_model[row.model_id].append(mv)
    return [
        RegisteredModel(
            name=r.name,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            description=r.description,
            user_id=r.user_id,
            latest_versions=tuple(per_model.get(r.model_id, ())),
            tags=tags.get(r.model_id, {}),
            aliases=aliases.get(r.model_id, {}),
        )
        for r in rows
    ]


MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_DESCRIPTION_LENGTH = 5000


# -- helpers ----------------------------------------------------------------------------------
def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in (tags or {}).items():
        validate_key(key, "tag")
        checked[key] = validate_tag_value(
            key, "" if value is None else str(value), MAX_REGISTRY_TAG_VALUE_LENGTH
        )
    return checked


def check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameterValue(
            f"Description exceeds the maximum length of {MAX_DESCRIPTION_LENGTH} characters"
        )
    return description
