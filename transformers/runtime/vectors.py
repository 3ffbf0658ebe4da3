"""Vectors in the JVM-free runtime: numpy float64 arrays.

Spark saves vectors as a struct ``{type: 0 sparse | 1 dense, size, indices, values}`` and
matrices likewise; these helpers decode them. Rows given to ``scoreInstance`` may hold
dense vectors as numpy arrays or lists, and sparse ones as ``SparseVector`` (or anything
with ``toArray()``, such as pyspark's own vectors).

>>> decode_vector({"type": 0, "size": 4, "indices": [1, 3], "values": [2.0, 5.0]})
array([0., 2., 0., 5.])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from palette.errors import ScoringTypeError


@dataclass(frozen=True)
class SparseVector:
    size: int
    indices: tuple[int, ...]
    values: tuple[float, ...]

    def toArray(self) -> np.ndarray:
        out = np.zeros(self.size)
        out[list(self.indices)] = self.values
        return out


def decode_vector(v: dict | None) -> np.ndarray | None:
    if v is None:
        return None
    if v["type"] == 1:
        return np.asarray(v["values"], dtype=np.float64)
    out = np.zeros(v["size"])
    out[np.asarray(v["indices"], dtype=np.int64)] = v["values"]
    return out


def decode_matrix(m: dict) -> np.ndarray:
    """Spark's matrix struct (column-major unless isTransposed) as a 2-D array."""
    rows, cols = m["numRows"], m["numCols"]
    if m["type"] == 1:
        values = np.asarray(m["values"], dtype=np.float64)
        return values.reshape((rows, cols)) if m["isTransposed"] else values.reshape((cols, rows)).T
    dense = np.zeros((rows, cols))
    col_ptrs, row_idx, values = m["colPtrs"], m["rowIndices"], m["values"]
    major = rows if m["isTransposed"] else cols
    for j in range(major):
        for k in range(col_ptrs[j], col_ptrs[j + 1]):
            if m["isTransposed"]:
                dense[j, row_idx[k]] = values[k]
            else:
                dense[row_idx[k], j] = values[k]
    return dense


def is_sparse(v) -> bool:
    """A sparse vector (ours, pyspark's): its stored entries are what some stages visit."""
    return hasattr(v, "indices") and hasattr(v, "values") and not isinstance(v, np.ndarray)


def as_array(v, what: str = "vector") -> np.ndarray:
    """A row's vector value as a float64 array; raises naming what was expected."""
    if isinstance(v, np.ndarray):
        return v.astype(np.float64, copy=False)
    if hasattr(v, "toArray"):
        return np.asarray(v.toArray(), dtype=np.float64)
    if isinstance(v, (list, tuple)):
        return np.asarray(v, dtype=np.float64)
    raise ScoringTypeError(f"{what} must be a vector (numpy array, list or SparseVector), got {type(v).__name__}")
