"""Dataset digests, byte-identical to MLflow's: the first 8 hex characters of an md5 over hashes.

Both digests look at no more than :data:`MAX_ROWS` rows (pandas) or elements (numpy) of the data, plus
its full size, so a digest stays cheap on large datasets.

* pandas: ``pandas.util.hash_pandas_object`` of the first rows, restricted to the numeric columns
  and the columns holding only ``str`` values (judged over the *whole* frame, as MLflow does), then
  the row count as an int64 and every column label's ``str`` (UTF-8).
* numpy: for each array (dict values in key order, features before targets),
  ``pandas.util.hash_array`` of its first flattened elements (the element count when those cannot be
  hashed), then each dimension of its shape as an int64.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameterValue

if TYPE_CHECKING:
    import pandas as pd
    from typing_extensions import Buffer

__all__ = ["MAX_ROWS", "md5_prefix", "numpy_digest", "pandas_digest"]

#: Rows (pandas) or flattened elements (numpy) that go into a digest.
MAX_ROWS = 10_000


def md5_prefix(parts: list[Buffer]) -> str:
    """The first 8 hex characters of the md5 of ``parts`` fed in order (MLflow's normalized digest)."""
    if not parts:
        raise InvalidParameterValue("No hashable elements were provided for md5 digest creation")
    md5 = hashlib.md5(usedforsecurity=False)
    for part in parts:
        md5.update(part)
    return md5.hexdigest()[:8]


def pandas_digest(df: pd.DataFrame) -> str:
    """MLflow's digest of a pandas DataFrame."""
    import numpy as np
    import pandas as pd

    head = df.head(MAX_ROWS)
    # A column counts as text only if every value in the whole frame is exactly a ``str``.
    only_str = (df.map(type) == str).all(axis=0)  # noqa: E721 - MLflow's exact test, elementwise
    text_columns = head.columns[only_str]
    numeric_columns = head.select_dtypes(include=[np.number]).columns
    hashed = head[text_columns.union(numeric_columns)]
    parts: list[Buffer] = [pd.util.hash_pandas_object(hashed).values, np.int64(len(df)).tobytes()]
    parts.extend(str(label).encode() for label in df.columns)
    return md5_prefix(parts)


def _array_parts(array: Any) -> list[Buffer]:
    import numpy as np
    import pandas as pd

    head = array.flatten()[:MAX_ROWS]
    parts: list[Buffer] = []
    try:
        parts.append(pd.util.hash_array(head))
    except TypeError:
        parts.append(np.int64(head.size).tobytes())
    parts.extend(np.int64(dim).tobytes() for dim in array.shape)
    return parts


def numpy_digest(features: Any, targets: Any = None) -> str:
    """MLflow's digest of numpy ``features`` and optional ``targets`` (arrays or dicts of arrays)."""
    parts: list[Buffer] = []
    for item in (features, targets):
        if item is None:
            continue
        if isinstance(item, dict):
            for key in sorted(item):
                parts.extend(_array_parts(item[key]))
        else:
            parts.extend(_array_parts(item))
    return md5_prefix(parts)
