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
  feature-log records queued, and dropped (a full queue, a failed write);
- ``palette_feature_lookups_total{group}``: keys looked up per feature group;
  ``palette_feature_nulls_total{group, reason}``: of those, served as nulls because the
  store has no value (``missing``) or only one older than the group's ``max_age``
  (``expired``); ``palette_feature_age_seconds{group}``: the age of the values served
  (histogram), so stale features show before they turn null;
- ``palette_rpc_seconds{group, outcome}``: RPC fetcher calls by outcome (``ok``,
  ``not_found``, ``timeout``, ``error``, ``malformed``), a histogram (its ``_count`` counts them);
  ``palette_rpc_fallback_total{group, reason}``: keys served a fallback, and why
  (``timeout``, ``error``, ``breaker_open``, ``overloaded``, ``malformed``, ``missing``);
  ``palette_rpc_breaker_state{group}``: 0 closed, 1 half open, 2 open;
- ``palette_served_null_rate{model, feature}``, ``palette_served_mean{model, feature}``,
  ``palette_served_p50{model, feature}``: of the last finished served-profile window
  (``--profile-window``), per column the model was fed (``@group:age_s``: the age of
  the values served); ``palette_served_profile_dropped_total{model}``: requests
  left out of a profile because its buffer was full.
"""
from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from palette.errors import OnlineStoreUnavailable
from palette.lookup_plan import within_max_age
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
LOOKUPS = Counter("palette_feature_lookups_total", "Keys looked up in the online store", ["group"])
NULLS = Counter("palette_feature_nulls_total", "Keys served as nulls", ["group", "reason"])
_AGE_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 2 * 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)
AGE = Histogram("palette_feature_age_seconds", "Age of the feature values served", ["group"], buckets=_AGE_BUCKETS)

RPC_LATENCY = Histogram("palette_rpc_seconds", "RPC fetcher calls by outcome", ["group", "outcome"], buckets=_BUCKETS)
RPC_FALLBACKS = Counter("palette_rpc_fallback_total", "Keys served an RPC fallback value", ["group", "reason"])
RPC_BREAKER = Gauge("palette_rpc_breaker_state", "RPC breaker: 0 closed, 1 half open, 2 open", ["group"], **_GAUGE)
SERVED_NULL_RATE = Gauge("palette_served_null_rate", "Null rate per served column, last profile window",
                         ["model", "feature"], **_GAUGE)
SERVED_MEAN = Gauge("palette_served_mean", "Mean per served numeric column, last profile window",
                    ["model", "feature"], **_GAUGE)
SERVED_P50 = Gauge("palette_served_p50", "Median per served numeric column, last profile window",
                   ["model", "feature"], **_GAUGE)
PROFILE_DROPPED = Counter("palette_served_profile_dropped_total", "Requests left out of served profiles", ["model"])


def served_window(model: str, profiles: dict, dropped: int = 0) -> None:
    """Gauges of a finished served-profile window."""
    if dropped:
        PROFILE_DROPPED.labels(model).inc(dropped)
    for name, p in profiles.items():
        s = p.summary()
        if s["null_rate"] is not None:
            SERVED_NULL_RATE.labels(model, name).set(s["null_rate"])
        if s["mean"] is not None:
            SERVED_MEAN.labels(model, name).set(s["mean"])
            SERVED_P50.labels(model, name).set(s["p50"])


_BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class RpcMetrics:
    """The serving process's ``palette.rpc.client.RpcObserver``: RPC calls as metrics."""

    def called(self, group, seconds, outcome):
        RPC_LATENCY.labels(group, outcome).observe(seconds)

    def fell_back(self, group, reason, n):
        RPC_FALLBACKS.labels(group, reason).inc(n)

    def breaker(self, group, state):
        RPC_BREAKER.labels(group).set(_BREAKER_STATES[state])


class InstrumentedStore(DelegatingStore):
    """An online store whose reads are timed and counted, and whose lookups' nulls and
    ages are counted per feature group."""

    observes_lookups = True

    def served(self, group_id, found, now_micros, max_age_micros):
        missing = expired = 0
        age = AGE.labels(group_id)
        for hit in found:
            if hit is None:
                missing += 1
            elif not within_max_age(hit[0], now_micros, max_age_micros):
                expired += 1
            else:
                age.observe(max(now_micros - hit[0], 0) / 1e6)
        LOOKUPS.labels(group_id).inc(len(found))
        if missing:
            NULLS.labels(group_id, "missing").inc(missing)
        if expired:
            NULLS.labels(group_id, "expired").inc(expired)

    def read(self, requests):
        return self._timed(self.store.read, requests)

    def prepare_read(self, layouts):
        read_one = self.store.prepare_read(layouts)
        return lambda keys: self._timed(read_one, keys)

    @staticmethod
    def _timed(read, arg):
        t0 = time.perf_counter()
        try:
            return read(arg)
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
           "LOGGED", "LOG_DROPPED", "LOOKUPS", "NULLS", "AGE", "RPC_LATENCY", "RPC_FALLBACKS",
           "RPC_BREAKER", "RpcMetrics", "InstrumentedStore", "render", "worker_exited"]
