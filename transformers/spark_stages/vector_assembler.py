"""VectorAssembler: numeric, boolean and vector columns into one vector.

handleInvalid (a null or NaN number, or a null vector, in an input): ``error`` raises,
``skip`` drops the row (``scoreInstance`` raises ``RowSkipped``), ``keep`` puts NaN in its
place — for a vector column, as many NaN as the vector's size, which Spark takes from the
column's metadata (so a missing vector of unknown size is an error there as here). NaN
inside a vector is not invalid: Spark passes it through in every mode, and so does this.
"""
from __future__ import annotations

import math

import numpy as np

from ..vectors import as_array
from ._base import RowSkipped, SparkStageScorer, scorer


@scorer("org.apache.spark.ml.feature.VectorAssembler")
class VectorAssemblerScorer(SparkStageScorer):
    supports = 'numeric, boolean and vector inputs; handleInvalid error/skip/keep'
    limitations = "'keep' of a missing vector uses the size last seen by this scorer (Spark reads it from column metadata)"

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.inputs = self.param("inputCols")
        self.output = self.param("outputCol")
        self.handle = self.param("handleInvalid", "error")
        self.sizes: dict[str, int] = {}   # vector sizes seen, for 'keep' of a missing vector

    def score_row(self, row: dict) -> dict:
        parts = []
        for col in self.inputs:
            if col not in row:
                raise KeyError(f"VectorAssembler {self.uid}: the row has no column {col!r}")
            v = row[col]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if self.handle == "skip":
                    raise RowSkipped(f"VectorAssembler {self.uid} skips rows with a null or NaN {col!r}")
                if self.handle == "error":
                    raise ValueError(f"VectorAssembler {self.uid}: {col!r} is null or NaN and handleInvalid "
                                     "is 'error'; set handleInvalid to 'skip' or 'keep', or fill it first")
                size = self.sizes.get(col, 1)
                parts.append(np.full(size, np.nan))
                continue
            if isinstance(v, (bool, int, float, np.number)):
                parts.append(np.array([float(v)]))
            else:
                arr = as_array(v, f"column {col!r}")      # NaN inside a vector is kept, as in Spark
                self.sizes[col] = arr.size
                parts.append(arr)
        return {self.output: np.concatenate(parts) if parts else np.zeros(0)}

    def score_columns(self, batch) -> dict | None:
        """Numbers without null or NaN and vectors without null (then every handleInvalid
        mode agrees); anything else goes row by row."""
        parts = []
        for col in self.inputs:
            batch.column(col, f"VectorAssembler {self.uid}")
            x = batch.floats(col)
            if x is not None:
                if np.isnan(x).any():
                    return None
                parts.append(x[:, None])
            else:
                x = batch.matrix(col)
                if x is None:
                    return None
                self.sizes[col] = x.shape[1]
                parts.append(x)
        return {self.output: np.hstack(parts) if parts else np.zeros((batch.n, 0))}
