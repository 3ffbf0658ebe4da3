"""Prometheus metrics of the serving process (prometheus-client).

With several workers, each writes its samples to ``$PROMETHEUS_MULTIPROC_DIR`` (the
supervisor makes one) and ``/metrics`` on any worker reports the sum over all of them,
prometheus-client's multiprocess mode.

- ``palette_requests_total{model, endpoint, status}``: requests answered;
- ``palette_request_seconds{model, endpoint}``: latency histogram;
- ``palette_instances_total{model}``: instances scored;
- ``palette_online_store_seconds``, ``palette_online_store_errors_total``: online reads;
- ``palette_model_load_seconds{model}``: how long the serving version took to load;
- ``palette_model_generation``: how many times the model set was (re)loaded;
- ``palette_feature_log_records_total{model}``, ``palette_feature_log_dropped_total``:
  feature-log records queued, and dropped (a full queue, a failed write).
"""
from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from palette.errors import OnlineStoreUnavailable
from palette.online import DelegatingStore

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_GAUGE = {"multiprocess_mode": "max"} if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else {}

REQUESTS = Counter("palette_requests_total", "Requests answered", ["model", "endpoint", "status"])
LATENCY = Histogram("palette_request_seconds", "Request latency", ["model", "endpoint"], buckets=_BUCKETS)
INSTANCES = Counter("palette_instances_total", "Instances scored", ["model"])
STORE_LATENCY = Histogram("palette_online_store_seconds", "Online store read latency", buckets=_BUCKETS)
STORE_ERRORS = Counter("palette_online_store_errors_total", "Online store reads that failed")
MODEL_LOAD = Gauge("palette_model_load_seconds", "Load time of the serving version", ["model"], **_GAUGE)
GENERATION = Gauge("palette_model_generation", "Model set (re)loads", **_GAUGE)
LOGGED = Counter("palette_feature_log_records_total", "Feature-log records queued", ["model"])
LOG_DROPPED = Counter("palette_feature_log_dropped_total", "Feature-log records dropped")


class InstrumentedStore(DelegatingStore):
    """An online store whose reads are timed and counted."""

    def read(self, requests):
        t0 = time.perf_counter()
        try:
            return self.store.read(requests)
        except OnlineStoreUnavailable:
            STORE_ERRORS.inc()
            raise
        finally:
            STORE_LATENCY.observe(time.perf_counter() - t0)


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus text format (summed over workers in multiprocess mode)."""
    from prometheus_client import CONTENT_TYPE_LATEST
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


__all__ = ["REQUESTS", "LATENCY", "INSTANCES", "STORE_LATENCY", "STORE_ERRORS", "MODEL_LOAD", "GENERATION",
           "LOGGED", "LOG_DROPPED", "InstrumentedStore", "render", "worker_exited"]
