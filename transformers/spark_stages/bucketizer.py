"""Bucketizer: continuous values into bucket indices (as doubles) by ``splits``.

Spark's ``binarySearchForBuckets``: bucket ``i`` holds ``[splits[i], splits[i+1])``, the
last also its upper bound; a value outside ``[splits[0], splits[-1]]`` is an error
whatever handleInvalid says. NaN: ``error`` raises, ``keep`` gives the extra bucket
``len(splits) - 1``, ``skip`` drops the row (``RowSkipped``) — skip also drops rows with
a null input (Spark's ``na.drop``); otherwise a null input gives a null output.
Java's ``Arrays.binarySearch`` orders -0.0 before 0.0, and so does this scorer.
"""
from __future__ import annotations

import bisect
import math

from ._base import RowSkipped, SparkStageScorer, scorer


def _key(x: float) -> tuple[float, float]:
    return (x, math.copysign(1.0, x))           # -0.0 < 0.0, as Double.compare


def _as_splits(s) -> list[float]:
    return [float(v.replace("Infinity", "inf")) if isinstance(v, str) else float(v) for v in s]


def bucket(splits: list[float], keys: list, x: float, keep_invalid: bool, uid: str) -> float:
    if math.isnan(x):
        if keep_invalid:
            return float(len(splits) - 1)
        raise ValueError(f"Bucketizer {uid} encountered NaN value. To handle or skip NaNs, "
                         "try setting Bucketizer.handleInvalid.")
    if x == splits[-1]:
        return float(len(splits) - 2)
    k = _key(x)
    pos = bisect.bisect_left(keys, k)
    if pos < len(keys) and keys[pos] == k:
        return float(pos)
    if pos == 0 or pos == len(splits):
        raise ValueError(f"Bucketizer {uid}: feature value {x} out of Bucketizer bounds "
                         f"[{splits[0]}, {splits[-1]}]")
    return float(pos - 1)


@scorer("org.apache.spark.ml.feature.Bucketizer")
class BucketizerScorer(SparkStageScorer):
    supports = 'splits / splitsArray; single and multi column; handleInvalid error/skip/keep (NaN -> extra bucket)'
    limitations = 'values outside the splits raise whatever handleInvalid says, as in Spark'

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        if self.param("inputCols"):
            self.inputs, self.outputs = list(self.param("inputCols")), list(self.param("outputCols"))
            self.splits = [_as_splits(s) for s in self.param("splitsArray")]
        else:
            self.inputs, self.outputs = [self.param("inputCol")], [self.param("outputCol")]
            self.splits = [_as_splits(self.param("splits"))]
        self.keys = [[_key(v) for v in s] for s in self.splits]
        self.handle = self.param("handleInvalid", "error")

    def score_row(self, row: dict) -> dict:
        if self.handle == "skip":
            for col in self.inputs:
                v = row[col]
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    raise RowSkipped(f"Bucketizer {self.uid} skips rows with a null or NaN {col!r}")
        out = {}
        for col, dst, splits, keys in zip(self.inputs, self.outputs, self.splits, self.keys):
            v = row[col]
            out[dst] = None if v is None else bucket(splits, keys, float(v), self.handle == "keep", self.uid)
        return out
