"""OneHotEncoderModel: category indices to one-hot vectors (numpy arrays).

Vector size per column (Spark's ``getConfigedCategorySizes``): ``n - 1`` with dropLast and
handleInvalid=error, ``n + 1`` without dropLast and with keep, else ``n``. An index
outside ``[0, n)`` (or NaN) is invalid: ``error`` raises, ``keep`` uses index ``n``. An
index at or past the vector size gives all zeros; a fractional index is truncated. A null
input gives a null output.
"""
from __future__ import annotations

import math

import numpy as np

from ..batch import with_nulls
from ..stage import StageScorer, scorer
from ._util import in_out_cols
from palette.errors import ArtifactError, ScoringError

MAX_CATEGORIES = 1 << 24


@scorer("org.apache.spark.ml.feature.OneHotEncoderModel")
class OneHotEncoderScorer(StageScorer):
    supports = 'dropLast; handleInvalid error/keep; single and multi column; output numpy arrays'
    limitations = 'output is dense numpy, not a sparse vector'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.inputs, self.outputs = in_out_cols(self.params)
        self.category_sizes = [int(n) for n in self.read_parquet()[0]["categorySizes"]]
        if len(self.category_sizes) != len(self.inputs) or any(not 0 <= n <= MAX_CATEGORIES
                                                                for n in self.category_sizes):
            raise ArtifactError(f"OneHotEncoderModel {self.uid} ({self.path}): category sizes {self.category_sizes[:5]} "
                                f"for {len(self.inputs)} column(s); the runtime builds dense vectors of at most "
                                f"{MAX_CATEGORIES:,} values, and a saved model's sizes are never negative: the "
                                "data is damaged, or the encoder too wide for the JVM-free runtime")
        self.keep = self.param_in("handleInvalid", ("error", "keep"), "error") == "keep"
        drop_last = self.param("dropLast", True)
        if not drop_last and self.keep:
            self.sizes = [n + 1 for n in self.category_sizes]
        elif drop_last and not self.keep:
            self.sizes = [n - 1 for n in self.category_sizes]
        else:
            self.sizes = list(self.category_sizes)

    def score_row(self, row: dict) -> dict:
        out = {}
        for col, dst, n, size in zip(self.inputs, self.outputs, self.category_sizes, self.sizes):
            v = row[col]
            if v is None:
                out[dst] = None
                continue
            x = float(v)
            if x >= 0 and x < n:
                idx = x
            elif self.keep:
                idx = float(n)
            elif x < 0:
                raise ScoringError(f"OneHotEncoderModel {self.uid}: negative value {x} in {col!r}. Input can't be "
                                 "negative. To handle invalid values, set Param handleInvalid to keep")
            else:
                raise ScoringError(f"OneHotEncoderModel {self.uid}: unseen value {x} in {col!r}. To handle unseen "
                                 "values, set Param handleInvalid to keep.")
            vec = np.zeros(size)
            if idx < size:
                vec[int(math.trunc(idx))] = 1.0
            out[dst] = vec
        return out

    def score_columns(self, batch) -> dict | None:
        got = [batch.nullable_floats(c, bools=True) for c in self.inputs]
        if any(g is None for g in got):
            return None
        out, bad = {}, np.zeros(batch.n, dtype=bool)
        for (x, null), dst, n, size in zip(got, self.outputs, self.category_sizes, self.sizes):
            valid = (x >= 0) & (x < n)
            bad |= ~valid & ~null
            index = np.where(valid, x, float(n))
            hot = ~null & (index < size)
            vectors = np.zeros((batch.n, size))
            vectors[np.flatnonzero(hot), np.trunc(index[hot]).astype(np.intp)] = 1.0
            out[dst] = with_nulls(vectors, null)
        if not self.keep:
            self.raise_row_error(batch, bad)
        return out
