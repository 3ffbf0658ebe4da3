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
from numbers import Real

import numpy as np

from ..batch import Masked, with_nulls
from ..stage import StageScorer, scorer
from ._util import in_out_cols

_INT, _FLOAT, _OTHER, _NULL = 1, 0, 2, 3      # what a value tells of its column: integral, not, nothing


@scorer("org.apache.spark.ml.feature.ImputerModel")
class ImputerScorer(StageScorer):
    supports = 'mean/median/mode surrogates; single and multi column; missingValue (NaN matches NaN)'
    limitations = ("integer columns: surrogate truncated toward zero (Spark's cast); a null in an integer "
                   "column is known as integral only from earlier int values or int_columns")

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
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

    # -- the batch ------------------------------------------------------------------------
    @staticmethod
    def _kinds(col) -> np.ndarray | None:
        """Per value: an int, a float, another number (counted as neither) or null, as
        the row path tells them apart; None when some value is not a number."""
        if isinstance(col, (np.ndarray, Masked)):
            values = col if isinstance(col, np.ndarray) else col.values
            if values.ndim != 1:
                return None
            return np.where(col.null, _NULL, _FLOAT) if isinstance(col, Masked) else np.full(values.size, _FLOAT)
        kinds = []
        for v in col:
            if v is None:
                kinds.append(_NULL)
            elif isinstance(v, bool) or not isinstance(v, Real):
                return None
            else:
                kinds.append(_INT if isinstance(v, int) else _FLOAT if isinstance(v, float) else _OTHER)
        return np.array(kinds)

    def _integral(self, col: str, kinds: np.ndarray) -> np.ndarray:
        """Per row, whether the row path takes the column as integral there: the last
        int or float at or before the row says, else what this scorer knew before."""
        told = (kinds == _INT) | (kinds == _FLOAT)
        last = np.maximum.accumulate(np.where(told, np.arange(kinds.size), -1))
        integral = np.where(last >= 0, kinds[np.maximum(last, 0)] == _INT, col in self.int_columns)
        if told.any():
            (self.int_columns.add if kinds[last[-1]] == _INT else self.int_columns.discard)(col)
        return integral

    def score_columns(self, batch) -> dict | None:
        """Integral rows come out as Python ints (None for a non-finite surrogate), as
        from the row path."""
        got = [(self._kinds(batch.column(c, f"ImputerModel {self.uid}")), batch.nullable_floats(c))
               for c in self.inputs]
        if any(k is None or f is None for k, f in got):
            return None
        out = {}
        for col, dst, s, (kinds, (x, null)) in zip(self.inputs, self.outputs, self.surrogates, got):
            missing = null | (np.isnan(x) if math.isnan(self.missing) else x == self.missing)
            x = np.where(missing, np.nan if s is None else s, x)
            none = missing & (s is None)
            integral = self._integral(col, kinds)
            if not integral.any():
                out[dst] = with_nulls(x, none)
                continue
            values = x.tolist()
            out[dst] = [None if n else (int(v) if math.isfinite(v) else None) if i else v
                        for v, n, i in zip(values, none.tolist(), integral.tolist())]
        return out
