"""What each search accepts: keys, aliases, comparators and value types (MLflow 3.17's rules).

* runs: ``metrics.`` / ``params.`` / ``tags.`` / ``attributes.`` (and MLflow's aliases); attributes
  run_id, run_name, user_id, status, artifact_uri, start_time, end_time; order_by on all of them;
  ``datasets.name`` / ``.digest`` / ``.context`` (a run matches when one of its dataset inputs does).
* experiments: ``tags.`` and attributes name, experiment_id, creation_time, last_update_time.
* registered models: ``tags.`` and ``name``; order_by name, timestamp / last_updated_timestamp.
* model versions: ``tags.`` and name, run_id, source_path, version_number; order_by name,
  version_number, creation_timestamp, last_updated_timestamp.
* logged models (MLflow 3): ``metrics.`` (a model matches when any of its points does), ``params.``,
  ``tags.`` and name, model_id, source_run_id, status, model_type, creation/last_updated
  timestamps; order_by on those attributes and on metrics (the latest point).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from flowml.search._ast import Comparator, Entity, SearchKind

__all__ = ["DATASET_KEYS", "AttrSpec", "AttrType", "Schema", "schema_for"]

C = Comparator
_NUMERIC_OPS = frozenset({C.EQ, C.NE, C.LT, C.LE, C.GT, C.GE})
_STRING_OPS = frozenset({C.EQ, C.NE, C.LIKE, C.ILIKE})
_LIST_OPS = frozenset({C.IN, C.NOT_IN})
_NULL_OPS = frozenset({C.IS_NULL, C.IS_NOT_NULL})


class AttrType(enum.Enum):
    STRING = "string"  # a quoted string (or a list of them, where IN is allowed)
    NUMBER = "number"  # an unquoted int or float
    INTEGER = "integer"  # an unquoted int only
    ID_STRING = "id_string"  # a quoted string holding an integer (experiment_id)
    VERSION = "version"  # an unquoted number or a quoted run of digits (coerced to int)


@dataclass(frozen=True, slots=True)
class AttrSpec:
    type: AttrType
    comparators: frozenset[Comparator]


@dataclass(frozen=True, slots=True)
class Schema:
    kind: SearchKind
    prefixes: Mapping[str, Entity]
    attributes: Mapping[str, AttrSpec]
    aliases: Mapping[str, str]
    entity_comparators: Mapping[Entity, frozenset[Comparator]]
    order_attributes: frozenset[str]
    order_aliases: Mapping[str, str] = field(default_factory=dict)
    order_entities: frozenset[Entity] = frozenset({Entity.ATTRIBUTE})


_RUN_PREFIXES = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
    "dataset": Entity.DATASET,
    "datasets": Entity.DATASET,
}
#: The keys a ``datasets.`` clause may name (``context`` is the input's ``mlflow.data.context`` tag).
DATASET_KEYS = frozenset({"name", "digest", "context"})
_REGISTRY_PREFIXES = {"attribute": Entity.ATTRIBUTE, "tag": Entity.TAG, "tags": Entity.TAG}
_LOGGED_MODEL_PREFIXES = {
    **_REGISTRY_PREFIXES,
    "attributes": Entity.ATTRIBUTE,
    "metrics": Entity.METRIC,
    "params": Entity.PARAM,
}

_RUN_STRING = AttrSpec(AttrType.STRING, _STRING_OPS)
_RUN_NUMBER = AttrSpec(AttrType.NUMBER, _NUMERIC_OPS)

RUNS = Schema(
    kind=SearchKind.RUNS,
    prefixes=_RUN_PREFIXES,
    attributes={
        "run_id": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "run_name": _RUN_STRING,
        "user_id": _RUN_STRING,
        "status": _RUN_STRING,
        "artifact_uri": _RUN_STRING,
        "start_time": _RUN_NUMBER,
        "end_time": _RUN_NUMBER,
    },
    aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
    entity_comparators={
        Entity.METRIC: _NUMERIC_OPS,
        Entity.PARAM: _STRING_OPS | _NULL_OPS,
        Entity.TAG: _STRING_OPS | _NULL_OPS,
        Entity.DATASET: _STRING_OPS | _LIST_OPS,
    },
    order_attributes=frozenset(
        {"run_id", "run_name", "user_id", "status", "artifact_uri", "start_time", "end_time"}
    ),
    order_aliases={"created": "start_time", "Created": "start_time"},
    order_entities=frozenset({Entity.METRIC, Entity.PARAM, Entity.TAG, Entity.ATTRIBUTE}),
)

EXPERIMENTS = Schema(
    kind=SearchKind.EXPERIMENTS,
    prefixes=_REGISTRY_PREFIXES,
    attributes={
        "name": AttrSpec(AttrType.STRING, _STRING_OPS),
        "experiment_id": AttrSpec(AttrType.ID_STRING, frozenset({C.EQ, C.NE}) | _LIST_OPS),
        "creation_time": AttrSpec(AttrType.INTEGER, _NUMERIC_OPS),
        "last_update_time": AttrSpec(AttrType.INTEGER, _NUMERIC_OPS),
    },
    aliases={},
    entity_comparators={Entity.TAG: _STRING_OPS | _NULL_OPS},
    order_attributes=frozenset({"name", "experiment_id", "creation_time", "last_update_time"}),
)

REGISTERED_MODELS = Schema(
    kind=SearchKind.REGISTERED_MODELS,
    prefixes=_REGISTRY_PREFIXES,
    attributes={"name": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS)},
    aliases={},
    entity_comparators={Entity.TAG: _STRING_OPS},
    order_attributes=frozenset({"name", "last_updated_timestamp"}),
    order_aliases={"timestamp": "last_updated_timestamp"},
)

MODEL_VERSIONS = Schema(
    kind=SearchKind.MODEL_VERSIONS,
    prefixes=_REGISTRY_PREFIXES,
    attributes={
        "name": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "run_id": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "source_path": AttrSpec(AttrType.STRING, _STRING_OPS),
        "version_number": AttrSpec(AttrType.VERSION, _NUMERIC_OPS),
    },
    aliases={},
    entity_comparators={Entity.TAG: _STRING_OPS},
    order_attributes=frozenset({"name", "version_number", "creation_timestamp", "last_updated_timestamp"}),
)

LOGGED_MODELS = Schema(
    kind=SearchKind.LOGGED_MODELS,
    prefixes=_LOGGED_MODEL_PREFIXES,
    attributes={
        "name": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "model_id": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "source_run_id": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "status": AttrSpec(AttrType.STRING, _STRING_OPS | _LIST_OPS),
        "model_type": AttrSpec(AttrType.STRING, _STRING_OPS),
        "creation_timestamp": AttrSpec(AttrType.INTEGER, _NUMERIC_OPS),
        "last_updated_timestamp": AttrSpec(AttrType.INTEGER, _NUMERIC_OPS),
    },
    aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
    entity_comparators={
        Entity.METRIC: _NUMERIC_OPS,
        Entity.PARAM: _STRING_OPS | _LIST_OPS,
        Entity.TAG: _STRING_OPS | _LIST_OPS,
    },
    order_attributes=frozenset(
        {
            "name",
            "model_id",
            "source_run_id",
            "status",
            "model_type",
            "creation_timestamp",
            "last_updated_timestamp",
        }
    ),
    order_aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
    order_entities=frozenset({Entity.ATTRIBUTE, Entity.METRIC}),
)

_SCHEMAS = {s.kind: s for s in (RUNS, EXPERIMENTS, REGISTERED_MODELS, MODEL_VERSIONS, LOGGED_MODELS)}


def schema_for(kind: SearchKind) -> Schema:
    return _SCHEMAS[kind]
