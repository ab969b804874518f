"""A group's metric points as six PostgreSQL array parameters (``unnest`` reads them back as rows).

Numbers travel as binary arrays packed by ``struct`` in C: formatting them as text was most of the
cost (``repr`` of 800 floats took 0.4 ms here, the binary form 0.06 ms), and psycopg's own list
dumpers walk every element in Python. Strings travel as text array literals built with ``str.join``.
The binary classes need their dumpers registered on the connection (:func:`register`).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from flowml.store.tables import PointRow

__all__ = ["BoolArray", "Float8Array", "Int8Array", "point_arrays", "register", "text_array"]


class Int8Array(bytes):
    """A one-dimensional ``int8[]`` in PostgreSQL's binary array format."""

    OID, ELEMENT_OID, CODE, WIDTH = 1016, 20, "q", 8


class Float8Array(bytes):
    """A one-dimensional ``float8[]`` in PostgreSQL's binary array format."""

    OID, ELEMENT_OID, CODE, WIDTH = 1022, 701, "d", 8


class BoolArray(bytes):
    """A one-dimensional ``bool[]`` in PostgreSQL's binary array format."""

    OID, ELEMENT_OID, CODE, WIDTH = 1000, 16, "?", 1


_Binary = type[Int8Array] | type[Float8Array] | type[BoolArray]


def _binary(kind: _Binary, values: Sequence[Any]) -> bytes:
    """Header (1 dimension, no NULLs, element type, length, lower bound 1), then each element as
    its 4-byte length and big-endian value: the values are packed in one call, then interleaved
    with the lengths byte lane by byte lane (strided slice copies, all in C)."""
    n, width = len(values), kind.WIDTH
    packed = struct.pack(f">{n}{kind.CODE}", *values)
    stride = 4 + width
    body = bytearray(stride * n)
    body[3::stride] = bytes([width]) * n  # the lengths' low bytes; their high bytes stay 0
    for lane in range(width):
        body[4 + lane :: stride] = packed[lane::width]
    return kind(struct.pack(">iiIii", 1, 0, kind.ELEMENT_OID, n, 1) + body)


def text_array(values: Sequence[str | None]) -> str:
    """A ``varchar[]`` as a text literal (psycopg sends a ``str`` untyped: the statement casts it)."""
    distinct = set(values)
    if None in distinct or any('"' in v or "\\" in v for v in distinct if v is not None):
        quoted = [
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        ]
        return "{" + ",".join(quoted) + "}"
    return '{"' + '","'.join(values) + '"}'  # type: ignore[arg-type]  # no None here


def point_arrays(rows: Iterable[PointRow]) -> tuple[Any, ...]:
    """The rows' six columns, for ``unnest(%s::varchar[], %s::varchar[], %s::int8[], ...)``.

    A NaN value is stored as 0.0 with is_nan set before it gets here; ±inf pack as such.
    """
    run_ids, keys, steps, timestamps, values, nans = zip(*rows, strict=True)
    return (
        text_array(run_ids),
        text_array(keys),
        _binary(Int8Array, steps),
        _binary(Int8Array, timestamps),
        _binary(Float8Array, values),
        _binary(BoolArray, nans),
    )


def register(adapters: Any) -> None:
    """Teach a psycopg connection's (or a global) adapters map to send the binary arrays as is."""
    for kind, dumper in _dumpers().items():
        adapters.register_dumper(kind, dumper)


@functools.cache
def _dumpers() -> dict[type, type]:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    def dumper(kind: _Binary) -> type:
        def dump(self: Any, obj: bytes) -> bytes:
            return obj

        return type(
            f"{kind.__name__}Dumper", (Dumper,), {"format": Format.BINARY, "oid": kind.OID, "dump": dump}
        )

    return {kind: dumper(kind) for kind in (Int8Array, Float8Array, BoolArray)}
