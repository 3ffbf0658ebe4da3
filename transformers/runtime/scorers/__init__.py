"""The scorers, one module per stage (or per family sharing code): palette's DSL stages
and Spark's own feature stages and models.

Each module registers its scorer class with ``@scorer("saved.class.Name", ...)`` (see
``..stage``). A Spark scorer reads the stage's saved ``metadata/`` and ``data/`` and
computes exactly what Spark's ``transform`` computes, in float64, one row at a time
(``scoreInstance``) or vectorized over a ``Batch`` (``score_batch``). Adding a stage: a
module with one registered class, its differential test against Spark, and a row in
``docs/serving.md`` (generated from ``SCORERS``).
"""
from __future__ import annotations

import importlib
import pkgutil

from ..stage import SCORERS

__all__ = ["load_all"]


def load_all() -> dict:
    """Import every scorer module so that it registers itself; returns the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return SCORERS
