"""VectorSizeHint: declares a vector column's size (Spark adds it as column metadata, which
VectorAssembler's handleInvalid='keep' needs). Scoring checks the size as Spark does:
``error`` raises on a null vector or a wrong size, ``skip`` drops such rows, ``optimistic``
passes every row through unchecked."""
from __future__ import annotations

from ..vectors import as_array
from ._base import RowSkipped, SparkStageScorer, scorer


@scorer("org.apache.spark.ml.feature.VectorSizeHint")
class VectorSizeHintScorer(SparkStageScorer):
    supports = "handleInvalid error/skip/optimistic (null vectors and wrong sizes)"
    limitations = "the column is passed through; no metadata is attached (the runtime has none)"

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.input, self.size = self.param("inputCol"), int(self.param("size"))
        self.handle = self.param("handleInvalid", "error")

    def score_row(self, row: dict) -> dict:
        if self.input not in row:
            raise KeyError(f"VectorSizeHint {self.uid}: the row has no column {self.input!r}")
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
        raise ValueError(f"VectorSizeHint {self.uid}: {self.input!r} {problem}, expected a vector of size "
                         f"{self.size}; set handleInvalid to 'skip' to drop such rows")

    def score_columns(self, batch) -> dict | None:
        X = batch.matrix(self.input)
        return {} if self.handle == "optimistic" or (X is not None and X.shape[1] == self.size) else None
