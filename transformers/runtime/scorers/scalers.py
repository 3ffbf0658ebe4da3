"""MinMaxScalerModel and MaxAbsScalerModel, in Spark's order of operations.

MinMaxScaler: per feature ``scale = (max - min) / (originalMax - originalMin)``
precomputed, then ``(x - originalMin) * scale + min``; a constant feature (range 0)
maps to ``(min + max) / 2``; NaN stays NaN.
MaxAbsScaler: ``x * (1 / maxAbs)`` with a precomputed reciprocal (1.0 where maxAbs is 0,
so such a feature passes through unchanged).
A null input vector is an error, as in Spark. MinMaxScaler requires the model's size;
MaxAbsScaler, like Spark, scales a shorter vector over its own length and fails on an
entry past the model's size (a sparse vector's stored entries only).
"""
from __future__ import annotations

import numpy as np

from ..vectors import decode_vector
from ..stage import StageScorer, scorer
from .standard_scaler import scale_prefix, vector_in


@scorer("org.apache.spark.ml.feature.MinMaxScalerModel")
class MinMaxScalerScorer(StageScorer):
    supports = 'min/max params; constant features -> (min+max)/2; NaN kept'
    limitations = '—'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        data = self.read_parquet()[0]
        self.orig_min = decode_vector(data["originalMin"])
        orig_max = decode_vector(data["originalMax"])
        self.min = float(self.param("min", 0.0))
        mx = float(self.param("max", 1.0))
        scale = mx - self.min
        self.constant = (self.min + mx) / 2
        rng = orig_max - self.orig_min
        with np.errstate(divide="ignore", invalid="ignore"):
            self.scale = np.where(rng != 0, scale / np.where(rng != 0, rng, 1.0), 0.0)
        self.input, self.output = self.required("inputCol"), self.required("outputCol")

    def score_row(self, row: dict) -> dict:
        x = self.features_of(row, self.input, self.scale.size).copy()
        for i in range(self.scale.size):
            if not np.isnan(x[i]):
                if self.scale[i] != 0:
                    x[i] = (x[i] - self.orig_min[i]) * self.scale[i] + self.min
                else:
                    x[i] = self.constant
        return {self.output: x}

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch, self.input, self.scale.size)
        if X is None:
            return None
        scaled = np.where(self.scale != 0, (X - self.orig_min) * self.scale + self.min, self.constant)
        return {self.output: np.where(np.isnan(X), X, scaled)}


@scorer("org.apache.spark.ml.feature.MaxAbsScalerModel")
class MaxAbsScalerScorer(StageScorer):
    supports = 'x * (1/maxAbs); maxAbs 0 leaves the feature unchanged'
    limitations = 'output is a dense numpy array, also for a sparse input'
    batch_fallback = "for vectors of another size than the model's (Spark scales a shorter one)"

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        max_abs = decode_vector(self.read_parquet()[0]["maxAbs"])
        with np.errstate(divide="ignore"):
            self.scale = np.where(max_abs != 0.0, 1.0 / max_abs, 1.0)   # Spark: 0 -> 1.0
        self.input, self.output = self.required("inputCol"), self.required("outputCol")

    def score_row(self, row: dict) -> dict:
        x = vector_in(self, row, self.input, self.scale.size, dense=False)
        return {self.output: scale_prefix(x, self.scale)}

    def score_columns(self, batch) -> dict | None:
        """Vectors of the model's size; other sizes row by row."""
        X = self.feature_matrix(batch, self.input, None)
        return None if X is None or X.shape[1] != self.scale.size else {self.output: X * self.scale}
