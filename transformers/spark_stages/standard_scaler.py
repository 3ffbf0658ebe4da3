"""StandardScalerModel: ``(x - mean) * (1 / std)``, in Spark's order of operations.

Spark multiplies by a precomputed ``1 / std`` (0 where std is 0) rather than dividing,
and so does this scorer, so the last bits agree.
"""
from __future__ import annotations

import numpy as np

from ..vectors import as_array, decode_vector
from ._base import SparkStageScorer, scorer


@scorer("org.apache.spark.ml.feature.StandardScalerModel")
class StandardScalerScorer(SparkStageScorer):
    supports = 'withMean, withStd; x * (1/std) as Spark computes it'
    limitations = 'null vector in, null out'

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        data = self.read_parquet()[0]
        std, mean = decode_vector(data["std"]), decode_vector(data["mean"])
        self.with_mean = self.param("withMean", False)
        self.with_std = self.param("withStd", True)
        self.shift = mean
        with np.errstate(divide="ignore"):
            self.scale = np.where(std != 0.0, 1.0 / std, 0.0)
        self.input, self.output = self.param("inputCol"), self.param("outputCol")

    def score_row(self, row: dict) -> dict:
        v = row[self.input]
        if v is None:
            return {self.output: None}
        x = as_array(v, f"column {self.input!r}")
        if self.with_mean:
            x = x - self.shift
        if self.with_std:
            x = x * self.scale
        return {self.output: x}

    def score_columns(self, batch) -> dict | None:
        X = batch.matrix(self.input)
        if X is None or X.shape[1] != self.scale.size:
            return None
        if self.with_mean:
            X = X - self.shift
        if self.with_std:
            X = X * self.scale
        return {self.output: X}
