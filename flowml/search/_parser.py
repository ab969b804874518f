"""Recursive-descent parser: tokens → validated :class:`Filter` / :class:`OrderBy` trees.

Grammar (keywords case-insensitive)::

    filter     := "" | clause ("AND" clause)*
    clause     := ident comparator value
                | ident ("IN" | "NOT" "IN") "(" string ("," string)* ")"
                | ident "IS" ["NOT"] "NULL"
    comparator := "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
    value      := string | number
    order_by   := ident ["ASC" | "DESC"]

Which identifiers, comparators and value types are valid depends on the search
(:mod:`flowml.search._schemas`); every violation is an INVALID_PARAMETER_VALUE naming the
offending token and its position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flowml.exceptions import InvalidParameterValue
from flowml.search._ast import Comparator, Comparison, Entity, Filter, Key, OrderBy, SearchKind, Value
from flowml.search._errors import shown, syntax_error
from flowml.search._lexer import Token, TokenType, number_value, tokenize
from flowml.search._schemas import DATASET_KEYS, AttrSpec, AttrType, Schema, schema_for

__all__ = ["parse_filter", "parse_order_by"]

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "like", "ilike", "asc", "desc"})
_OPS = {
    c.value: c
    for c in (Comparator.EQ, Comparator.NE, Comparator.LT, Comparator.LE, Comparator.GT, Comparator.GE)
}
_INTEGER_TEXT = re.compile(r"\d+")


def _describe(tok: Token) -> str:
    return "end of input" if tok.type is TokenType.EOF else shown(tok.text)


def _is_word(tok: Token, word: str) -> bool:
    return (
        tok.type is TokenType.IDENT
        and tok.prefix is None
        and tok.quote is None
        and (tok.text.lower() == word)
    )


class _Cursor:
    def __init__(self, text: str, schema: Schema, *, order_by: bool = False) -> None:
        self.text = text
        self.schema = schema
        self.order_by = order_by
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def next(self) -> Token:
        tok = self.tokens[self.index]
        if tok.type is not TokenType.EOF:
            self.index += 1
        return tok

    def error(self, what: str, tok: Token) -> InvalidParameterValue:
        return syntax_error(self.text, what, tok.pos)

    # -- identifiers -------------------------------------------------------------------------

    def identifier(self) -> tuple[Key, AttrSpec | None, Token]:
        tok = self.next()
        if tok.type is TokenType.STRING and tok.quote == '"':
            name, prefix = str(tok.value), None  # a bare double-quoted name: "Run name"
        elif tok.type is TokenType.IDENT:
            name, prefix = str(tok.value), tok.prefix
            if prefix is None and tok.quote is None and name.lower() in _KEYWORDS:
                what = (
                    "parentheses, OR and NOT are not supported"
                    if name.lower() in ("or", "not")
                    else "expected an identifier"
                )
                raise self.error(f"{what}: unexpected keyword {shown(tok.text)}", tok)
        elif tok.type is TokenType.LPAREN:
            raise self.error("parentheses are not supported: unexpected '('", tok)
        else:
            raise self.error(f"expected an identifier, found {_describe(tok)}", tok)
        if prefix is None:
            key, spec = self._attribute(name, tok)
            return key, spec, tok
        entity = self.schema.prefixes.get(prefix)
        if entity is None:
            valid = ", ".join(sorted(self.schema.prefixes))
            raise self.error(f"invalid entity {prefix!r} in {shown(tok.text)} (valid: {valid})", tok)
        if entity is Entity.ATTRIBUTE:
            key, spec = self._attribute(name, tok)
            return key, spec, tok
        allowed = self.schema.order_entities if self.order_by else self.schema.entity_comparators
        if entity not in allowed:
            raise self.error(f"{entity.value} cannot be used here: {shown(tok.text)}", tok)
        if not name:
            raise self.error(f"empty key in {shown(tok.text)}", tok)
        if entity is Entity.DATASET and name not in DATASET_KEYS:
            valid = ", ".join(sorted(DATASET_KEYS))
            raise self.error(f"invalid dataset key {shown(tok.text)} (valid: {valid})", tok)
        return Key(entity, name), None, tok

    def _attribute(self, name: str, tok: Token) -> tuple[Key, AttrSpec | None]:
        schema = self.schema
        if self.order_by:
            canonical = schema.order_aliases.get(name, name)
            if canonical not in schema.order_attributes:
                valid = ", ".join(sorted(schema.order_attributes | set(schema.order_aliases)))
                raise self.error(f"invalid order_by key {shown(tok.text)} (valid: {valid})", tok)
            return Key(Entity.ATTRIBUTE, canonical), None
        canonical = schema.aliases.get(name, name)
        spec = schema.attributes.get(canonical)
        if spec is None:
            valid = ", ".join(sorted(set(schema.attributes) | set(schema.aliases)))
            raise self.error(f"invalid attribute {shown(tok.text)} (valid: {valid})", tok)
        return Key(Entity.ATTRIBUTE, canonical), spec

    # -- clauses -----------------------------------------------------------------------------

    def comparator(self) -> tuple[Comparator, Token]:
        tok = self.next()
        if tok.type is TokenType.OP:
            op = _OPS.get(tok.text)
            if op is None:
                raise self.error(f"invalid comparator {shown(tok.text)}", tok)
            return op, tok
        for word, comp in (("like", Comparator.LIKE), ("ilike", Comparator.ILIKE), ("in", Comparator.IN)):
            if _is_word(tok, word):
                return comp, tok
        if _is_word(tok, "not"):
            if not _is_word(self.next(), "in"):
                raise self.error("expected 'IN' after 'NOT'", self.tokens[self.index - 1])
            return Comparator.NOT_IN, tok
        if _is_word(tok, "is"):
            nxt = self.next()
            if _is_word(nxt, "not"):
                negated, nxt = True, self.next()
            else:
                negated = False
            if not _is_word(nxt, "null"):
                raise self.error(f"expected 'NULL' after 'IS', found {_describe(nxt)}", nxt)
            return (Comparator.IS_NOT_NULL if negated else Comparator.IS_NULL), tok
        raise self.error(f"expected a comparator, found {_describe(tok)}", tok)

    def clause(self) -> Comparison:
        key, spec, key_tok = self.identifier()
        comp, comp_tok = self.comparator()
        allowed = spec.comparators if spec is not None else self.schema.entity_comparators[key.entity]
        if comp not in allowed:
            valid = ", ".join(sorted(c.value for c in allowed))
            raise self.error(
                f"comparator {comp.value!r} is not allowed for {shown(key_tok.text)} (allowed: {valid})",
                comp_tok,
            )
        if not comp.takes_value:
            return Comparison(key, comp, None)
        if comp.takes_list:
            return Comparison(key, comp, self.string_list(key_tok, spec))
        return Comparison(key, comp, self.value(key, key_tok, spec))

    def value(self, key: Key, key_tok: Token, spec: AttrSpec | None) -> Value:
        tok = self.next()
        if spec is None:
            wanted = AttrType.NUMBER if key.entity is Entity.METRIC else AttrType.STRING
        else:
            wanted = spec.type
        return self._typed(tok, wanted, key_tok)

    def _typed(self, tok: Token, wanted: AttrType, key_tok: Token) -> Value:
        value = tok.value
        if wanted is AttrType.STRING and tok.type is TokenType.STRING:
            return str(value)
        if wanted is AttrType.NUMBER and tok.type is TokenType.NUMBER:
            return value
        if wanted is AttrType.INTEGER and tok.type is TokenType.NUMBER and isinstance(value, int):
            return value
        if wanted is AttrType.ID_STRING and tok.type is TokenType.STRING:
            if _INTEGER_TEXT.fullmatch(str(value)):
                return str(value)
            raise self.error(f"expected a quoted integer id, found {shown(tok.text)}", tok)
        if wanted is AttrType.VERSION:
            if tok.type is TokenType.NUMBER:
                return value
            if tok.type is TokenType.STRING and _INTEGER_TEXT.fullmatch(str(value)):
                return number_value(str(value))
        expected = {
            AttrType.STRING: "a quoted string",
            AttrType.NUMBER: "an unquoted number",
            AttrType.INTEGER: "an unquoted integer",
            AttrType.ID_STRING: "a quoted integer id",
            AttrType.VERSION: "a version number",
        }[wanted]
        raise self.error(f"expected {expected} for {shown(key_tok.text)}, found {_describe(tok)}", tok)

    def string_list(self, key_tok: Token, spec: AttrSpec | None) -> tuple[str, ...]:
        wanted = spec.type if spec is not None else AttrType.STRING
        tok = self.next()
        if tok.type is not TokenType.LPAREN:
            raise self.error(f"expected '(' to open a list, found {_describe(tok)}", tok)
        items: list[str] = []
        while True:
            tok = self.next()
            if tok.type is TokenType.RPAREN and not items:
                raise self.error("expected a non-empty list of quoted strings, found ')'", tok)
            if tok.type is not TokenType.STRING:
                raise self.error(f"expected a quoted string in the list, found {_describe(tok)}", tok)
            items.append(str(self._typed(tok, wanted, key_tok)))
            tok = self.next()
            if tok.type is TokenType.RPAREN:
                return tuple(items)
            if tok.type is not TokenType.COMMA:
                raise self.error(f"expected ',' or ')' in the list, found {_describe(tok)}", tok)

    def filter(self) -> Filter:
        clauses = [self.clause()]
        while True:
            tok = self.next()
            if tok.type is TokenType.EOF:
                return Filter(self.schema.kind, tuple(clauses))
            if _is_word(tok, "and"):
                clauses.append(self.clause())
                continue
            if _is_word(tok, "or"):
                raise self.error("'OR' is not supported (only AND joins clauses)", tok)
            raise self.error(f"expected 'AND' or end of input, found {_describe(tok)}", tok)

    def order_item(self) -> OrderBy:
        key, _, _ = self.identifier()
        tok = self.next()
        ascending = True
        if _is_word(tok, "asc") or _is_word(tok, "desc"):
            ascending = tok.text.lower() == "asc"
            tok = self.next()
        if tok.type is not TokenType.EOF:
            raise self.error(f"expected 'ASC', 'DESC' or end of input, found {_describe(tok)}", tok)
        return OrderBy(key, ascending)


def parse_filter(text: str | None, kind: SearchKind = SearchKind.RUNS) -> Filter:
    """Parse a filter string for ``kind``; ``None``, ``""`` or blanks give the empty filter."""
    if text is None:
        return Filter(kind)
    if not isinstance(text, str):
        kind_name = type(text).__name__
        raise InvalidParameterValue(f"Invalid search expression: expected a string, got {kind_name}")
    if not text.strip():
        return Filter(kind)
    return _Cursor(text, schema_for(kind)).filter()


def parse_order_by(
    items: Sequence[str] | str | None, kind: SearchKind = SearchKind.RUNS
) -> tuple[OrderBy, ...]:
    """Parse ``order_by`` items (``"<identifier> [ASC|DESC]"``); a repeated key is an error."""
    if items is None:
        return ()
    if isinstance(items, str):
        items = [items]
    result: list[OrderBy] = []
    seen: set[Key] = set()
    schema = schema_for(kind)
    for item in items:
        if not isinstance(item, str):
            kind_name = type(item).__name__
            raise InvalidParameterValue(f"Invalid order_by clause: expected a string, got {kind_name}")
        if not item.strip():
            raise syntax_error(item, "empty order_by clause", 0)
        order = _Cursor(item, schema, order_by=True).order_item()
        if order.key in seen:
            raise syntax_error(item, f"duplicate order_by key {order.key.to_string()!r}", 0)
        seen.add(order.key)
        result.append(order)
    return tuple(result)
