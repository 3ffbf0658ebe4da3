"""VectorAssembler: numeric, boolean and vector columns into one vector.

handleInvalid (a null or NaN number, or a null vector, in an input): ``error`` raises,
``skip`` drops the row (``scoreInstance`` raises ``RowSkipped``), ``keep`` puts NaN in its
place — for a vector column, as many NaN as the vector's size, which Spark takes from the
column's metadata (so a missing vector of unknown size is an error there as here); a
vector feature looked up by an earlier stage has its size from its type, as Spark has it
from the metadata the lookup gives the column. NaN
inside a vector is not invalid: Spark passes it through in every mode, and so does this.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ..vectors import as_array
from ..stage import RowSkipped, StageScorer, scorer
from palette.errors import MissingColumn, ScoringError


@scorer("org.apache.spark.ml.feature.VectorAssembler")
class VectorAssemblerScorer(StageScorer):
    supports = 'numeric, boolean and vector inputs; handleInvalid error/skip/keep'
    limitations = "'keep' of a missing vector uses the size last seen by this scorer (Spark reads it from column metadata)"
    batch_fallback = ("for 'keep' when a null vector comes before the batch's first vector and the size "
                      "this scorer last saw differs from the batch's")

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.inputs = self.required("inputCols", list, of=str)
        self.output = self.required("outputCol")
        self.handle = self.param_in("handleInvalid", ("error", "skip", "keep"), "error")
        # vector sizes known (a looked-up vector feature's type) or seen, for 'keep' of a missing vector
        self.sizes: dict[str, int] = {c: n for c, n in (context.vector_sizes if context else {}).items()
                                      if c in self.inputs}

    def score_row(self, row: dict) -> dict:
        """'keep' of a missing vector: as many NaN as the size last seen in this column.
        Numbers gather in a list that becomes one array, the common case of a row of
        plain numbers costing a single numpy call."""
        numbers, parts = [], []
        for col in self.inputs:
            if col not in row:
                raise MissingColumn(f"VectorAssembler {self.uid}: the row has no column {col!r}")
            v = row[col]
            if isinstance(v, (float, int, np.number)) and v == v:      # v == v: not NaN
                numbers.append(float(v))
                continue
            if numbers:
                parts.append(np.array(numbers))
                numbers = []
            if v is None or (isinstance(v, Real) and math.isnan(v)):
                if self.handle == "skip":
                    raise RowSkipped(f"VectorAssembler {self.uid} skips rows with a null or NaN {col!r}")
                if self.handle == "error":
                    raise ScoringError(f"VectorAssembler {self.uid}: {col!r} is null or NaN and handleInvalid "
                                     "is 'error'; set handleInvalid to 'skip' or 'keep', or fill it first")
                parts.append(np.full(self.sizes.get(col, 1), np.nan))
                continue
            arr = as_array(v, f"column {col!r}")          # NaN inside a vector is kept, as in Spark
            self.sizes[col] = arr.size
            parts.append(arr)
        if not parts:
            return {self.output: np.array(numbers, dtype=np.float64)}
        if numbers:
            parts.append(np.array(numbers))
        return {self.output: np.concatenate(parts)}

    def _parts(self, batch) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Per input, (values as an (n, width) matrix with NaN where invalid, invalid
        mask): a number column is invalid where null or NaN, a vector column where null."""
        parts = []
        for col in self.inputs:
            batch.column(col, f"VectorAssembler {self.uid}")
            got = batch.nullable_floats(col, bools=True)
            if got is not None:
                x, null = got
                parts.append((x[:, None], null | np.isnan(x)))
                continue
            known = self.sizes.get(col, 1)
            got = batch.nullable_matrix(col, known)
            if got is None:
                return None
            X, null = got
            if not null.all():
                first = int(np.argmin(null))
                if null[:first].any() and X.shape[1] != known:
                    return None             # nulls before the first vector take an older size: ragged
                self.sizes[col] = X.shape[1]
            parts.append((X, null))
        return parts

    def skipped_rows(self, batch):
        if self.handle != "skip":
            return False
        parts = self._parts(batch)
        return None if parts is None else np.logical_or.reduce([bad for _, bad in parts] + [np.zeros(batch.n, bool)])

    def score_columns(self, batch) -> dict | None:
        """Invalid values per handleInvalid: 'skip' rows are gone, 'error' raises the
        row path's error, 'keep' puts NaN (a vector's width of them). A null vector
        before the first non-null one in a batch takes the size this scorer last saw,
        as in the row path; where that differs from the batch's vectors (a ragged
        output) the batch goes row by row."""
        parts = self._parts(batch)
        if parts is None:
            return None
        if self.handle == "error":
            self.raise_row_error(batch, np.logical_or.reduce([bad for _, bad in parts] + [np.zeros(batch.n, bool)]))
        if not parts:
            return {self.output: np.zeros((batch.n, 0))}
        return {self.output: np.hstack([X for X, _ in parts])}
