"""The base of the Spark-stage scorers and their registry."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow.parquet as pq

from ..batch import Batch, row_by_row
from ..vectors import as_array

SCORERS: dict[str, type] = {}


class RowSkipped(Exception):
    """Spark's transform would drop this row (handleInvalid='skip')."""


def scorer(*class_names: str) -> Callable[[type], type]:
    """Register a scorer class for the Spark class names it scores."""
    def register(cls: type) -> type:
        for name in class_names:
            SCORERS[name] = cls
        cls.spark_classes = class_names
        return cls
    return register


class SparkStageScorer:
    """One saved Spark stage. Subclasses implement ``score_row`` and ``score_columns``
    (numpy over a whole ``Batch``; see ``transformers/batch.py``); a stage that drops rows
    (handleInvalid='skip') says which in ``skipped_rows``."""

    spark_classes: tuple[str, ...] = ()
    batch_fallback = ""          # when a batch still goes row by row (for the docs table)

    def __init__(self, path: Path, metadata: dict):
        self.path = Path(path)
        self.metadata = metadata
        self.params: dict[str, Any] = {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}
        self.uid = metadata.get("uid", "?")
        self.batches_row_by_row = 0      # batches score_batch scored with score_row (a diagnostic)

    # -- artifact -------------------------------------------------------------------
    def read_parquet(self, subdir: str = "data") -> list[dict]:
        return pq.read_table(self.path / subdir).to_pylist()

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def param_in(self, name: str, allowed: tuple, default: Any) -> Any:
        """A param that must be one of ``allowed``: anything else (a mode a later Spark
        adds, say) fails at load time instead of scoring as some other mode."""
        value = self.param(name, default)
        if value not in allowed:
            self.unsupported(f"{name}={value!r}", f"{name} in {', '.join(map(repr, allowed))}")
        return value

    def unsupported(self, what: str, supported: str):
        from ..runtime import UnsupportedStageError
        raise UnsupportedStageError(f"{self.metadata.get('class', type(self).__name__)} {self.uid} ({self.path}): "
                                    f"{what} is not supported by the JVM-free runtime; it supports {supported}")

    # -- features -------------------------------------------------------------------
    def features_of(self, row: dict, col: str, size: int | None) -> np.ndarray:
        """A row's vector in ``col``; null or of another size than ``size`` is an error,
        as in Spark's transform."""
        v = row[col]
        if v is None:
            raise ValueError(f"{self.uid}: the vector in column {col!r} is null (Spark's transform fails on it)")
        x = as_array(v, f"column {col!r}")
        if size is not None and x.size != size:
            raise ValueError(f"{self.uid}: column {col!r} holds a vector of size {x.size}; the model expects {size}")
        return x

    def feature_matrix(self, batch: Batch, col: str, size: int | None,
                       invalid: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
        """The batch's features as an (n, size) matrix, or None (row by row) when the
        column holds other values or vectors of several sizes. Rows Spark fails on — a
        null, the wrong size, or what ``invalid(X)`` marks — raise the row path's error
        for the first of them."""
        got = batch.nullable_matrix(col, size or 0)
        if got is None:
            return None
        X, bad = got
        if size is not None and X.shape[1] != size:
            bad = np.ones(batch.n, dtype=bool)
        elif invalid is not None:
            bad = bad | invalid(X)
        self.raise_row_error(batch, bad)
        return X

    # -- scoring --------------------------------------------------------------------
    def score_row(self, row: dict) -> dict:
        raise NotImplementedError

    def scoreInstance(self, row: dict) -> dict:
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            return self.score_instance(row)

    def score_instance(self, row: dict) -> dict:
        """``scoreInstance`` for a caller that has set ``np.errstate(all="ignore")``
        itself (a pipeline sets it once for all its stages)."""
        out = dict(row)
        out.update(self.score_row(row))
        return out

    def skipped_rows(self, batch: Batch) -> np.ndarray | bool | None:
        """A mask of the rows Spark's transform drops (handleInvalid='skip'), False when
        it drops none, None when only the row path can tell."""
        return False

    def score_columns(self, batch: Batch) -> dict | None:
        """The output columns computed with numpy over the whole batch (whose skipped
        rows are gone), or None when this batch is scored row by row."""
        return None

    def score_batch(self, batch: Batch) -> Batch:
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            return self._score_batch(batch)

    def _score_batch(self, batch: Batch) -> Batch:
        if not batch.n:
            return batch
        skipped = self.skipped_rows(batch)
        if skipped is not None:
            if skipped is not False and skipped.any():
                batch = batch.where(~skipped)
            out = self.score_columns(batch) if batch.n else {}
            if out is not None:
                return batch.with_columns(out)
        self.batches_row_by_row += 1
        return row_by_row(self.scoreInstance, batch, RowSkipped)

    def raise_row_error(self, batch: Batch, bad: np.ndarray):
        """Spark fails on the rows ``bad`` marks: raise what ``score_row`` raises for the
        first of them, so that the batch path fails with the row path's error."""
        if not bad.any():
            return
        i = int(np.argmax(bad))
        self.score_row(batch.row(i))
        raise RuntimeError(f"{type(self).__name__} {self.uid}: the batch path found row {i} invalid "
                           "but score_row scored it")
