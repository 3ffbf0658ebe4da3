"""StringIndexerModel: labels to indices (doubles) by the saved label order.

The saved ``labelsArray`` (one array per input column; ``labels`` in old saves) is what
scoring uses — ``stringOrderType`` only mattered when fitting. Inputs are cast to
string first, as Spark does (``1`` -> ``"1"``, ``1.0`` -> ``"1.0"``, ``True`` -> ``"true"``).
handleInvalid: ``error`` raises on an unseen label or a null; ``keep`` maps both to
``len(labels)``; ``skip`` drops the row (``RowSkipped``) when any input is null or unseen.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..stage import RowSkipped, StageScorer, scorer
from ._util import in_out_cols, spark_string
from palette.errors import ScoringError


@scorer("org.apache.spark.ml.feature.StringIndexerModel")
class StringIndexerScorer(StageScorer):
    supports = 'labelsArray (any stringOrderType); single and multi column; handleInvalid error/skip/keep; nulls'
    limitations = 'non-string inputs are cast to string like Spark only for common forms (ints, booleans, moderate doubles)'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.inputs, self.outputs = in_out_cols(self.params)
        data = self.read_parquet()[0]
        labels = data["labelsArray"] if "labelsArray" in data else [data["labels"]]
        self.labels = [list(ls) for ls in labels]
        self.index = [{lab: float(i) for i, lab in enumerate(ls)} for ls in self.labels]
        self.handle = self.param_in("handleInvalid", ("error", "skip", "keep"), "error")
        self.lookup = [pd.Index(ls, dtype=object) for ls in self.labels]

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
                    raise ScoringError(f"StringIndexerModel {self.uid} encountered NULL value in {col!r}. "
                                     "To handle or skip NULLS, try setting StringIndexer.handleInvalid.")
                out[dst] = float(len(labels))
            elif v in idx:
                out[dst] = idx[v]
            elif self.handle == "keep":
                out[dst] = float(len(labels))
            else:
                raise ScoringError(f"StringIndexerModel {self.uid}: unseen label {v!r} in {col!r}. To handle "
                                 "unseen labels, set Param handleInvalid to keep.")
        return out

    # -- the batch ------------------------------------------------------------------------
    def _positions(self, batch) -> list[np.ndarray] | None:
        """Per input, each row's label index; -1 unseen, -2 null (a hash lookup over the
        column, after Spark's cast to string)."""
        out = []
        for col, lookup in zip(self.inputs, self.lookup):
            if not batch.in_every_row(col):
                return None
            values = batch.values(col)
            if not all(v is None or type(v) is str for v in values):
                values = [spark_string(v) for v in values]
            pos = lookup.get_indexer(np.array(values, dtype=object))
            pos[np.fromiter((v is None for v in values), dtype=bool, count=len(values))] = -2
            out.append(pos)
        return out

    def skipped_rows(self, batch):
        if self.handle != "skip":
            return False
        got = self._positions(batch)
        return None if got is None else np.logical_or.reduce([p < 0 for p in got])

    def score_columns(self, batch) -> dict | None:
        got = self._positions(batch)
        if got is None:
            return None
        if self.handle == "error":
            self.raise_row_error(batch, np.logical_or.reduce([p < 0 for p in got]))
        return {dst: np.where(p >= 0, p, len(labels)).astype(np.float64)
                for dst, p, labels in zip(self.outputs, got, self.labels)}
