"""Columnar batches: what ``scoreBatch`` passes from stage to stage.

A ``Batch`` holds ``n`` rows as columns. A column is a Python list (any values, None
for null), a 1-D float64 array (numbers, no nulls) or a 2-D float64 array (one vector
per row, all of one size, no nulls). Stages that vectorize ask for ``floats(name)`` or
``matrix(name)``; these return None when the column does not fit (a null, a string, a
ragged vector), and the stage then scores that batch row by row, so a vectorized
stage and its ``scoreInstance`` always agree.

From a pandas DataFrame, ``pd.NA`` is null. A float64 column cannot tell null from NaN
(pandas writes None into it as NaN), and Spark's stages treat the two differently: give
columns that hold nulls an object or nullable dtype (``Float64``) to keep them null.

>>> b = Batch.of([{"x": 1.0, "v": [1.0, 2.0]}, {"x": 3.0, "v": [3.0, 4.0]}])
>>> b.matrix("v").shape, b.floats("x").tolist()
((2, 2), [1.0, 3.0])
>>> b.with_columns({"y": b.floats("x") * 2}).rows()[1]["y"]
6.0
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .vectors import as_array


class Batch:
    def __init__(self, columns: dict[str, Any], n: int):
        self.columns = columns
        self.n = n

    # -- in and out -----------------------------------------------------------------
    @classmethod
    def of(cls, rows: "Iterable[dict] | pd.DataFrame") -> "Batch":
        if isinstance(rows, pd.DataFrame):
            return cls({c: [None if v is pd.NA else v for v in rows[c].tolist()] for c in rows.columns}, len(rows))
        rows = list(rows)
        for r in rows:
            if not isinstance(r, dict):
                raise TypeError(f"scoreBatch takes dicts or a pandas DataFrame, got a {type(r).__name__}")
        return cls.from_rows(rows)

    @classmethod
    def from_rows(cls, rows: list[dict], like: "Batch | None" = None) -> "Batch":
        """Rows as columns: ``like``'s columns first (so a batch keeps its column order
        through a row-by-row stage), then any new ones."""
        names = dict.fromkeys(like.columns if like is not None else ())
        for r in rows:
            names.update(dict.fromkeys(r))
        return cls({c: [r.get(c, _MISSING) for r in rows] for c in names}, len(rows))

    def rows(self) -> list[dict]:
        if self.n == 0:
            return []
        cols = {k: _as_list(v) for k, v in self.columns.items()}
        keys = list(cols)
        out = []
        for values in zip(*cols.values()):
            out.append({k: v for k, v in zip(keys, values) if v is not _MISSING})
        return out

    def frame(self) -> pd.DataFrame:
        """As a DataFrame; a column holding nulls is of object dtype, so they stay None
        (and apart from NaN)."""
        data = {}
        for k, v in self.columns.items():
            values = [None if x is _MISSING else x for x in _as_list(v)]
            data[k] = pd.Series(values, dtype=object) if any(x is None for x in values) else values
        return pd.DataFrame(data, index=range(self.n), columns=list(self.columns))

    # -- columns --------------------------------------------------------------------
    def column(self, name: str, who: str = "scoreBatch") -> Any:
        col = self.columns.get(name)
        if col is None:
            raise KeyError(f"{who}: the rows have no column {name!r}; they have {', '.join(self.columns) or 'none'}")
        return col

    def floats(self, name: str) -> np.ndarray | None:
        """The column as float64 when every value is a (non-null, non-bool) number."""
        col = self.columns.get(name)
        if isinstance(col, np.ndarray):
            return col if col.ndim == 1 else None
        if col is None or not all(isinstance(v, Real) and not isinstance(v, bool) for v in col):
            return None
        arr = np.asarray(col, dtype=np.float64)
        self.columns[name] = arr
        return arr

    def matrix(self, name: str) -> np.ndarray | None:
        """The column as an (n, size) float64 array when every value is a vector of one size."""
        col = self.columns.get(name)
        if isinstance(col, np.ndarray):
            return col if col.ndim == 2 else None
        if col is None or not col:
            return None
        try:
            arrays = [_vector(v) for v in col]
        except (TypeError, ValueError):
            return None
        if any(a is None for a in arrays) or len({a.size for a in arrays}) != 1:
            return None
        arr = np.stack(arrays)
        self.columns[name] = arr
        return arr

    def with_columns(self, new: dict[str, Any]) -> "Batch":
        return Batch({**self.columns, **new}, self.n)



class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()   # a column some rows of the batch lack (kept lacking on the way out)


def _as_list(col) -> list:
    if isinstance(col, np.ndarray):
        return list(col) if col.ndim == 2 else col.tolist()
    return col


def _vector(v) -> np.ndarray | None:
    if v is None or v is _MISSING or isinstance(v, (str, bytes, bool, Real)):
        return None
    try:
        arr = as_array(v)
    except TypeError:
        return None
    return arr if arr.ndim == 1 else None


def row_by_row(score: Callable[[dict], dict], batch: Batch,
               skipped: type[Exception] | tuple = ()) -> Batch:
    """Score a batch with a stage's single-row ``score(row) -> full row``; rows that raise
    ``skipped`` are left out."""
    out = []
    for row in batch.rows():
        try:
            out.append(score(row))
        except skipped:
            continue
    return Batch.from_rows(out, batch)


def apply_each(fn: Callable[[float], float], values: np.ndarray) -> np.ndarray:
    """``fn`` (a ``math`` function) over each value: the very floats the single-row path
    computes, where numpy's own transcendental kernels may differ in the last bit."""
    return np.fromiter(map(fn, values.ravel().tolist()), dtype=np.float64, count=values.size).reshape(values.shape)


__all__ = ["Batch", "row_by_row", "apply_each"]
