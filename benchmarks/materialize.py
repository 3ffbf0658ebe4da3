"""Materialization from Delta into the online stores, at 1M keys.

One feature group (3 features: two numbers and a string) with 1,000,000 keys, ingested
into Delta. In one run, into SQLite (a file) and into Redis (a real server on loopback):

  (a) a full materialization: seconds and rows/s;
  (b) 1% of the keys get a new row (an ingest of 10,000 rows), then an incremental run
      (change data feed): seconds, and its time as a fraction of (a) (goal <= 10%);
  (c) the driver's memory: the Python driver's peak RSS growth during a full run of
      1,000,000 keys and during one of 100,000 keys (the executors write; nothing is
      collected), and their difference (goal: not growing with the table, <= 16 MiB,
      the noise of sampling RSS).

Every run is checked: the store holds one row per key, and the changed keys hold their
new values.

    .venv/bin/python benchmarks/run.py --only materialize [--rows N]
"""
from __future__ import annotations

import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from _common import heading, spark_session

DEFAULT_KEYS = 1_000_000
GOALS = {"sqlite_incremental_over_full": ("<=", 0.10), "redis_incremental_over_full": ("<=", 0.10),
         "driver_rss_growth_1m_minus_100k_mib": ("<=", 16.0)}


def rss_bytes(pid: str | int = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Peak RSS growth of a process while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: str | int = "self"):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.base = rss_bytes(self.pid)
        self.peak = self.base
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


def ingest_keys(spark, store, group: str, keys: int, ts: datetime, key_prefix: str = "k", every: int = 1):
    from pyspark.sql import functions as F
    df = (spark.range(0, keys, every, 8)
          .select(F.concat(F.lit(key_prefix), F.col("id").cast("string")).alias("id"),
                  F.lit(ts).cast("timestamp").alias("event_ts"),
                  (F.col("id") * 0.5).alias("a"), F.sqrt(F.col("id").cast("double")).alias("b"),
                  F.concat(F.lit("c"), (F.col("id") % 97).cast("string")).alias("label")))
    return store.ingest(df, group)


def main(rows: int | None = None) -> dict:
    from palette import Entity, FeatureGroup, FeatureStore
    from palette.online import open_store
    from palette.testing import redis_server

    keys = rows or DEFAULT_KEYS
    heading(f"materialize: {keys:,} keys from Delta into SQLite and Redis")
    spark = spark_session()
    workdir = tempfile.mkdtemp(prefix="palette-bench-mat-")
    store = FeatureStore(f"{workdir}/store")
    small = max(keys // 10, 1000)
    store.register(Entity("item", {"id": "str"}),
                   FeatureGroup("item", "big_fg", {"a": "num", "b": "num", "label": "str"}),
                   FeatureGroup("item", "small_fg", {"a": "num", "b": "num", "label": "str"}))
    t0 = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None) - timedelta(hours=2)
    t = time.perf_counter()
    ingest_keys(spark, store, "item:big_fg", keys, t0)
    ingest_keys(spark, store, "item:small_fg", small, t0)
    print(f"ingested {keys:,} + {small:,} keys in {time.perf_counter() - t:.0f}s", flush=True)
    fig = {}
    jvm = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    with redis_server() as (redis_url, _):
        urls = {"sqlite": f"sqlite:///{workdir}/online.db", "redis": f"{redis_url}?timeout_ms=1000"}
        for name, url in urls.items():
            with PeakRss() as mem_big:
                full = store.materialize(["item:big_fg"], online_store=url, spark=spark)["item:big_fg"]
            assert full["rows"] == keys and open_store(url).count("item:big_fg") == keys, full
            fig[f"{name}_full_s"] = full["seconds"]
            fig[f"{name}_full_rows_per_s"] = keys / full["seconds"]
            print(f"{name}: full run {full['seconds']:.1f}s = {keys / full['seconds']:,.0f} rows/s; "
                  f"driver RSS +{mem_big.growth / 2**20:.0f} MiB", flush=True)
            if name == "sqlite":
                with PeakRss() as mem_small:
                    store.materialize(["item:small_fg"], online_store=url, spark=spark)
                fig["driver_rss_growth_1m_mib"] = mem_big.growth / 2**20
                fig["driver_rss_growth_100k_mib"] = mem_small.growth / 2**20
                fig["driver_rss_growth_1m_minus_100k_mib"] = (mem_big.growth - mem_small.growth) / 2**20
                if jvm is not None:
                    fig["jvm_rss_mib"] = rss_bytes(jvm.pid) / 2**20
        changed = ingest_keys(spark, store, "item:big_fg", keys, t0 + timedelta(hours=1), every=100)
        print(f"changed 1% of the keys (version {changed['version']})", flush=True)
        for name, url in urls.items():
            inc = store.materialize(["item:big_fg"], online_store=url, spark=spark)["item:big_fg"]
            assert inc["mode"].startswith("change data feed") and inc["rows"] == len(range(0, keys, 100)), inc
            online = open_store(url)
            layout = online.layout("item:big_fg")
            (found,) = online.read([(layout, ["k0", "k100", "k1"])])
            assert [f[0] for f in found][:2] == [int((t0 + timedelta(hours=1)).replace(tzinfo=timezone.utc)
                                                     .timestamp() * 1e6)] * 2
            fig[f"{name}_incremental_s"] = inc["seconds"]
            fig[f"{name}_incremental_over_full"] = inc["seconds"] / fig[f"{name}_full_s"]
            print(f"{name}: incremental run ({inc['rows']:,} rows) {inc['seconds']:.1f}s = "
                  f"{fig[f'{name}_incremental_over_full']:.1%} of the full run", flush=True)
    return fig
