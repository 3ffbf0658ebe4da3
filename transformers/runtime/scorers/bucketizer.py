"""Bucketizer: continuous values into bucket indices (as doubles) by ``splits``.

Spark's ``binarySearchForBuckets``: bucket ``i`` holds ``[splits[i], splits[i+1])``, the
last also its upper bound; a value outside ``[splits[0], splits[-1]]`` is an error
whatever handleInvalid says. NaN: ``error`` raises, ``keep`` gives the extra bucket
``len(splits) - 1``, ``skip`` drops the row (``RowSkipped``) — skip also drops rows with
a null input (Spark's ``na.drop``); otherwise a null input gives a null output.
Java's ``Arrays.binarySearch`` orders -0.0 before 0.0, and so does this scorer (a batch
searches the doubles' total-order integer keys with ``np.searchsorted``).
"""
from __future__ import annotations

import bisect
import math
from numbers import Real

import numpy as np

from ..batch import with_nulls
from ..stage import RowSkipped, StageScorer, scorer
from palette.errors import ScoringError


def _key(x: float) -> tuple[float, float]:
    return (x, math.copysign(1.0, x))           # -0.0 < 0.0, as Double.compare


def _order_keys(x: np.ndarray) -> np.ndarray:
    """Integers ordered as ``Double.compare`` orders the doubles (-0.0 < 0.0)."""
    bits = x.view(np.int64)
    return bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))   # negative: all but the sign flipped


def _as_splits(s) -> list[float]:
    return [float(v.replace("Infinity", "inf")) if isinstance(v, str) else float(v) for v in s]


def bucket(splits: list[float], keys: list, x: float, keep_invalid: bool, uid: str) -> float:
    if math.isnan(x):
        if keep_invalid:
            return float(len(splits) - 1)
        raise ScoringError(f"Bucketizer {uid} encountered NaN value. To handle or skip NaNs, "
                         "try setting Bucketizer.handleInvalid.")
    if x == splits[-1]:
        return float(len(splits) - 2)
    k = _key(x)
    pos = bisect.bisect_left(keys, k)
    if pos < len(keys) and keys[pos] == k:
        return float(pos)
    if pos == 0 or pos == len(splits):
        raise ScoringError(f"Bucketizer {uid}: feature value {x} out of Bucketizer bounds "
                         f"[{splits[0]}, {splits[-1]}]")
    return float(pos - 1)


@scorer("org.apache.spark.ml.feature.Bucketizer")
class BucketizerScorer(StageScorer):
    supports = 'splits / splitsArray; single and multi column; handleInvalid error/skip/keep (NaN -> extra bucket)'
    limitations = 'values outside the splits raise whatever handleInvalid says, as in Spark'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        if self.param("inputCols"):
            self.inputs, self.outputs = self.required("inputCols", list, of=str), self.required("outputCols", list, of=str)
            self.splits = [_as_splits(s) for s in self.param("splitsArray")]
        else:
            self.inputs, self.outputs = [self.required("inputCol")], [self.required("outputCol")]
            self.splits = [_as_splits(self.param("splits"))]
        self.keys = [[_key(v) for v in s] for s in self.splits]
        self.handle = self.param_in("handleInvalid", ("error", "skip", "keep"), "error")
        self.split_keys = [_order_keys(np.array(s, dtype=np.float64)) for s in self.splits]

    def score_row(self, row: dict) -> dict:
        if self.handle == "skip":
            for col in self.inputs:
                v = row[col]
                if v is None or (isinstance(v, Real) and math.isnan(v)):
                    raise RowSkipped(f"Bucketizer {self.uid} skips rows with a null or NaN {col!r}")
        out = {}
        for col, dst, splits, keys in zip(self.inputs, self.outputs, self.splits, self.keys):
            v = row[col]
            out[dst] = None if v is None else bucket(splits, keys, float(v), self.handle == "keep", self.uid)
        return out

    def _inputs(self, batch) -> list[tuple[np.ndarray, np.ndarray]] | None:
        got = [batch.nullable_floats(c, bools=True) for c in self.inputs]
        return None if any(g is None for g in got) else got

    def skipped_rows(self, batch):
        if self.handle != "skip":
            return False
        got = self._inputs(batch)
        return None if got is None else np.logical_or.reduce([null | np.isnan(x) for x, null in got])

    def score_columns(self, batch) -> dict | None:
        """A null gives null; NaN and values outside the splits as handleInvalid says
        (an error raises the row path's error for the first such row)."""
        got = self._inputs(batch)
        if got is None:
            return None
        out, bad = {}, np.zeros(batch.n, dtype=bool)
        for (x, null), dst, splits, keys in zip(got, self.outputs, self.splits, self.split_keys):
            nan = np.isnan(x) & ~null
            k = _order_keys(np.where(nan | null, 0.0, x))
            pos = np.searchsorted(keys, k, side="left")
            exact = keys[np.minimum(pos, keys.size - 1)] == k
            index = np.where(exact, pos, pos - 1).astype(np.float64)
            index[x == splits[-1]] = len(splits) - 2
            outside = ~exact & ((pos == 0) | (pos == keys.size)) & ~(x == splits[-1]) & ~nan & ~null
            if self.handle == "keep":
                index[nan] = len(splits) - 1
            else:
                outside |= nan
            bad |= outside
            out[dst] = with_nulls(index, null)
        self.raise_row_error(batch, bad)
        return out
