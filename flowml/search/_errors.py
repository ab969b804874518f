"""The one error the grammar raises: INVALID_PARAMETER_VALUE naming the token and its position."""

from __future__ import annotations

from flowml.exceptions import InvalidParameterValue

__all__ = ["shown", "syntax_error"]

_MAX_ECHO = 200


def _echo(text: str) -> str:
    return repr(text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "...")


def shown(text: str, limit: int = 60) -> str:
    """``repr`` of a token's text, shortened for an error message."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def syntax_error(text: str, what: str, pos: int) -> InvalidParameterValue:
    """``Invalid search expression '<text>': <what> at position <pos>`` (0-based character index)."""
    if len(what) > 2 * _MAX_ECHO:
        what = what[:_MAX_ECHO] + "..." + what[-40:]
    return InvalidParameterValue(f"Invalid search expression {_echo(text)}: {what} at position {pos}")
