"""Scorers for Spark's own ML stages, registered by the class name Spark saves.

Each module here handles one stage (or one family sharing code) and registers a
factory with ``@scorer("org.apache.spark.ml....")``. A scorer reads the stage's saved
``metadata/`` and ``data/`` and computes exactly what Spark's ``transform`` computes,
in float64, one row at a time (``scoreInstance``) or vectorized over a pandas
DataFrame (``scoreBatch``). Adding a stage: a module with one registered class, its
differential test against Spark, and a row in ``docs/serving.md`` (generated from
``SCORERS``).
"""
from __future__ import annotations

import importlib
import pkgutil

from ._base import SCORERS, SparkStageScorer, scorer

__all__ = ["SCORERS", "SparkStageScorer", "scorer", "load_all"]


def load_all() -> dict:
    """Import every stage module so that it registers itself; returns the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return SCORERS
