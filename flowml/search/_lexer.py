"""Tokenizer for filter strings and ``order_by`` items.

Tokens carry their 0-based character position so every error can point at the offending text.
Identifiers are lexed whole: ``metrics.acc``, ``tags.mlflow.runName``, ``params.`model type```,
``params."model type"`` and a bare ``start_time`` or ```Run name``` are each one IDENT token.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from flowml.search._errors import syntax_error

__all__ = ["Token", "TokenType", "number_value", "tokenize"]


class TokenType(enum.Enum):
    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    OP = "comparator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EOF = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    type: TokenType
    text: str  # the source text of the token
    pos: int
    #: STRING: the unquoted text; NUMBER: int or float; IDENT: the (unquoted) key name.
    value: str | int | float | None = None
    #: IDENT only: the text before the first dot (``metrics`` in ``metrics.acc``), else None.
    prefix: str | None = None
    #: STRING: the quote character; IDENT: the quote of a bare quoted name, else None.
    quote: str | None = None


_WORD = re.compile(r"[^\W\d]\w*")
_RAW_KEY = re.compile(r"\w+(?:\.\w+)*")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_OP = re.compile(r"[=!<>]+")
_WORD_CHAR = re.compile(r"[\w.]")
_PUNCT = {"(": TokenType.LPAREN, ")": TokenType.RPAREN, ",": TokenType.COMMA}
_QUOTES = "'\"`"
#: Integers outside BIGINT are kept as floats so they can always be bound as SQL parameters.
_INT_LIMIT = 2**63


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted run at ``start``; a doubled quote inside stands for one. Returns (value, end)."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise syntax_error(text, f"unterminated quoted text {text[start : start + 20]!r}", start)
        parts.append(text[i:j])
        if j + 1 < len(text) and text[j + 1] == quote:
            parts.append(quote)
            i = j + 2
            continue
        return "".join(parts), j + 1


def number_value(lexeme: str) -> int | float:
    if any(c in lexeme for c in ".eE"):
        return float(lexeme)
    digits = lexeme.lstrip("-")
    if len(digits) <= 19 and abs(int(lexeme)) < _INT_LIMIT:
        return int(lexeme)
    return float(lexeme)


def _read_ident(text: str, start: int) -> Token:
    """An identifier: a word or backticked name, optionally followed by ``.key``."""
    if text[start] == "`":
        head, i = _read_quoted(text, start)
        head_quote: str | None = "`"
    else:
        match = _WORD.match(text, start)
        assert match is not None  # the caller checked the first character
        head, i = match.group(), match.end()
        head_quote = None
    if i >= len(text) or text[i] != ".":
        return Token(TokenType.IDENT, text[start:i], start, head, None, head_quote)
    dot = i
    i += 1
    if i < len(text) and text[i] in _QUOTES:
        key, i = _read_quoted(text, i)
    else:
        match = _RAW_KEY.match(text, i)
        if match is None:
            raise syntax_error(text, f"expected a key after {text[start : dot + 1]!r}", dot)
        key, i = match.group(), match.end()
    return Token(TokenType.IDENT, text[start:i], start, key, head, None)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an EOF token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
        elif ch in "'\"":
            value, end = _read_quoted(text, i)
            tokens.append(Token(TokenType.STRING, text[i:end], i, value, quote=ch))
            i = end
        elif ch == "`" or _WORD.match(ch):
            token = _read_ident(text, i)
            tokens.append(token)
            i = token.pos + len(token.text)
        elif (number := _NUMBER.match(text, i)) is not None:
            end = number.end()
            if end < n and _WORD_CHAR.match(text[end]):
                bad = re.match(r"[\w.\-+]*", text[i:]).group()  # type: ignore[union-attr]
                raise syntax_error(text, f"invalid number {bad!r}", i)
            lexeme = number.group()
            tokens.append(Token(TokenType.NUMBER, lexeme, i, number_value(lexeme)))
            i = end
        elif (op := _OP.match(text, i)) is not None:
            tokens.append(Token(TokenType.OP, op.group(), i))
            i = op.end()
        else:
            raise syntax_error(text, f"unexpected character {ch!r}", i)
    tokens.append(Token(TokenType.EOF, "", n))
    return tokens
