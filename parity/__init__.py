"""Parity between Spark's ``transform()`` and the serving path (``scoreInstance`` /
``scoreBatch`` of ``load_scorer``), stage by stage.

>>> from palette.parity import check_parity, assert_parity      # doctest: +SKIP

``check_parity`` and ``assert_parity`` need Spark; ``palette.parity.worker`` (the
serving side the harness starts) and ``palette.parity.compare`` do not, so this package
imports them lazily.
"""
from __future__ import annotations

from palette.lazy import lazy_exports

_LAZY = {"check_parity": ".harness", "assert_parity": ".harness", "ParityReport": ".report",
         "StageResult": ".report", "ColumnResult": ".report", "StoreSkew": ".report", "Example": ".report",
         "same": ".compare"}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
