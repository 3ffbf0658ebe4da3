"""Parity between Spark's ``transform()`` and the serving path (``scoreInstance`` /
``scoreBatch`` of ``load_scorer``), stage by stage.

>>> from palette.parity import check_parity, assert_parity      # doctest: +SKIP

``check_parity`` and ``assert_parity`` need Spark; ``palette.parity.worker`` (the
serving side the harness starts) and ``palette.parity.compare`` do not, so this package
imports them lazily.
"""
from __future__ import annotations

from typing import Any

_LAZY = {"check_parity": "harness", "assert_parity": "harness", "ParityReport": "report",
         "StageResult": "report", "ColumnResult": "report", "StoreSkew": "report", "Example": "report",
         "same": "compare"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'palette.parity' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
