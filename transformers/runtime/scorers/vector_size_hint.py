"""VectorSizeHint: declares a vector column's size (Spark adds it as column metadata, which
VectorAssembler's handleInvalid='keep' needs). Scoring checks the size as Spark does:
``error`` raises on a null vector or a wrong size, ``skip`` drops such rows, ``optimistic``
passes every row through unchecked."""
from __future__ import annotations

import numpy as np

from ..vectors import as_array
from ..stage import RowSkipped, StageScorer, scorer
from palette.errors import MissingColumn, ScoringError


@scorer("org.apache.spark.ml.feature.VectorSizeHint")
class VectorSizeHintScorer(StageScorer):
    supports = "handleInvalid error/skip/optimistic (null vectors and wrong sizes)"
    limitations = "the column is passed through; no metadata is attached (the runtime has none)"

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.input, self.size = self.required("inputCol"), self.required("size", int)
        self.handle = self.param_in("handleInvalid", ("error", "skip", "optimistic"), "error")

    def score_row(self, row: dict) -> dict:
        if self.input not in row:
            raise MissingColumn(f"VectorSizeHint {self.uid}: the row has no column {self.input!r}")
        v = row[self.input]
        if self.handle == "optimistic":
            return {}
        problem = "is null" if v is None else None
        if v is not None:
            size = as_array(v, f"column {self.input!r}").size
            problem = f"has size {size}" if size != self.size else None
        if problem is None:
            return {}
        if self.handle == "skip":
            raise RowSkipped(f"VectorSizeHint {self.uid} skips rows whose {self.input!r} {problem}")
        raise ScoringError(f"VectorSizeHint {self.uid}: {self.input!r} {problem}, expected a vector of size "
                         f"{self.size}; set handleInvalid to 'skip' to drop such rows")

    def _invalid(self, batch) -> np.ndarray | None:
        """Rows whose vector is null or of another size; None when some value is no vector."""
        got = batch.nullable_matrix(self.input, self.size)
        if got is not None:
            X, null = got
            return null if X.shape[1] == self.size else np.ones(batch.n, dtype=bool)
        col = batch.column(self.input, f"VectorSizeHint {self.uid}")
        try:
            return np.array([v is None or as_array(v).size != self.size for v in col], dtype=bool)
        except (TypeError, ValueError):
            return None

    def skipped_rows(self, batch):
        return self._invalid(batch) if self.handle == "skip" else False

    def score_columns(self, batch) -> dict | None:
        """Sizes checked over the whole batch (vectors of several sizes too)."""
        if not batch.in_every_row(self.input):
            return None
        if self.handle == "error":
            bad = self._invalid(batch)
            if bad is None:
                return None
            self.raise_row_error(batch, bad)
        return {}
