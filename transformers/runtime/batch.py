"""Columnar batches: what ``scoreBatch`` passes from stage to stage.

A ``Batch`` holds ``n`` rows as columns. A column is a Python list (any values, None
for null), a 1-D float64 array (numbers), a 2-D float64 array (one vector per row, all
of one size), or a ``Masked`` array: one of those arrays with a mask of the rows that
are null. Stages read columns with ``nullable_floats(name)`` / ``nullable_matrix(name)``
(values and null mask) or ``floats`` / ``matrix`` (no nulls); a reader returns None when
the column does not fit (a string among numbers, a ragged vector, a row lacking the
column), and the stage then scores that batch row by row, so that it scores or fails
exactly as ``scoreInstance`` does. Reading a list column converts it once (the result
is cached); the column itself keeps its Python values, so an int column passed through
a stage comes out as ints, as from ``scoreInstance``.

From a pandas DataFrame, ``pd.NA`` is null. A float64 column cannot tell null from NaN
(pandas writes None into it as NaN), and Spark's stages treat the two differently: give
columns that hold nulls an object or nullable dtype (``Float64``) to keep them null.

>>> b = Batch.of([{"x": 1.0, "v": [1.0, 2.0]}, {"x": None, "v": [3.0, 4.0]}])
>>> values, null = b.nullable_floats("x")
>>> b.matrix("v").shape, null.tolist()
((2, 2), [False, True])
>>> b.with_columns({"y": with_nulls(values * 2, null)}).rows()[1]["y"] is None
True
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .vectors import as_array, is_sparse
from palette.errors import InvalidArgumentType, MissingColumn


class Masked:
    """A numeric (1-D) or vector (2-D) array whose rows ``null`` marks are null; the
    values there are NaN and mean nothing."""
    __slots__ = ("values", "null")

    def __init__(self, values: np.ndarray, null: np.ndarray):
        self.values, self.null = values, null

    def take(self, index) -> "Masked":
        return Masked(self.values[index], self.null[index])


def with_nulls(values: np.ndarray, null: np.ndarray):
    """An output column: ``values``, null where ``null`` is set."""
    return Masked(values, null) if null.any() else values


_PLAIN_NUMBERS = {float, int, type(None)}
_PLAIN_NUMBERS_AND_BOOL = _PLAIN_NUMBERS | {bool}


class Batch:
    def __init__(self, columns: dict[str, Any], n: int, cache: dict | None = None):
        self.columns = columns
        self.n = n
        self._cache = cache if cache is not None else {}   # (name, kind) -> a list column converted

    # -- in and out -----------------------------------------------------------------
    @classmethod
    def of(cls, rows: "Iterable[dict] | pd.DataFrame") -> "Batch":
        if isinstance(rows, pd.DataFrame):
            return cls({c: _frame_column(rows[c]) for c in rows.columns}, len(rows))
        rows = list(rows)
        for r in rows:
            if not isinstance(r, dict):
                raise InvalidArgumentType(f"scoreBatch takes dicts or a pandas DataFrame, got a {type(r).__name__}")
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

    def row(self, i: int) -> dict:
        """Row ``i`` as ``rows()`` gives it (for the row path's error on one row)."""
        out = {}
        for k, col in self.columns.items():
            v = _item(col, i)
            if v is not _MISSING:
                out[k] = v
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
            raise MissingColumn(f"{who}: the rows have no column {name!r}; they have {', '.join(self.columns) or 'none'}")
        return col

    def values(self, name: str) -> list:
        """The column's values as a list (None for null), as ``rows()`` gives them."""
        return _as_list(self.columns[name])

    def nullable_floats(self, name: str, bools: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """(float64 values, null mask) when every value is a number or null (booleans
        count as numbers with ``bools``); else None."""
        col = self.columns.get(name)
        if not isinstance(col, list):
            return self._arrays(col, 1)
        key = (name, "floats+bools" if bools else "floats")
        if key not in self._cache:
            types = set(map(type, col))                 # the common case, plain floats, without isinstance
            ok = types <= (_PLAIN_NUMBERS_AND_BOOL if bools else _PLAIN_NUMBERS) or all(
                v is None or (isinstance(v, Real) and (bools or not isinstance(v, bool))) for v in col)
            if not ok:
                self._cache[key] = None
            elif type(None) not in types:
                self._cache[key] = np.array(col, dtype=np.float64), np.zeros(self.n, dtype=bool)
            else:
                self._cache[key] = (np.array([np.nan if v is None else v for v in col], dtype=np.float64),
                                    np.fromiter((v is None for v in col), dtype=bool, count=self.n))
        return self._cache[key]

    def floats(self, name: str) -> np.ndarray | None:
        """The column as float64 when every value is a (non-null, non-bool) number."""
        got = self.nullable_floats(name)
        return None if got is None or got[1].any() else got[0]

    def nullable_matrix(self, name: str, null_width: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """((n, size) float64, null mask) when every value is a vector of one size or null
        (a null row is NaN; a column of nulls only is ``null_width`` wide); else None."""
        col = self.columns.get(name)
        if not isinstance(col, list) or not col:
            return self._arrays(col, 2)
        key = (name, "matrix")
        if key not in self._cache:
            self._cache[key] = _stack(col)
        got = self._cache[key]
        if got is None or got[0] is not None:
            return got
        return np.full((self.n, null_width), np.nan), got[1]

    def _arrays(self, col, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
        """An array column of ``ndim`` dimensions as (values, null mask); else None."""
        if isinstance(col, np.ndarray):
            return (col, np.zeros(self.n, dtype=bool)) if col.ndim == ndim else None
        if isinstance(col, Masked):
            return (col.values, col.null) if col.values.ndim == ndim else None
        return None

    def matrix(self, name: str) -> np.ndarray | None:
        """The column as an (n, size) float64 array when every value is a vector of one size."""
        got = self.nullable_matrix(name)
        return None if got is None or got[1].any() else got[0]

    def in_every_row(self, name: str) -> bool:
        """Whether every row holds the column (``scoreInstance`` raises KeyError on a row
        that lacks it)."""
        col = self.columns.get(name)
        return col is not None and not (isinstance(col, list) and any(v is _MISSING for v in col))

    def stored(self, name: str, width: int) -> tuple[np.ndarray, np.ndarray] | None:
        """For a column holding sparse vectors: (rows holding one, (n, width) mask of the
        entries each row stores — every entry of a dense vector); None when it holds none."""
        col = self.columns.get(name)
        if not isinstance(col, list):
            return None
        sparse = np.fromiter((is_sparse(v) for v in col), dtype=bool, count=self.n)
        if not sparse.any():
            return None
        mask = np.ones((self.n, width), dtype=bool)
        for r in np.flatnonzero(sparse).tolist():
            mask[r] = False
            mask[r, np.asarray(col[r].indices, dtype=np.intp)] = True
        return sparse, mask

    # -- new batches ----------------------------------------------------------------
    def without(self, names: list[str]) -> "Batch":
        """The batch without the columns ``names``."""
        drop = set(names)
        return Batch({k: v for k, v in self.columns.items() if k not in drop}, self.n,
                     {k: v for k, v in self._cache.items() if k[0] not in drop})

    def with_columns(self, new: dict[str, Any]) -> "Batch":
        cache = {k: v for k, v in self._cache.items() if k[0] not in new}
        return Batch({**self.columns, **new}, self.n, cache)

    def where(self, keep: np.ndarray) -> "Batch":
        """The rows ``keep`` marks (a boolean mask)."""
        index = np.flatnonzero(keep)
        cols = {k: _take(v, index) for k, v in self.columns.items()}
        cache = {k: None if v is None else tuple(None if a is None else a[index] for a in v)
                 for k, v in self._cache.items()}
        return Batch(cols, index.size, cache)


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()   # a column some rows of the batch lack (kept lacking on the way out)


def _frame_column(s: pd.Series):
    """A DataFrame column: float64 as it is (it holds no nulls, only NaN), else its values."""
    if s.dtype == np.float64:
        return s.to_numpy(dtype=np.float64, copy=True)
    return [None if v is pd.NA else v for v in s.tolist()]


def _as_list(col) -> list:
    if isinstance(col, Masked):
        values = list(col.values) if col.values.ndim == 2 else col.values.tolist()
        return [None if n else v for v, n in zip(values, col.null.tolist())]
    if isinstance(col, np.ndarray):
        return list(col) if col.ndim == 2 else col.tolist()
    return col


def _item(col, i: int):
    if isinstance(col, Masked):
        return None if col.null[i] else _item(col.values, i)
    if isinstance(col, np.ndarray):
        return col[i] if col.ndim == 2 else float(col[i])
    return col[i]


def _take(col, index: np.ndarray):
    if isinstance(col, (np.ndarray, Masked)):
        return col[index] if isinstance(col, np.ndarray) else col.take(index)
    return [col[i] for i in index.tolist()]


def _vector(v) -> np.ndarray | None:
    if v is _MISSING or isinstance(v, (str, bytes, bool, Real)):
        return None
    try:
        arr = as_array(v)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


def _stack(col: list) -> tuple[np.ndarray | None, np.ndarray] | None:
    """(matrix with NaN rows at nulls, null mask), (None, mask) when all are null, or
    None when some value is not a vector or the sizes differ."""
    null = np.fromiter((v is None for v in col), dtype=bool, count=len(col))
    arrays = [None if v is None else _vector(v) for v in col]
    sizes = {a.size for a, n in zip(arrays, null.tolist()) if not n and a is not None}
    if any(a is None for a, n in zip(arrays, null.tolist()) if not n) or len(sizes) > 1:
        return None
    if not sizes:
        return None, null
    width = sizes.pop()
    blank = np.full(width, np.nan)
    return np.stack([blank if a is None else a for a in arrays]), null


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


__all__ = ["Batch", "Masked", "with_nulls", "row_by_row", "apply_each"]
