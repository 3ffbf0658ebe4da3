"""Loading a saved stage or PipelineModel for scoring, and scoring it stage by stage.

It reads exactly what ``write().save(path)`` wrote — ``metadata/`` JSON (and, for
stages that have them, ``data/`` parquet via pyarrow) — and never imports pyspark.
Nothing is unpickled and nothing in the artifact is executed: DSL lambdas are parsed
by the DSL's own grammar. A stage class the runtime cannot score fails here, at load
time, naming the class.

>>> scorer = load_scorer("/tmp/eta_model")                     # doctest: +SKIP
>>> scorer.scoreInstance({"lat": 57.64911, "lng": 10.40744})   # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from palette.errors import UnsupportedStageError

from .artifact import PIPELINE_MODELS, check_format, read_metadata, stage_dirs
from .batch import Batch
from .stage import LoadContext, StageScorer

if TYPE_CHECKING:
    import pandas as pd


def supported_stages() -> dict[str, type]:
    """Every saved class the runtime scores (palette's stages and Spark's own), by name."""
    from .scorers import load_all
    return dict(load_all())


class PipelineScorer:
    """Scores a row through a sequence of stage scorers, in order."""

    def __init__(self, stages: list[StageScorer], names: list[str] | None = None):
        self.stages = stages
        self.names = names or [type(s).__name__ for s in stages]

    def scoreInstance(self, row: dict) -> dict:
        """Score one row. Raises ``RowSkipped`` when a stage's transform would drop it
        (handleInvalid='skip'): a single-row caller decides what a dropped row means."""
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            for stage in self.stages:
                row = stage.score_instance(row)
        return row

    def scoreBatch(self, rows: "Iterable[dict] | pd.DataFrame") -> "list[dict] | pd.DataFrame":
        """Score many rows at once: a list of dicts gives a list of dicts, a pandas
        DataFrame gives a DataFrame. Each stage works on whole columns with numpy where
        it can (see ``batch.py``), with the same numbers as ``scoreInstance``. Rows a
        stage would drop (``RowSkipped``) are left out, as Spark's transform leaves them
        out of its output."""
        import pandas as pd
        batch = Batch.of(rows)
        for stage in self.stages:
            batch = stage.score_batch(batch)
        return batch.frame() if isinstance(rows, pd.DataFrame) else batch.rows()


def _load_stages(path: Path, context: LoadContext) -> list[StageScorer]:
    metadata = read_metadata(path)
    cls = metadata.get("class")
    if cls in PIPELINE_MODELS:
        return [s for d in stage_dirs(path, metadata) for s in _load_stages(d, context)]
    check_format(metadata, path)
    supported = supported_stages()
    factory = supported.get(cls)
    if factory is None:
        names = "\n  ".join(sorted(set(supported) | PIPELINE_MODELS))
        raise UnsupportedStageError(
            f"cannot score stage {metadata.get('uid', '?')} of class {cls} (saved at {path}) without "
            f"Spark; the JVM-free runtime supports:\n  {names}")
    return [factory(path, metadata, context)]


def load_scorer(path: str | os.PathLike) -> PipelineScorer:
    """Load a saved stage or PipelineModel for scoring without Spark.

    Returns an object with ``scoreInstance(row) -> dict`` and ``scoreBatch(rows)``.
    Raises ``UnsupportedStageError`` at load time for a stage it cannot score, and
    ``ArtifactError`` for a directory that is not a saved stage or was written by a
    newer palette.
    """
    context = LoadContext()
    stages = _load_stages(Path(path), context)
    return PipelineScorer(stages, [s.metadata.get("class", type(s).__name__) for s in stages])
