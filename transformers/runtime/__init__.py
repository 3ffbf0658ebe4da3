"""The JVM-free runtime: load a saved stage or PipelineModel and score rows without Spark.

This subpackage never imports pyspark, py4j or delta, nor any module of palette that
does; ``tests/runtime/test_runtime_layout.py`` walks its imports to prove it. It reads the
directory ``model.write().save(path)`` wrote (JSON and parquet) and scores it with one
scorer per stage, all answering one protocol (``stage.StageScorer``) and registered in
one registry by the class name Spark saved (``stage.SCORERS``): palette's DSL stages
and Spark's own feature stages and models alike.

>>> from palette.transformers.runtime import load_scorer
>>> scorer = load_scorer("/tmp/eta_model")                     # doctest: +SKIP
>>> scorer.scoreInstance({"lat": 57.64911, "lng": 10.40744})   # doctest: +SKIP
"""
from palette.errors import ArtifactError, UnsupportedStageError

from .artifact import FORMAT_VERSION, read_metadata
from .batch import Batch
from .pipeline import ScoreObserver, PipelineScorer, load_scorer, supported_stages
from .stage import SCORERS, LoadContext, RowSkipped, StageScorer, scorer

__all__ = ["load_scorer", "PipelineScorer", "ScoreObserver", "StageScorer", "RowSkipped", "LoadContext", "SCORERS", "scorer",
           "supported_stages", "read_metadata", "FORMAT_VERSION", "Batch", "UnsupportedStageError",
           "ArtifactError"]
