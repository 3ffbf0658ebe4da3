"""Interaction: the products of every combination of one value from each input column
(numbers, booleans, vectors), as Spark's ``Interaction.transform`` computes them.

The output has ``prod(size of each input)`` entries (a number counts as size 1), the
first input varying slowest; each entry is ``((x_last * x_{last-1}) * ...) * x_first``
multiplied in that order, as Spark builds it from the last column back. Like Spark's
``FeatureEncoder`` it visits every entry of a number or a dense vector but only the
stored entries of a sparse vector, so a missing entry gives 0 even against NaN or
infinity. The result is dense or sparse as Spark's ``Vector.compressed`` picks (same
values either way). A null input is an error, and so is a boolean column (Spark 4.0's
Interaction fails on one).

Limitation: Spark one-hot encodes inputs that carry *nominal* ML attributes (for
example a StringIndexer's output column, or a vector assembled from one) by their
number of values. Those attributes live in the DataFrame schema at transform time and
are not saved with the stage, so this scorer treats every input as numeric — which is
what Spark does for plain numeric columns and for vectors whose attributes are numeric
or binary (a VectorAssembler of numeric columns, a OneHotEncoder's output). With a
nominal input it would differ from Spark, and it cannot detect that case.
"""
from __future__ import annotations

import numpy as np

from ..vectors import SparseVector, is_sparse
from ..stage import StageScorer, scorer
from palette.errors import ArtifactError, ScoringError, ScoringTypeError


def _active(v, col: str, uid: str) -> tuple[int, list[tuple[int, float]]]:
    """(size, the entries Spark's ``FeatureEncoder`` visits): a number is one entry, a dense
    vector every entry, a sparse vector its stored entries only."""
    if v is None:
        raise ScoringError(f"Interaction {uid}: Values to interact cannot be null (column {col!r}).")
    if isinstance(v, (bool, np.bool_)):
        raise ScoringError(f"Interaction {uid}: column {col!r} is boolean; Spark's Interaction fails on "
                         "boolean columns (its attribute decoding requires a numeric column)")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return 1, [(0, float(v))]
    if is_sparse(v):
        return int(v.size), [(int(i), float(x)) for i, x in zip(v.indices, v.values)]
    if hasattr(v, "toArray"):
        arr = np.asarray(v.toArray(), dtype=np.float64)
    elif isinstance(v, (list, tuple, np.ndarray)):
        arr = np.asarray(v, dtype=np.float64)
    else:
        try:                                   # Decimal and other numbers Spark casts to double
            return 1, [(0, float(v))]
        except (TypeError, ValueError):
            raise ScoringTypeError(f"Interaction {uid}: column {col!r} holds {type(v).__name__}, "
                            "not a number or a vector") from None
    if arr.ndim != 1:
        raise ScoringTypeError(f"Interaction {uid}: column {col!r} is not a vector")
    return arr.size, list(enumerate(arr.tolist()))


def compressed(size: int, indices: list[int], values: list[float]):
    """Spark's ``Vectors.sparse(size, indices, values).compressed``: sparse (explicit zeros
    dropped) when ``1.5 * (nnz + 1) < size``, else dense."""
    nz = [(i, v) for i, v in zip(indices, values) if v != 0.0]        # NaN counts as non-zero
    if 1.5 * (len(nz) + 1.0) < size:
        return SparseVector(size, tuple(i for i, _ in nz), tuple(v for _, v in nz))
    out = np.zeros(size)
    out[indices] = values
    return out


@scorer("org.apache.spark.ml.feature.Interaction")
class InteractionScorer(StageScorer):
    supports = 'numeric and vector inputs, treated as numeric'
    limitations = ('inputs Spark would one-hot encode because they carry nominal ML attributes (e.g. a '
                   "StringIndexer's output) are not detected: attributes are not saved, so every input is "
                   'treated as numeric; vector sizes are not checked against attributes')

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.inputs = list(self.param("inputCols") or [])
        if not self.inputs:
            raise ArtifactError(f"Interaction {self.uid}: Input cols must have non-zero length.")
        self.output = self.required("outputCol")

    def score_row(self, row: dict) -> dict:
        fields = [_active(row[c], c, self.uid) for c in self.inputs]
        indices, values, size = [0], [1.0], 1
        for field_size, entries in reversed(fields):
            new_i, new_v = [], []
            for i, a in entries:
                for pi, pv in zip(indices, values):
                    new_i.append(pi + i * size)
                    new_v.append(pv * a)
            indices, values, size = new_i, new_v, size * field_size
        return {self.output: compressed(size, indices, values)}

    def _field(self, batch, col: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, visited) as (n, size) arrays: a number column is one visited entry, a
        dense vector all of its entries, a sparse vector its stored ones. A null raises
        the row path's error; None when the column holds something else or ragged vectors."""
        got = batch.nullable_floats(col)
        if got is not None:
            x, null = got
            self.raise_row_error(batch, null)
            return x[:, None], np.ones((batch.n, 1), dtype=bool)
        got = batch.nullable_matrix(col)
        if got is None:
            return None
        X, null = got
        self.raise_row_error(batch, null)
        stored = batch.stored(col, X.shape[1])
        return X, (np.ones(X.shape, dtype=bool) if stored is None else stored[1])

    def score_columns(self, batch) -> dict | None:
        """Products for every row at once; a row whose result Spark compresses to a
        sparse vector becomes a ``SparseVector`` (a per-row object), dense rows stay rows
        of one matrix."""
        fields = [self._field(batch, c) for c in self.inputs]
        if any(f is None for f in fields):
            return None
        n = batch.n
        values, visited = np.ones((n, 1)), np.ones((n, 1), dtype=bool)
        for X, seen in reversed(fields):
            values = (values[:, None, :] * X[:, :, None]).reshape(n, -1)
            visited = (visited[:, None, :] & seen[:, :, None]).reshape(n, -1)
        size = values.shape[1]
        nonzero = visited & (values != 0.0)
        dense = np.where(visited, values, 0.0)
        sparse_rows = 1.5 * (nonzero.sum(axis=1) + 1.0) < size
        if not sparse_rows.any():
            return {self.output: dense}
        out = list(dense)
        for r in np.flatnonzero(sparse_rows).tolist():
            idx = np.flatnonzero(nonzero[r])
            out[r] = SparseVector(size, tuple(idx.tolist()), tuple(values[r, idx].tolist()))
        return {self.output: out}
