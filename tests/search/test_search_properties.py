"""Property tests: generated valid filters parse and round-trip; garbage only ever raises the clean error."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowml.exceptions import InvalidParameterValue
from flowml.search import (
    Comparator,
    Comparison,
    Entity,
    Filter,
    Key,
    OrderBy,
    SearchKind,
    parse_filter,
    parse_order_by,
)
from flowml.search._schemas import DATASET_KEYS, AttrType, schema_for

C = Comparator
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Key characters MLflow allows (``^[/\w.\- :]*$``) plus a few that only quoting makes legal.
mlflow_keys = st.text(st.sampled_from("abcXYZ_019/.- :ßé"), min_size=1, max_size=12)
any_keys = st.text(min_size=1, max_size=12)
strings = st.text(max_size=15)
ints = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
numbers = st.one_of(ints, st.floats(allow_nan=False))


@st.composite
def comparisons(draw: st.DrawFn, kind: SearchKind, keys: st.SearchStrategy[str]) -> Comparison:
    schema = schema_for(kind)
    choices: list[tuple[Entity, str | None]] = [(e, None) for e in schema.entity_comparators]
    choices += [(Entity.ATTRIBUTE, name) for name in schema.attributes]
    entity, attr = draw(st.sampled_from(choices))
    if attr is None:
        comp = draw(st.sampled_from(sorted(schema.entity_comparators[entity], key=lambda c: c.value)))
        name = draw(st.sampled_from(sorted(DATASET_KEYS))) if entity is Entity.DATASET else draw(keys)
        key = Key(entity, name)
        wanted = AttrType.NUMBER if entity is Entity.METRIC else AttrType.STRING
    else:
        spec = schema.attributes[attr]
        comp = draw(st.sampled_from(sorted(spec.comparators, key=lambda c: c.value)))
        key = Key(Entity.ATTRIBUTE, attr)
        wanted = spec.type
    if not comp.takes_value:
        return Comparison(key, comp, None)
    one: st.SearchStrategy[Any] = {
        AttrType.STRING: strings,
        AttrType.NUMBER: numbers,
        AttrType.INTEGER: ints,
        AttrType.ID_STRING: st.integers(0, 10**12).map(str),
        AttrType.VERSION: numbers,
    }[wanted]
    if comp.takes_list:
        return Comparison(key, comp, tuple(draw(st.lists(one, min_size=1, max_size=4))))
    return Comparison(key, comp, draw(one))


@st.composite
def filters(draw: st.DrawFn, keys: st.SearchStrategy[str] = any_keys) -> Filter:
    kind = draw(st.sampled_from(list(SearchKind)))
    clauses = draw(st.lists(comparisons(kind, keys), max_size=5))
    return Filter(kind, tuple(clauses))


# -- spelling variants a user might write for the same tree --------------------------------

_PREFIXES = {
    Entity.METRIC: ["metrics", "metric"],
    Entity.PARAM: ["params", "param", "parameter", "parameters"],
    Entity.TAG: ["tags", "tag"],
    Entity.DATASET: ["datasets", "dataset"],
}


def _case(draw: st.DrawFn, word: str) -> str:
    return draw(st.sampled_from([word, word.lower(), word.capitalize()]))


def _quote_value(draw: st.DrawFn, value: str) -> str:
    quote = draw(st.sampled_from(["'", '"']))
    return quote + value.replace(quote, quote * 2) + quote


@st.composite
def spelled(draw: st.DrawFn, flt: Filter) -> str:
    schema = schema_for(flt.kind)
    parts = []
    for clause in flt.clauses:
        key = clause.key
        if key.entity is Entity.ATTRIBUTE:
            names = [key.name] + [a for a, c in schema.aliases.items() if c == key.name]
            name = draw(st.sampled_from(names))
            ident = f"`{name}`" if " " in name or draw(st.booleans()) else name
            if draw(st.booleans()):
                ident = (
                    draw(st.sampled_from([p for p, e in schema.prefixes.items() if e is Entity.ATTRIBUTE]))
                    + "."
                    + ident
                )
        else:
            prefix = draw(st.sampled_from([p for p in _PREFIXES[key.entity] if p in schema.prefixes]))
            quote = draw(st.sampled_from(["`", '"', "'"]))
            ident = f"{prefix}.{quote}{key.name.replace(quote, quote * 2)}{quote}"
        comp = clause.comparator.value
        comp = " ".join(_case(draw, w) for w in comp.split())
        value = clause.value
        if value is None:
            text = f"{ident} {comp}"
        elif isinstance(value, tuple):
            text = f"{ident} {comp} (" + " , ".join(_quote_value(draw, v) for v in value) + ")"
        elif isinstance(value, str):
            text = f"{ident} {comp} {_quote_value(draw, value)}"
        else:
            text = f"{ident}{comp}{Comparison(key, clause.comparator, value).to_string().rsplit(' ', 1)[1]}"
        parts.append(text)
    joiner = draw(st.sampled_from([" AND ", " and ", "  And\n", "\tAND "]))
    return joiner.join(parts)


@SETTINGS
@given(filters())
def test_to_string_round_trips(flt: Filter) -> None:
    assert parse_filter(flt.to_string(), flt.kind) == flt


@SETTINGS
@given(st.data())
def test_every_spelling_of_a_valid_filter_parses_to_the_same_tree(data: st.DataObject) -> None:
    flt = data.draw(filters(mlflow_keys))
    text = data.draw(spelled(flt))
    parsed = parse_filter(text, flt.kind)
    assert parsed.kind == flt.kind
    assert [(c.key, c.comparator) for c in parsed.clauses] == [(c.key, c.comparator) for c in flt.clauses]
    assert parse_filter(parsed.to_string(), flt.kind) == parsed


@SETTINGS
@given(st.sampled_from(list(SearchKind)), st.data())
def test_order_by_round_trips(kind: SearchKind, data: st.DataObject) -> None:
    schema = schema_for(kind)
    keys = [Key(Entity.ATTRIBUTE, name) for name in schema.order_attributes]
    if kind is SearchKind.RUNS:
        keys += [
            Key(e, k)
            for e in (Entity.METRIC, Entity.PARAM, Entity.TAG)
            for k in data.draw(st.lists(any_keys, max_size=3, unique=True))
        ]
    chosen = data.draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))) if keys else []
    orders = tuple(OrderBy(k, data.draw(st.booleans())) for k in chosen)
    assert parse_order_by([o.to_string() for o in orders], kind) == orders


_FRAGMENTS = [
    "metrics.",
    "params.",
    "tags.",
    "attributes.",
    "`",
    '"',
    "'",
    "a",
    "run_id",
    "start_time",
    "name",
    "version_number",
    "experiment_id",
    "=",
    "!=",
    "<",
    ">=",
    "==",
    "LIKE",
    "ilike",
    "IN",
    "NOT",
    "IS",
    "NULL",
    "AND",
    "OR",
    "(",
    ")",
    ",",
    " ",
    "1",
    "-2.5e3",
    ".5",
    "1e999",
    "'x'",
    '"y"',
    "`k k`",
    ";",
    "\\",
    "\x00",
    "é",
    "ASC",
    "desc",
    "\n",
]


@SETTINGS
@given(
    st.one_of(st.text(max_size=60), st.lists(st.sampled_from(_FRAGMENTS), max_size=25).map("".join)),
    st.sampled_from(list(SearchKind)),
)
def test_garbage_raises_only_invalid_parameter_value(text: str, kind: SearchKind) -> None:
    for parse in (lambda: parse_filter(text, kind), lambda: parse_order_by([text], kind)):
        try:
            result = parse()
        except InvalidParameterValue as exc:
            message = exc.message
        else:
            message = "position"
            if isinstance(result, Filter):
                assert parse_filter(result.to_string(), kind) == result
        assert "position" in message
