"""Registered-model and model-version search: the filter AST compiled to one keyset-paged query.

Same machinery as run search (:mod:`flowml.store.filters`, :mod:`flowml.store._filters_sql`):
portable string comparisons, a total sort order ending in a unique key, opaque keyset tokens.

* registered models: ``name`` / ``tags.<k>``; order ``name``, ``last_updated_timestamp``
  (alias ``timestamp``); default ``name ASC``; tie-break ``name``.
* model versions (deleted ones hidden): ``name``, ``run_id``, ``source_path``, ``version_number``,
  ``tags.<k>``; order ``name``, ``version_number``, ``creation_timestamp``,
  ``last_updated_timestamp``; default ``name ASC, version_number DESC``; tie-breaks the same.
* prompts (MLflow keeps its prompt registry in the same tables, tagged ``mlflow.prompt.is_prompt``)
  are left out unless the filter asks for them, and clauses on that tag then drop: every mlflow 3
  client appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to its model searches, which as a
  plain tag clause would match no model (a missing tag matches nothing) — see :func:`_prompt_rule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, true
from sqlalchemy.orm import Session

from flowml.entities_registry import STAGE_DELETED_INTERNAL
from flowml.search import (
    Comparator,
    Comparison,
    Entity,
    Key,
    OrderBy,
    SearchKind,
    parse_filter,
    parse_order_by,
)
from flowml.store._filters_sql import (
    SortPart,
    StringOps,
    after_cursor,
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from flowml.store._registry_read import MODEL_TAGS, MODELS, VERSION_TAGS, VERSIONS
from flowml.store._search_common import check_max_results as _check_max_results
from flowml.store._search_common import compare as _compare

__all__ = [
    "MODEL_VERSIONS_MAX_RESULTS_THRESHOLD",
    "REGISTERED_MODELS_MAX_RESULTS_THRESHOLD",
    "search_model_version_keys",
    "search_registered_model_ids",
]

REGISTERED_MODELS_MAX_RESULTS_THRESHOLD = 1000
MODEL_VERSIONS_MAX_RESULTS_THRESHOLD = 200_000

_NAME = Key(Entity.ATTRIBUTE, "name")
PROMPT_TAG = "mlflow.prompt.is_prompt"
_VERSION = Key(Entity.ATTRIBUTE, "version_number")


def _page(
    session: Session,
    columns: Sequence[ColumnElement[Any]],
    from_: Any,
    conditions: list[ColumnElement[bool]],
    parts: Sequence[SortPart],
    fingerprint: str,
    max_results: int,
) -> tuple[list[tuple[Any, ...]], str | None]:
    width = len(columns)
    stmt = (
        select(*columns, *(p.expr.label(f"sort_key_{i}") for i, p in enumerate(parts)))
        .select_from(from_)
        .where(and_(true(), *conditions))
        .order_by(*(p.order() for p in parts))
        .limit(max_results + 1)
    )
    rows = [tuple(r) for r in session.execute(stmt).all()]
    token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        token = encode_page_token(fingerprint, parts, rows[-1][width:])
    return [r[:width] for r in rows], token


def _prompt_rule(clauses: Sequence[Comparison]) -> tuple[list[Comparison], bool]:
    """MLflow's rule for the prompt tag: the first clause on it asks for prompts when it is
    ``= 'true'`` or ``!= 'false'``; then every clause stays. Otherwise the clauses on the tag are
    dropped and prompts are excluded. Returns the clauses to apply and whether prompts are wanted."""
    for clause in clauses:
        if clause.key.entity is Entity.TAG and clause.key.name == PROMPT_TAG:
            value = str(clause.value).lower()
            if (clause.comparator is Comparator.EQ and value == "true") or (
                clause.comparator is Comparator.NE and value == "false"
            ):
                return list(clauses), True
            break
    kept = [c for c in clauses if not (c.key.entity is Entity.TAG and c.key.name == PROMPT_TAG)]
    return kept, False


def _not_a_prompt(tag_table: Any, model_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """No tag of ``tag_table`` (model or version tags) marks the model ``model_id`` as a prompt."""
    tags = tag_table.alias()
    return ~exists().where(tags.c.model_id == model_id, tags.c.key == PROMPT_TAG, tags.c.value == "true")


# -- registered models --------------------------------------------------------------------------
def _model_condition(ops: StringOps, clause: Comparison) -> ColumnElement[bool]:
    if clause.key.entity is Entity.TAG:
        tags = MODEL_TAGS.alias()
        return exists().where(
            tags.c.model_id == MODELS.c.model_id,
            tags.c.key == clause.key.name,
            _compare(ops, tags.c.value, clause.comparator, clause.value, text=True),
        )
    return _compare(ops, MODELS.c.name, clause.comparator, clause.value, text=True)


def search_registered_model_ids(
    session: Session,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[int], str | None]:
    _check_max_results(max_results, REGISTERED_MODELS_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.REGISTERED_MODELS)
    orders = list(parse_order_by(order_by, SearchKind.REGISTERED_MODELS))
    ops = StringOps(session.get_bind().dialect.name)
    if _NAME not in {o.key for o in orders}:
        orders.append(OrderBy(_NAME, ascending=True))
    parts = [
        SortPart(ops.text(MODELS.c.name), o.ascending, "str")
        if o.key == _NAME
        else SortPart(MODELS.c.last_updated_time, o.ascending, "int")
        for o in orders
    ]
    fingerprint = query_fingerprint("registered_models", parsed.to_string(), [o.to_string() for o in orders])
    clauses, prompts = _prompt_rule(parsed.clauses)
    conditions = [_model_condition(ops, c) for c in clauses]
    if not prompts:
        conditions.append(_not_a_prompt(MODEL_TAGS, MODELS.c.model_id))
    if page_token:
        conditions.append(after_cursor(parts, decode_page_token(page_token, fingerprint, parts)))
    rows, token = _page(session, [MODELS.c.model_id], MODELS, conditions, parts, fingerprint, max_results)
    return [int(r[0]) for r in rows], token


# -- model versions ---------------------------------------------------------------------------
_VERSION_COLUMNS = {
    "version_number": VERSIONS.c.version,
    "creation_timestamp": VERSIONS.c.creation_time,
    "last_updated_timestamp": VERSIONS.c.last_updated_time,
}


def _version_condition(ops: StringOps, clause: Comparison) -> ColumnElement[bool]:
    key = clause.key
    if key.entity is Entity.TAG:
        tags = VERSION_TAGS.alias()
        return exists().where(
            tags.c.model_id == VERSIONS.c.model_id,
            tags.c.version == VERSIONS.c.version,
            tags.c.key == key.name,
            _compare(ops, tags.c.value, clause.comparator, clause.value, text=True),
        )
    if key.name == "version_number":
        return _compare(ops, VERSIONS.c.version, clause.comparator, clause.value)
    column = {"name": MODELS.c.name, "run_id": VERSIONS.c.run_id, "source_path": VERSIONS.c.source}[key.name]
    return _compare(ops, column, clause.comparator, clause.value, text=True)


def search_model_version_keys(
    session: Session,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[tuple[int, int]], str | None]:
    """One page of ``(model_id, version)`` keys and the next page token."""
    _check_max_results(max_results, MODEL_VERSIONS_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.MODEL_VERSIONS)
    orders = list(parse_order_by(order_by, SearchKind.MODEL_VERSIONS))
    ops = StringOps(session.get_bind().dialect.name)
    keys = {o.key for o in orders}
    if _NAME not in keys:
        orders.append(OrderBy(_NAME, ascending=True))
    if _VERSION not in keys:
        orders.append(OrderBy(_VERSION, ascending=False))
    parts = [
        SortPart(ops.text(MODELS.c.name), o.ascending, "str")
        if o.key == _NAME
        else SortPart(_VERSION_COLUMNS[o.key.name], o.ascending, "int")
        for o in orders
    ]
    fingerprint = query_fingerprint("model_versions", parsed.to_string(), [o.to_string() for o in orders])
    conditions: list[ColumnElement[bool]] = [VERSIONS.c.current_stage != STAGE_DELETED_INTERNAL]
    clauses, prompts = _prompt_rule(parsed.clauses)
    conditions += [_version_condition(ops, c) for c in clauses]
    if not prompts:  # as MLflow: a model with any version tagged as a prompt is a prompt
        conditions.append(_not_a_prompt(VERSION_TAGS, VERSIONS.c.model_id))
    if page_token:
        conditions.append(after_cursor(parts, decode_page_token(page_token, fingerprint, parts)))
    from_ = VERSIONS.join(MODELS, MODELS.c.model_id == VERSIONS.c.model_id)
    rows, token = _page(
        session, [VERSIONS.c.model_id, VERSIONS.c.version], from_, conditions, parts, fingerprint, max_results
    )
    return [(int(r[0]), int(r[1])) for r in rows], token
