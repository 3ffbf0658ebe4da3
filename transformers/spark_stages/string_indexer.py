"""StringIndexerModel: labels to indices (doubles) by the saved label order.

The saved ``labelsArray`` (one array per input column; ``labels`` in old saves) is what
scoring uses — ``stringOrderType`` only mattered when fitting. Inputs are cast to
string first, as Spark does (``1`` -> ``"1"``, ``1.0`` -> ``"1.0"``, ``True`` -> ``"true"``).
handleInvalid: ``error`` raises on an unseen label or a null; ``keep`` maps both to
``len(labels)``; ``skip`` drops the row (``RowSkipped``) when any input is null or unseen.
"""
from __future__ import annotations

from ._base import RowSkipped, SparkStageScorer, scorer
from ._util import in_out_cols, spark_string


@scorer("org.apache.spark.ml.feature.StringIndexerModel")
class StringIndexerScorer(SparkStageScorer):
    supports = 'labelsArray (any stringOrderType); single and multi column; handleInvalid error/skip/keep; nulls'
    limitations = 'non-string inputs are cast to string like Spark only for common forms (ints, booleans, moderate doubles)'

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.inputs, self.outputs = in_out_cols(self.params)
        data = self.read_parquet()[0]
        labels = data["labelsArray"] if "labelsArray" in data else [data["labels"]]
        self.labels = [list(ls) for ls in labels]
        self.index = [{lab: float(i) for i, lab in enumerate(ls)} for ls in self.labels]
        self.handle = self.param("handleInvalid", "error")

    def score_row(self, row: dict) -> dict:
        values = [spark_string(row[c]) for c in self.inputs]
        if self.handle == "skip":
            for col, v, idx in zip(self.inputs, values, self.index):
                if v is None or v not in idx:
                    raise RowSkipped(f"StringIndexerModel {self.uid} skips a null or unseen {col!r}: {v!r}")
        out = {}
        for col, dst, v, idx, labels in zip(self.inputs, self.outputs, values, self.index, self.labels):
            if v is None:
                if self.handle != "keep":
                    raise ValueError(f"StringIndexerModel {self.uid} encountered NULL value in {col!r}. "
                                     "To handle or skip NULLS, try setting StringIndexer.handleInvalid.")
                out[dst] = float(len(labels))
            elif v in idx:
                out[dst] = idx[v]
            elif self.handle == "keep":
                out[dst] = float(len(labels))
            else:
                raise ValueError(f"StringIndexerModel {self.uid}: unseen label {v!r} in {col!r}. To handle "
                                 "unseen labels, set Param handleInvalid to keep.")
        return out
