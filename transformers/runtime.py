"""The JVM-free runtime: load a saved stage or PipelineModel and score rows.

It reads exactly what ``write().save(path)`` wrote — ``metadata/`` JSON (and, for
stages that have them, ``data/`` parquet via pyarrow) — and never imports pyspark.
Nothing is unpickled and nothing in the artifact is executed: DSL lambdas are parsed
by the DSL's own grammar. A stage class the runtime cannot score fails here, at load
time, naming the class.

>>> scorer = load_scorer("/tmp/eta_model")                     # doctest: +SKIP
>>> scorer.scoreInstance({"lat": 57.64911, "lng": 10.40744})   # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from .dsl_row import DSLRowScorer

if TYPE_CHECKING:
    import pandas as pd

_PIPELINE_MODELS = {"pyspark.ml.pipeline.PipelineModel", "org.apache.spark.ml.PipelineModel"}


class UnsupportedStageError(ValueError):
    """A saved stage whose class the JVM-free runtime cannot score."""


def read_metadata(path: str | os.PathLike) -> dict:
    """The one JSON line in ``path/metadata`` (Spark writes it as a text part file)."""
    meta_dir = Path(path) / "metadata"
    if not meta_dir.is_dir():
        raise FileNotFoundError(f"{path} is not a saved Spark ML stage: {meta_dir} does not exist")
    for part in sorted(meta_dir.glob("part-*")):
        for line in part.read_text().splitlines():
            if line.strip():
                return json.loads(line)
    raise ValueError(f"{meta_dir} holds no metadata line")


def _params(metadata: dict) -> dict:
    return {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}


def _dsl_scorer(path: Path, metadata: dict) -> DSLRowScorer:
    return DSLRowScorer(_params(metadata)["lambdas"])


# Saved class name -> factory(path, metadata) returning an object with scoreInstance(row).
STAGE_SCORERS: dict[str, Callable[[Path, dict], object]] = {
    "palette.transformers.dsl_stage.DSLTransformer": _dsl_scorer,
    "palette.transformers.dsl_stage.DSLModel": _dsl_scorer,
}


def supported_stages() -> dict[str, Callable[[Path, dict], object]]:
    """Every saved class the runtime scores: palette's stages and Spark's own."""
    from .spark_stages import load_all
    return {**STAGE_SCORERS, **load_all()}


class PipelineScorer:
    """Scores a row through a sequence of stage scorers, in order."""

    def __init__(self, stages: list, names: list[str] | None = None):
        self.stages = stages
        self.names = names or [type(s).__name__ for s in stages]
        self._steps = [getattr(s, "score_instance", s.scoreInstance) for s in stages]

    def scoreInstance(self, row: dict) -> dict:
        """Score one row. Raises ``RowSkipped`` when a stage's transform would drop it
        (handleInvalid='skip'): a single-row caller decides what a dropped row means."""
        with np.errstate(all="ignore"):             # x / 0, inf - inf, overflow: IEEE, as Java
            for step in self._steps:
                row = step(row)
        return row

    def scoreBatch(self, rows: "Iterable[dict] | pd.DataFrame") -> "list[dict] | pd.DataFrame":
        """Score many rows at once: a list of dicts gives a list of dicts, a pandas
        DataFrame gives a DataFrame. Each stage works on whole columns with numpy where
        it can (see ``transformers/batch.py``), with the same numbers as
        ``scoreInstance``. Rows a stage would drop (``RowSkipped``) are left out, as
        Spark's transform leaves them out of its output."""
        import pandas as pd
        from .batch import Batch
        batch = Batch.of(rows)
        for stage in self.stages:
            batch = stage.score_batch(batch)
        return batch.frame() if isinstance(rows, pd.DataFrame) else batch.rows()


def _stage_dirs(path: Path, uids: list[str]) -> list[Path]:
    stages_dir = path / "stages"
    found = {d.name.split("_", 1)[1]: d for d in stages_dir.iterdir() if d.is_dir() and "_" in d.name}
    missing = [u for u in uids if u not in found]
    if missing:
        raise FileNotFoundError(f"{stages_dir} lacks the saved stages {', '.join(missing)}")
    return [found[u] for u in uids]


def _load(path: Path):
    metadata = read_metadata(path)
    cls = metadata["class"]
    if cls in _PIPELINE_MODELS:
        uids = metadata["paramMap"]["stageUids"]
        dirs = _stage_dirs(path, uids)
        return PipelineScorer([_load(d) for d in dirs], [read_metadata(d)["class"] for d in dirs])
    factory = supported_stages().get(cls)
    if factory is None:
        supported = "\n  ".join(sorted(supported_stages() | dict.fromkeys(_PIPELINE_MODELS)))
        raise UnsupportedStageError(
            f"cannot score stage {metadata.get('uid', '?')} of class {cls} (saved at {path}) without "
            f"Spark; the JVM-free runtime supports:\n  {supported}")
    return factory(path, metadata)


def load_scorer(path: str | os.PathLike) -> PipelineScorer:
    """Load a saved stage or PipelineModel for scoring without Spark.

    Returns an object with ``scoreInstance(row) -> dict`` and ``scoreBatch(rows)``.
    Raises ``UnsupportedStageError`` at load time for a stage it cannot score.
    """
    scorer = _load(Path(path))
    return scorer if isinstance(scorer, PipelineScorer) else PipelineScorer([scorer])
