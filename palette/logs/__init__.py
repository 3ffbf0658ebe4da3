"""Served-feature logs: what the serving process read and answered, and what to do with it.

- ``palette serve --log-dir DIR [--log-sample 0.1] [--log-by key|request]`` writes them
  (``writer``: no Spark, bounded and non-blocking);
- ``ingest_logs(spark, DIR, table)`` / ``palette ingest-logs`` appends them to a Delta
  table, idempotently;
- ``training_set(spark, logs, labels)`` turns logged requests and labels that arrived
  later into a training DataFrame with the exact values the model saw;
- ``check_consistency(spark, logs)`` / ``palette consistency`` replays the logged reads through
  the offline store and measures online/offline consistency per day, model and feature.

>>> from palette.logs import training_set                           # doctest: +SKIP
>>> train = training_set(spark, "/logs/eta", labels, on="order_id")  # doctest: +SKIP
"""
from __future__ import annotations

from palette.lazy import lazy_exports

_LAZY = {"FeatureLog": ".writer", "Sampler": ".writer", "SCHEMA": ".writer", "LogConfigError": ".writer",
         "read_logs": ".training", "ingest_logs": ".training", "training_set": ".training",
         "check_consistency": ".consistency", "ConsistencyReport": ".consistency"}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
