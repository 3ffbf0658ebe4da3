"""The base of the Spark-stage scorers and their registry."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from ..batch import Batch, row_by_row

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
    """One saved Spark stage. Subclasses implement ``score_row`` and, where it pays,
    ``score_columns`` (numpy over a whole ``Batch``; see ``transformers/batch.py``)."""

    spark_classes: tuple[str, ...] = ()

    def __init__(self, path: Path, metadata: dict):
        self.path = Path(path)
        self.metadata = metadata
        self.params: dict[str, Any] = {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}
        self.uid = metadata.get("uid", "?")

    # -- artifact -------------------------------------------------------------------
    def read_parquet(self, subdir: str = "data") -> list[dict]:
        return pq.read_table(self.path / subdir).to_pylist()

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    # -- scoring --------------------------------------------------------------------
    def score_row(self, row: dict) -> dict:
        raise NotImplementedError

    def scoreInstance(self, row: dict) -> dict:
        out = dict(row)
        out.update(self.score_row(row))
        return out

    def score_columns(self, batch: Batch) -> dict | None:
        """The output columns computed with numpy over the whole batch, or None when
        this stage (or this batch's data) is scored row by row."""
        return None

    def score_batch(self, batch: Batch) -> Batch:
        out = self.score_columns(batch) if batch.n else None
        if out is None:
            return row_by_row(self.scoreInstance, batch, RowSkipped)
        return batch.with_columns(out)
