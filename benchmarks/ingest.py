"""Delta MERGE ingest (``FeatureStore.ingest``) against a plain Delta append of the same batch.

Rows are identified by an id ``i``: key ``cust_id = i % K`` (K = batch rows / 100), event time
2024-01-01 + (i // K) hours, values from ``hash(i, seed)`` (a different seed for the batch,
so an update really changes the row). Generated with ``spark.range``; nothing is built on
the driver.

  * existing tables: ids [0, N) for N = batch rows (10,000,000: the big table) and
    N = batch rows / 10 (1,000,000: the small table), written straight to Delta (not timed);
  * the batch (default 10,000,000 rows, stored as Parquet first, not timed): every fifth id in
    [0, batch) (20%: updates of existing (key, ts) in the big table, spread over all its
    files) and the ids [batch, 1.8 x batch) (80%: new rows). Against the small table the same
    batch is 2% updates and 98% new rows.

Timed, interleaved over the rounds (figures are medians):

  (a) ``FeatureStore.ingest(batch, group)`` into the big table: validation (nulls, duplicate
      keys) and MERGE; rows/s, and the time against (b);
  (b) baseline: ``batch.write.format("delta").mode("append")`` into an empty table of the group;
  (c) ``FeatureStore.ingest`` of the same batch into the small table.

Driver memory. In local mode the driver JVM also runs the tasks, so its heap holds the
tasks' sort and shuffle buffers (bounded by Spark's memory manager, growing with the data
a task handles); that heap is reported for (a) and (c), labelled as the shared JVM. To see
the driver alone, a second phase runs in a fresh process with ``local-cluster[1,2,6144]``
(one executor JVM with the 2 cores; the driver runs no tasks) and ingests the same batch
into a fresh 10M-row and a fresh 1M-row table. Before each ingest the driver runs
``System.gc()`` and resets the heap pools' peaks; a thread samples the heap in use every
50 ms. The figure to read is the driver's peak for the 10M-row table over the 1M-row table:
~1 when nothing proportional to the table reaches the driver. In both phases
``spark.driver.maxResultSize`` is 64 MB, so a job that returned more than that to the
driver would fail the run, and every ``DataFrame.collect`` made from Python during an
ingest is counted with its row count.

    .venv/bin/python benchmarks/run.py --only ingest [--rows N]
    .venv/bin/python benchmarks/ingest.py [--rows N]              # alone
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

from pathlib import Path

from _fresh import JvmClock, remove, rerun_fresh, scratch, session, spark_running, timed

DEFAULT_ROWS = 10_000_000
ROUNDS = 2
SPARK_CONF = {"spark.driver.memory": "10g", "spark.sql.shuffle.partitions": "8",
              "spark.driver.maxResultSize": "64m"}
START_US = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
HOUR_US = 3_600_000_000
GROUP_ID = "customer:txn"

MEMORY_MASTER = "local-cluster[1,2,6144]"     # workers, cores per worker, MB per worker

GOALS = {"driver_heap_big_over_small": ("<=", 1.25), "rows_collected_max": ("<=", 3)}


# -- data -------------------------------------------------------------------------------

def _rows(ids, keys: int, seed: int):
    """Table rows for the ids in the one-column frame ``ids`` (column ``id``)."""
    from pyspark.sql import functions as F

    h = lambda k: F.abs(F.hash(F.col("id"), F.lit(seed), F.lit(k)))  # noqa: E731
    return ids.select(
        (F.col("id") % keys).alias("cust_id"),
        F.timestamp_micros(F.lit(START_US) + F.floor(F.col("id") / keys) * HOUR_US).alias("event_ts"),
        ((h(1) % 100_000) / 100.0).alias("amount"),
        (h(2) % 12).cast("double").alias("n_items"),
        F.element_at(F.array(F.lit("web"), F.lit("app"), F.lit("store")), (h(3) % 3 + 1).cast("int")).alias("channel"))


def _register(root: str):
    from palette.registry import Entity, FeatureGroup
    from palette.store import FeatureStore

    store = FeatureStore(root)
    entity = Entity("customer", {"cust_id": "int"})
    group = FeatureGroup("customer", "txn", {"amount": "num", "n_items": "num", "channel": "str"})
    store.register(entity, group)
    return store, entity, group


def write_table(spark, root: str, n: int, keys: int) -> str:
    """A fresh store at ``root`` whose group table holds ids [0, n); returns the table path."""
    from palette import offline

    store, entity, group = _register(root)
    path = store.table_path(GROUP_ID)
    schema = offline.table_schema(entity, group)
    offline.ensure_table(spark, path, schema)
    _rows(spark.range(0, n, 1, max(2, n // 500_000)), keys, seed=1).select(*schema.names) \
        .write.format("delta").mode("append").save(path)
    return path


def write_batch(spark, path: str, n: int, keys: int) -> None:
    from pyspark.sql import functions as F

    updates = spark.range(0, n // 5, 1, max(2, n // 2_500_000)).select((F.col("id") * 5).alias("id"))
    new = spark.range(n, n + n - n // 5, 1, max(2, n // 625_000))
    _rows(updates.union(new), keys, seed=2).write.parquet(path)


# -- driver memory ----------------------------------------------------------------------

class HeapWatch:
    """Peak heap of the driver JVM over a block: sampled in use, and the pools' own peaks."""

    def __init__(self, spark, every: float = 0.05):
        self.jvm = spark._jvm
        self.every = every
        mf = self.jvm.java.lang.management.ManagementFactory
        self.memory = mf.getMemoryMXBean()
        self.pools = [p for p in mf.getMemoryPoolMXBeans() if str(p.getType().toString()) == "Heap memory"]

    def __enter__(self):
        self.jvm.java.lang.System.gc()
        time.sleep(0.5)
        for p in self.pools:
            p.resetPeakUsage()
        self.base = self.memory.getHeapMemoryUsage().getUsed()
        self.peak = self.base
        self.live_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.memory.getHeapMemoryUsage().getUsed())
            # what the pools held right after their latest collection: the live heap
            self.live_peak = max(self.live_peak, sum(p.getCollectionUsage().getUsed() for p in self.pools))
            self._stop.wait(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.pool_peaks = {str(p.getName()): p.getPeakUsage().getUsed() for p in self.pools}
        self.jvm.java.lang.System.gc()
        time.sleep(0.5)
        self.after_gc = self.memory.getHeapMemoryUsage().getUsed()
        return False

    @property
    def old_gen_peak(self) -> int:
        return sum(v for k, v in self.pool_peaks.items() if "Old" in k or "Tenured" in k)


class CollectWatch:
    """Counts rows that Python pulls to the driver (DataFrame.collect / toLocalIterator / toPandas)."""

    def __init__(self, spark):
        self.cls = type(spark.range(1))     # pyspark.sql.classic.dataframe.DataFrame in Spark 4
        self.calls: list[int] = []

    def __enter__(self):
        self.orig = {name: getattr(self.cls, name) for name in ("collect", "toLocalIterator", "toPandas")}
        watch = self

        def collect(df):
            rows = watch.orig["collect"](df)
            watch.calls.append(len(rows))
            return rows

        def refuse(name):
            def f(df, *a, **k):
                watch.calls.append(-1)
                return watch.orig[name](df, *a, **k)
            return f

        self.cls.collect = collect
        self.cls.toLocalIterator = refuse("toLocalIterator")
        self.cls.toPandas = refuse("toPandas")
        return self

    def __exit__(self, *exc):
        for name, f in self.orig.items():
            setattr(self.cls, name, f)
        return False


def _merge_metrics(spark, path: str) -> dict:
    """The last commit's MERGE metrics that say where the time went (one row read from the log)."""
    from delta.tables import DeltaTable

    m = DeltaTable.forPath(spark, path).history(1).first()["operationMetrics"] or {}
    keep = ("numTargetRowsCopied", "numTargetRowsUpdated", "numTargetRowsInserted", "numTargetFilesRemoved",
            "numTargetFilesAdded", "executionTimeMs", "materializeSourceTimeMs", "scanTimeMs", "rewriteTimeMs")
    return {k: int(m[k]) for k in keep if k in m}


# -- the benchmark ----------------------------------------------------------------------

def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MB"


def _ingest_watched(spark, store, batch) -> tuple[dict, "HeapWatch", list[int]]:
    with HeapWatch(spark) as heap, CollectWatch(spark) as cw:
        result = store.ingest(batch, GROUP_ID)
    return result, heap, cw.calls


def timing(n: int) -> dict:
    """Phase 1, local[2]: ingest (MERGE) into the big and the small table against a plain append."""
    from palette import offline

    small, keys = n // 10, max(100, n // 100)
    spark = session(SPARK_CONF)
    print(f"Spark {spark.version}, local[{spark.sparkContext.defaultParallelism}], driver memory "
          f"{spark.conf.get('spark.driver.memory')}, shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}, "
          f"maxResultSize {spark.conf.get('spark.driver.maxResultSize')}")
    folder = scratch("palette-ingest-")
    wall = {"append": [], "merge_big": [], "merge_small": []}
    cpu = {k: [] for k in wall}
    heaps, collected, results, merge_metrics = {"big": [], "small": []}, [], {}, {}
    try:
        batch_path = str(folder / "batch.parquet")
        t = timed(lambda: write_batch(spark, batch_path, n, keys))
        print(f"batch of {n:,} rows written to Parquet in {t:.0f} s (not timed)", flush=True)
        batch = lambda: spark.read.parquet(batch_path)  # noqa: E731
        clock = JvmClock(spark)
        _, entity, group = _register(str(folder / "validate"))

        for r in range(ROUNDS):
            rf = folder / f"r{r}"
            t0 = time.perf_counter()
            write_table(spark, str(rf / "big"), n, keys)
            write_table(spark, str(rf / "small"), small, keys)
            path = _register(str(rf / "append"))[0].table_path(GROUP_ID)
            offline.ensure_table(spark, path, offline.table_schema(entity, group))
            print(f"round {r + 1}: tables of {n:,} and {small:,} rows written in "
                  f"{time.perf_counter() - t0:.0f} s (not timed)", flush=True)

            w, c = clock(lambda: batch().write.format("delta").mode("append").save(path))
            wall["append"].append(w)
            cpu["append"].append(c)
            print(f"  append baseline:              {w:6.1f} s, JVM CPU {c:6.1f} s", flush=True)
            for size in ("big", "small"):
                store = _register(str(rf / size))[0]
                out = {}
                w, c = clock(lambda: out.update(zip(("result", "heap", "calls"),
                                                    _ingest_watched(spark, store, batch()))))
                results[size], heap = out["result"], out["heap"]
                wall[f"merge_{size}"].append(w)
                cpu[f"merge_{size}"].append(c)
                heaps[size].append(heap)
                collected += out["calls"]
                merge_metrics[size] = _merge_metrics(spark, store.table_path(GROUP_ID))
                print(f"  ingest into the {size:>5} table: {w:6.1f} s, JVM CPU {c:6.1f} s  {results[size]}\n"
                      f"    shared driver+executor JVM heap: in use peak {_mb(heap.peak)} (sampled), old-gen peak "
                      f"{_mb(heap.old_gen_peak)}; {_mb(heap.base)} before, {_mb(heap.after_gc)} after GC; "
                      f"rows per Python collect {out['calls']}\n"
                      f"    Delta MERGE metrics: {merge_metrics[size]}", flush=True)
            if r == 0:
                t_validate, c_validate = clock(lambda: offline.conform(batch(), entity, group))
                print(f"  validation alone (offline.conform: null check + duplicate-key check): "
                      f"{t_validate:.1f} s, JVM CPU {c_validate:.1f} s", flush=True)
            remove(rf)
    finally:
        remove(folder)
        spark.stop()

    med = {k: statistics.median(v) for k, v in wall.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    peak = {s: max(h.peak for h in hs) for s, hs in heaps.items()}
    fig = {
        "rows": n,
        "merge_big_s": med["merge_big"], "merge_small_s": med["merge_small"], "append_s": med["append"],
        "validate_s": t_validate,
        "merge_rows_per_s": n / med["merge_big"], "append_rows_per_s": n / med["append"],
        "merge_over_append": med["merge_big"] / med["append"],
        "cpu_merge_over_append": mcpu["merge_big"] / mcpu["append"],
        "merge_big_over_small": med["merge_big"] / med["merge_small"],
        "local_jvm_heap_big_over_small": peak["big"] / peak["small"],
        "rows_collected_max": max(collected) if collected else 0,
        "inserted_big": results["big"]["inserted"], "updated_big": results["big"]["updated"],
        "copied_big": merge_metrics["big"].get("numTargetRowsCopied", -1),
    }
    print(f"\nmedian of {ROUNDS} rounds, batch of {n:,} rows (wall seconds; JVM CPU seconds):")
    print(f"  (a) ingest (validate + MERGE) into {n:>11,} rows: {med['merge_big']:7.1f} s ({mcpu['merge_big']:6.1f})  "
          f"{fig['merge_rows_per_s']:>9,.0f} rows/s  (inserted {fig['inserted_big']:,}, updated "
          f"{fig['updated_big']:,}; Delta also rewrote {fig['copied_big']:,} unchanged rows)")
    print(f"  (b) plain Delta append:                       {med['append']:7.1f} s ({mcpu['append']:6.1f})  "
          f"{fig['append_rows_per_s']:>9,.0f} rows/s")
    print(f"  (c) ingest into {small:>11,} rows:                {med['merge_small']:7.1f} s ({mcpu['merge_small']:6.1f})")
    print(f"  merge / append = {fig['merge_over_append']:.2f} (CPU {fig['cpu_merge_over_append']:.2f}); "
          f"validation alone {t_validate:.1f} s = {t_validate / med['append']:.2f} x append")
    print(f"  shared driver+executor JVM (local mode), in-use heap peak: {_mb(peak['big'])} vs {_mb(peak['small'])} "
          f"= {fig['local_jvm_heap_big_over_small']:.2f} (tasks' buffers; see the driver-only phase)")
    return fig


def driver_memory(n: int) -> dict:
    """Phase 2, local-cluster: the driver JVM runs no tasks; its heap while ingesting into 10M vs 1M rows."""
    small, keys = n // 10, max(100, n // 100)
    spark = session({**SPARK_CONF, "spark.executor.memory": "5g"}, master=MEMORY_MASTER)
    print(f"driver-only memory phase: master {spark.sparkContext.master}, driver memory "
          f"{spark.conf.get('spark.driver.memory')}, executor memory {spark.conf.get('spark.executor.memory')}",
          flush=True)
    folder = scratch("palette-ingest-mem-")
    heaps, calls = {}, []
    try:
        batch_path = str(folder / "batch.parquet")
        write_batch(spark, batch_path, n, keys)
        for size, rows in (("big", n), ("small", small)):
            write_table(spark, str(folder / size), rows, keys)
        for size in ("big", "small"):
            store = _register(str(folder / size))[0]
            t0 = time.perf_counter()
            result, heap, c = _ingest_watched(spark, store, spark.read.parquet(batch_path))
            heaps[size] = heap
            calls += c
            print(f"  ingest into the {size:>5} table ({time.perf_counter() - t0:.0f} s, {result}): driver heap in use "
                  f"peak {_mb(heap.peak)} (sampled), old-gen peak {_mb(heap.old_gen_peak)}, live (after GC) peak "
                  f"{_mb(heap.live_peak)}; {_mb(heap.base)} before, {_mb(heap.after_gc)} after GC; rows per Python "
                  f"collect {c}", flush=True)
    finally:
        remove(folder)
        spark.stop()
    b, s = heaps["big"], heaps["small"]
    return {"driver_heap_big_mb": b.peak / 2**20, "driver_heap_small_mb": s.peak / 2**20,
            "driver_heap_big_over_small": b.peak / s.peak,
            "driver_old_gen_big_over_small": b.old_gen_peak / max(s.old_gen_peak, 1),
            "driver_rows_collected_max": max(calls) if calls else 0}


def _run_part(part: str, rows: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="palette-ingest-part-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, __file__, "--part", part, "--json", str(out)] + (["--rows", str(rows)] if rows else [])
        sys.stdout.flush()
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def main(rows: int | None = None) -> dict:
    if spark_running():
        return rerun_fresh("ingest", rows)
    n = rows or DEFAULT_ROWS
    print(f"\n== ingest: Delta MERGE of a {n:,}-row batch (80% new, 20% updates) into {n:,}- and "
          f"{n // 10:,}-row tables " + "=" * 4, flush=True)
    fig = timing(n)
    mem = _run_part("memory", rows)       # a fresh JVM: the driver memory setting and master apply
    fig.update(mem)
    fig["rows_collected_max"] = max(fig["rows_collected_max"], mem["driver_rows_collected_max"])
    print(f"\n  driver heap (driver-only JVM), in-use peak ingesting into {n:,} vs {n // 10:,} rows: "
          f"{_mb(mem['driver_heap_big_mb'] * 2**20)} vs {_mb(mem['driver_heap_small_mb'] * 2**20)} = "
          f"{mem['driver_heap_big_over_small']:.2f}; old-gen peak ratio {mem['driver_old_gen_big_over_small']:.2f}")
    print(f"  rows pulled to Python during any ingest: at most {fig['rows_collected_max']} per call; "
          f"maxResultSize 64m never tripped")
    return fig


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="ingest.py")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--part", choices=("all", "timing", "memory"), default="all")
    args = ap.parse_args()
    n = args.rows or DEFAULT_ROWS
    figures = {"all": lambda: main(args.rows), "timing": lambda: timing(n), "memory": lambda: driver_memory(n)}[args.part]()
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
