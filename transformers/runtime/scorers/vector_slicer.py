"""VectorSlicer by ``indices``: the selected entries, in the order given.

A dense vector gives a dense vector (an index past its end is an error, as Spark's
``DenseVector.apply``); a sparse vector gives a sparse vector of the same selection
(Spark's ``SparseVector.slice``: an index past its end just selects nothing, since the
JVM-free runtime has no ML attribute metadata telling the vector's size). A null vector
is an error, as in Spark.

Selecting by ``names`` needs the input column's ML attribute metadata, which lives in
the DataFrame schema at transform time and is not saved with the stage, so such a
VectorSlicer is refused at load time.
"""
from __future__ import annotations

import bisect

import numpy as np

from palette.errors import ArtifactError, ScoringError, UnsupportedStageError

from ..vectors import SparseVector, is_sparse
from ..stage import StageScorer, scorer


@scorer("org.apache.spark.ml.feature.VectorSlicer")
class VectorSlicerScorer(StageScorer):
    supports = 'indices (dense and sparse vectors)'
    limitations = ('names are refused at load time (they need the input column\'s ML attribute metadata, '
                   'which is not saved); an index past the end of a sparse vector selects nothing, as in Spark '
                   'without attribute metadata')

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        names = list(self.param("names", []) or [])
        self.indices = [int(i) for i in (self.param("indices", []) or [])]
        if names:
            raise UnsupportedStageError(
                f"VectorSlicer {self.uid} selects features by names ({', '.join(names)}); resolving names needs "
                "the input column's ML attribute metadata, which the saved stage does not hold. "
                "Select by indices to serve it without Spark.")
        if not self.indices:
            raise ArtifactError(f"VectorSlicer {self.uid}: no indices and no names selected")
        self.input, self.output = self.required("inputCol"), self.required("outputCol")

    def score_row(self, row: dict) -> dict:
        v = row[self.input]
        if v is None:
            raise ScoringError(f"VectorSlicer {self.uid}: the vector in column {self.input!r} is null "
                             "(Spark's transform fails on it)")
        if is_sparse(v):
            idx, vals = [int(i) for i in v.indices], [float(x) for x in v.values]
            out_idx, out_vals = [], []
            for k, i in enumerate(self.indices):
                pos = bisect.bisect_left(idx, i)
                if pos < len(idx) and idx[pos] == i:
                    out_idx.append(k)
                    out_vals.append(vals[pos])
            return {self.output: SparseVector(len(self.indices), tuple(out_idx), tuple(out_vals))}
        x = np.asarray(v.toArray() if hasattr(v, "toArray") else v, dtype=np.float64)
        if x.ndim != 1:
            raise ScoringError(f"VectorSlicer {self.uid}: column {self.input!r} is not a vector")
        bad = [i for i in self.indices if i >= x.size]
        if bad:
            raise ScoringError(f"VectorSlicer {self.uid}: index {bad[0]} out of bounds for a vector of size {x.size}")
        return {self.output: x[self.indices]}

    def score_columns(self, batch) -> dict | None:
        """A null, or an index past a dense vector's end, raises the row path's error; a
        sparse vector's row becomes a ``SparseVector`` of the selected stored entries (a
        per-row object), dense ones rows of one matrix."""
        X = self.feature_matrix(batch, self.input, None)
        if X is None:
            return None
        take = np.array(self.indices)
        inside = take < X.shape[1]
        stored = batch.stored(self.input, X.shape[1])
        sparse = np.zeros(batch.n, dtype=bool) if stored is None else stored[0]
        if not inside.all():
            self.raise_row_error(batch, ~sparse)
        picked = X[:, np.where(inside, take, 0)]
        if stored is None:
            return {self.output: picked}
        kept = stored[1][:, np.where(inside, take, 0)] & inside
        out = list(picked)
        for r in np.flatnonzero(sparse).tolist():
            ks = np.flatnonzero(kept[r])
            out[r] = SparseVector(take.size, tuple(ks.tolist()), tuple(picked[r, ks].tolist()))
        return {self.output: out}
