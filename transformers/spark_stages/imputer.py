"""ImputerModel: null (and ``missingValue``) replaced by the fitted surrogate.

Spark: ``when(c.isNull, s).when(c === missingValue, s).otherwise(c)`` on the column cast
to double, cast back to the input type. SQL equality treats NaN as equal to NaN, so the
default ``missingValue`` NaN matches NaN; with another ``missingValue`` a NaN stays NaN.
The surrogates are the one row of ``data/`` (one column per input column), whatever the
strategy (mean, median or mode) that fitted them. An integer input gets the surrogate
truncated toward zero (Spark's cast to an integral type).

The saved stage does not record the input column types. A null in an integer column is
known to be integral only from earlier integer values this scorer has seen in that column
(or from ``int_columns``, which a caller may set); otherwise it gets the float surrogate
where Spark would give the truncated integer.
"""
from __future__ import annotations

import math

from ._base import SparkStageScorer, scorer
from ._util import in_out_cols


@scorer("org.apache.spark.ml.feature.ImputerModel")
class ImputerScorer(SparkStageScorer):
    supports = 'mean/median/mode surrogates; single and multi column; missingValue (NaN matches NaN)'
    limitations = ("integer columns: surrogate truncated toward zero (Spark's cast); a null in an integer "
                   "column is known as integral only from earlier int values or int_columns")

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.inputs, self.outputs = in_out_cols(self.params)
        row = self.read_parquet()[0]
        self.surrogates = [float(row[c]) if row[c] is not None else None for c in self.inputs]
        mv = self.param("missingValue", float("nan"))
        self.missing = float(mv) if not isinstance(mv, str) else float(mv.replace("Infinity", "inf"))
        self.int_columns: set[str] = set()   # input columns known to be integral

    def _matches_missing(self, x: float) -> bool:
        if math.isnan(self.missing):
            return math.isnan(x)
        return x == self.missing

    def score_row(self, row: dict) -> dict:
        out = {}
        for col, dst, s in zip(self.inputs, self.outputs, self.surrogates):
            v = row[col]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if isinstance(v, int):
                    self.int_columns.add(col)
                else:
                    self.int_columns.discard(col)
            is_int = col in self.int_columns
            x = None if v is None else float(v)
            if x is None or self._matches_missing(x):
                x = s
            if x is not None and is_int:
                out[dst] = int(math.trunc(x)) if math.isfinite(x) else None
            else:
                out[dst] = x
        return out
