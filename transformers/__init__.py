"""Spark ML stages of palette and, in ``runtime``, the JVM-free runtime that scores them.

``load_scorer`` never imports pyspark; the stage classes load it on first use.
"""
from palette.errors import UnsupportedStageError
from palette.lazy import lazy_exports

from .runtime import load_scorer

_LAZY = {"DSLTransformer": ".dsl_stage", "DSLEstimator": ".dsl_stage", "DSLModel": ".dsl_stage",
         "PaletteTransformer": ".palette_stage"}

__all__ = ["load_scorer", "UnsupportedStageError", *_LAZY]


__getattr__ = lazy_exports(__name__, _LAZY)
