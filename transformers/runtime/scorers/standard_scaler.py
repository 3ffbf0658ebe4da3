"""StandardScalerModel: ``(x - mean) * (1 / std)``, in Spark's order of operations.

Spark multiplies by a precomputed ``1 / std`` (0 where std is 0) rather than dividing,
and so does this scorer, so the last bits agree. Like Spark's transform it loops over
the vector's own entries: a vector shorter than the model's is scaled over its length,
an entry past the model's size is an error (for a sparse vector without ``withMean``
only its stored entries count, and it keeps its size), and a null vector is an error (with neither withMean nor withStd the vector passes
through, null too).
"""
from __future__ import annotations

import numpy as np

from ..batch import with_nulls
from ..vectors import as_array, decode_vector, is_sparse
from ..stage import StageScorer, scorer
from palette.errors import ScoringError


def vector_in(stage: StageScorer, row: dict, col: str, size: int, dense: bool) -> np.ndarray:
    """The row's vector as an array, failing where Spark's scaler does: null, or an
    entry at index ``size`` or past it (``dense``: any entry; else a sparse vector's
    stored ones)."""
    x = stage.features_of(row, col, None)
    v = row[col]
    sparse = not dense and is_sparse(v)
    last = max((int(i) for i in v.indices), default=-1) if sparse else x.size - 1
    if last >= size:
        raise ScoringError(f"{stage.uid}: column {col!r} holds a vector with an entry at index {last}; "
                         f"the model has {size} features (Spark's transform fails on it)")
    return x


def scale_prefix(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``x`` with its first ``len(scale)`` entries (or all, if shorter) times ``scale``."""
    k = min(x.size, scale.size)
    out = x.copy()
    out[:k] = x[:k] * scale[:k]
    return out


@scorer("org.apache.spark.ml.feature.StandardScalerModel")
class StandardScalerScorer(StageScorer):
    supports = 'withMean, withStd; x * (1/std) as Spark computes it'
    limitations = 'output is a dense numpy array, also for a sparse input'
    batch_fallback = "for vectors of another size than the model's (Spark scales a shorter one)"

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        data = self.read_parquet()[0]
        std, mean = decode_vector(data["std"]), decode_vector(data["mean"])
        self.with_mean = self.param("withMean", False)
        self.with_std = self.param("withStd", True)
        self.shift = mean
        with np.errstate(divide="ignore"):
            self.scale = np.where(std != 0.0, 1.0 / std, 0.0)
        self.input, self.output = self.required("inputCol"), self.required("outputCol")

    def score_row(self, row: dict) -> dict:
        v = row.get(self.input)
        if type(v) is np.ndarray and v.shape == self.scale.shape and v.dtype == np.float64:
            return {self.output: self._scaled(v)}         # the common case: a dense vector of the model's size
        if not (self.with_mean or self.with_std):
            v = row[self.input]
            return {self.output: None if v is None else as_array(v, f"column {self.input!r}")}
        x = vector_in(self, row, self.input, self.scale.size, dense=self.with_mean)
        if self.with_mean:
            x = x - self.shift[:x.size]
        return {self.output: scale_prefix(x, self.scale) if self.with_std else x}

    def score_columns(self, batch) -> dict | None:
        """Vectors of the model's size; other sizes row by row."""
        if not (self.with_mean or self.with_std):
            got = batch.nullable_matrix(self.input)
            return None if got is None else {self.output: with_nulls(*got)}
        X = self.feature_matrix(batch, self.input, None)
        if X is None or X.shape[1] != self.scale.size:
            return None
        return {self.output: self._scaled(X)}

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        """Vectors (a row, or rows of a matrix) of the model's size, scaled."""
        if self.with_mean:
            X = X - self.shift
        if self.with_std:
            X = X * self.scale
        return X
