"""Metric points travel to PostgreSQL as six array parameters (``store/_pg_arrays.py``): numbers in
PostgreSQL's binary array format, strings as text array literals. Whatever goes in must come back
out of ``unnest`` exactly, on a real server."""

from __future__ import annotations

import math
import struct

import psycopg
import pytest

from flowml.store import _pg_arrays
from flowml.store._pg_batch import UNNEST_POINTS

pytestmark = pytest.mark.postgres

_ODD_STRINGS = ['he said "hi"', "back\\slash", "{braces}, commas", " spaced ", "ünïcödé ✓", "NULL", ""]
_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -2.2250738585072014e-308,
    1.7976931348623157e308,
    math.inf,
    -math.inf,
    0.1,
    -1e-300,
]
_INTS = [0, -1, 2**63 - 1, -(2**63), 1_700_000_000_000]


def test_every_value_comes_back_exactly(postgres_uri: str) -> None:
    rows = [
        (
            f"run{i % 3}",
            _ODD_STRINGS[i % len(_ODD_STRINGS)],
            _INTS[i % len(_INTS)],
            _INTS[-1 - i % len(_INTS)],
            v,
            i % 2 == 0,
        )
        for i, v in enumerate(_FLOATS * 3)
    ]
    with psycopg.connect(postgres_uri.replace("postgresql+psycopg://", "postgresql://")) as conn:
        _pg_arrays.register(conn.adapters)
        back = conn.execute(f"SELECT u.* FROM {UNNEST_POINTS}", _pg_arrays.point_arrays(rows)).fetchall()
    assert len(back) == len(rows)
    for got, sent in zip(back, rows, strict=True):
        assert got[:4] == sent[:4] and got[5] is sent[5]
        assert struct.pack(">d", got[4]) == struct.pack(">d", sent[4])  # bit for bit: -0.0, denormals


def test_a_null_key_reaches_the_database_as_null(postgres_uri: str) -> None:
    rows = [("r", None, 1, 2, 3.0, False), ("r", 'a "b"', 1, 2, 3.0, False)]
    with psycopg.connect(postgres_uri.replace("postgresql+psycopg://", "postgresql://")) as conn:
        _pg_arrays.register(conn.adapters)
        keys = conn.execute(f'SELECT u."key" FROM {UNNEST_POINTS}', _pg_arrays.point_arrays(rows)).fetchall()  # type: ignore[arg-type]
    assert keys == [(None,), ('a "b"',)]
