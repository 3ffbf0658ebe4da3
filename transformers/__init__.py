"""Spark ML stages of palette and, in ``runtime``, the JVM-free runtime that scores them.

``load_scorer`` never imports pyspark; the stage classes load it on first use.
"""
from palette.errors import UnsupportedStageError

from .runtime import load_scorer

_LAZY = {"DSLTransformer": "dsl_stage", "DSLEstimator": "dsl_stage", "DSLModel": "dsl_stage",
         "PaletteTransformer": "palette_stage"}

__all__ = ["load_scorer", "UnsupportedStageError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
