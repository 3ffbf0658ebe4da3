"""Monitoring: profiling throughput, merging profiles, the served sketches' cost, a model's
report from stored profiles, and Evidently on the same data — side by side in one run.

  (a) offline profiling (``palette.monitor.offline.profile_frame``: per-partition sketches
      from Arrow batches, merged per window) of ROWS x 10 features (8 numbers, 2
      categories) over 24 hourly windows, against Spark's own aggregation of the same
      columns per window (count, nulls, mean, stddev, min, max, ``percentile_approx``,
      ``approx_count_distinct``; collected, so that no aggregate is skipped): ``profile feature-values/s per core`` (goal >= 3M) and
      the ratio to Spark's aggregation;
  (b) merging: 1,440 one-minute profiles (60 values each) of each of 1,000 features into
      their day (goal < 2 s), and the same day from 24 hourly roll-ups;
  (c) the served sketches on the ETA model (GBT 20 trees, 2,000 restaurants, SQLite):
      ``ServedModel.score`` per request with and without the profiler, 41 interleaved runs
      of 1,000 requests with the fold between them — what the serving process's background
      thread does every second, so this is a worker at 1,000 requests/s (goal: <= 5 us added
      on the request path; more requests between folds hold more objects, and cost more) —
      and the fold's own time per request (that thread shares the worker's CPU);
  (d) ``palette monitor model`` over 60 served one-minute windows against the training
      profile (goal < 1 s), against recomputing the same tests from the raw rows;
  (e) Evidently's data-drift preset (its own virtualenv, ``pip install evidently``) on
      1M reference + 1M current rows x 10 features with planted drift in 3 features (a 0.2 sd
      shift, a 1.2x spread, a new category in 5 % of rows),
      against palette (profile both sides and test): time ratio (goal >= 20) and verdicts.

    .venv/bin/python benchmarks/run.py --only monitoring [--rows N]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from _common import heading, own_venv, spark_session

ROWS = 10_000_000
GOALS = {"profile feature-values/s per core": (">=", 3e6), "merge 1440 x 1000 profiles (s)": ("<=", 2.0),
         "served profile added per request (us)": ("<=", 5.0), "monitor model (s)": ("<=", 1.0),
         "evidently / palette (time)": (">=", 20.0), "verdict disagreements on planted features": ("==", 0)}
NUM, CAT = [f"x{i}" for i in range(8)], ["c0", "c1"]


def _frame(spark, rows: int):
    from pyspark.sql import functions as F
    df = spark.range(rows).withColumn("ts", F.timestamp_seconds(F.lit(1_796_000_000) + (F.col("id") % 86400)))
    for i, name in enumerate(NUM):
        df = df.withColumn(name, F.when(F.rand(i) < 0.01, None).otherwise(F.randn(100 + i) * (i + 1) + i))
    for i, name in enumerate(CAT):
        df = df.withColumn(name, F.concat(F.lit("k"), (F.pow(F.rand(200 + i), 3) * 40).cast("int").cast("string")))
    return df


def _noop(df) -> int:
    """Run every column of ``df`` (a count alone lets Spark skip aggregates nobody reads)."""
    return len(df.collect())


def profiling(spark, rows: int, fig: dict) -> None:
    from pyspark.sql import functions as F

    from palette.monitor.offline import arrow_batches, profile_frame
    heading(f"(a) profiling {rows:,} rows x 10 features, 24 hourly windows")
    with tempfile.TemporaryDirectory(prefix="palette-bench-monitor-") as tmp:
        _frame(spark, rows).write.parquet(f"{tmp}/data")
        df = spark.read.parquet(f"{tmp}/data")
        features = {**{n: "num" for n in NUM}, **{c: "str" for c in CAT}}
        df.write.format("noop").mode("overwrite").save()           # the scan, once, before either is timed
        t0 = time.perf_counter()
        with arrow_batches(spark):
            n = _noop(profile_frame(df, "ts", features, timedelta(hours=1)))
        ours = time.perf_counter() - t0
        w = F.window("ts", "1 hour")
        aggs = [a for c in NUM for a in (F.count(c), F.sum(F.col(c).isNull().cast("int")), F.mean(c), F.stddev(c),
                                          F.min(c), F.max(c), F.percentile_approx(c, [0.01, 0.5, 0.99]))]
        aggs += [a for c in CAT for a in (F.count(c), F.approx_count_distinct(c))]
        t0 = time.perf_counter()
        _noop(df.groupBy(w).agg(*aggs))
        spark_s = time.perf_counter() - t0
    fig["profiles written"] = n
    fig["profile seconds"] = ours
    fig["spark aggregation seconds"] = spark_s
    fig["profile feature-values/s per core"] = rows * 10 / ours / 2
    fig["profile / spark aggregation (time)"] = ours / spark_s
    print(f"palette profiles {ours:.1f}s ({fig['profile feature-values/s per core'] / 1e6:.2f}M feature-values/s "
          f"per core); Spark's aggregation {spark_s:.1f}s", flush=True)


def merging(fig: dict) -> None:
    from palette.monitor.profile import Profile, merged
    heading("(b) merging 1,440 x 1,000 one-minute profiles")
    rng = np.random.default_rng(0)
    minutes = [Profile.of(rng.normal(size=60)).to_bytes() for _ in range(1440)]
    t0 = time.perf_counter()
    for _ in range(1000):
        merged(Profile.from_bytes(b) for b in minutes)
    fig["merge 1440 x 1000 profiles (s)"] = time.perf_counter() - t0
    hours = [merged(Profile.from_bytes(b) for b in minutes[h * 60:(h + 1) * 60]).to_bytes() for h in range(24)]
    t0 = time.perf_counter()
    for _ in range(1000):
        merged(Profile.from_bytes(b) for b in hours)
    fig["merge 24 hourly roll-ups x 1000 (s)"] = time.perf_counter() - t0
    print(f"{fig['merge 1440 x 1000 profiles (s)']:.2f}s from minutes; {fig['merge 24 hourly roll-ups x 1000 (s)']:.2f}s "
          "from hourly roll-ups", flush=True)


def _eta(spark, tmp: str):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor
    from pyspark.sql import functions as F

    from palette import FeatureStore
    from palette.examples import eta
    from palette.monitor.reference import build_reference, save_reference
    as_of = datetime.now(timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
    store = FeatureStore(f"{tmp}/store")
    eta.declare(store)
    eta.generate(spark, store, 2000, as_of)
    url = f"sqlite:///{tmp}/online.db"
    store.materialize(online_store=url, spark=spark)
    orders = spark.createDataFrame(eta.requests(2000, 20_000, seed=17), "order_id int, r_id string, order_size int") \
        .withColumn("order_ts", F.lit(as_of)).withColumn("eta", F.col("order_size") * 3.0 + F.col("order_id") % 7)
    model = Pipeline(stages=eta.stages(store.root) + [VectorAssembler(inputCols=eta.FEATURES, outputCol="features"),
                                                      GBTRegressor(labelCol="eta", maxIter=20, maxDepth=5)]).fit(orders)
    path = f"{tmp}/eta_model"
    model.write().save(path)
    save_reference(build_reference(model, orders), path)
    return url, path, [r.asDict() for r in orders.select("r_id", "order_size").collect()]


def served(spark, fig: dict, tmp: str) -> None:
    from palette.monitor.model_report import model_report
    from palette.monitor.served import write_window
    from palette.online import open_store
    from palette.serve.config import ModelConfig
    from palette.serve.models import load_model
    heading("(c) served profiles on the ETA model, and (d) palette monitor model")
    url, path, orders = _eta(spark, tmp)
    store = open_store(url)
    plain = load_model(ModelConfig("eta", path), store)
    profiled = load_model(ModelConfig("eta", path), store, profile_window=60)
    requests = [[{"r_id": o["r_id"], "order_size": o["order_size"]}] for o in orders[:1000]]

    def per_request(m) -> float:
        t0 = time.perf_counter()
        for r in requests:
            m.score(r)
        return (time.perf_counter() - t0) / len(requests) * 1e6
    per_request(plain), per_request(profiled)
    a, b, fold = [], [], []
    for _ in range(41):
        a.append(per_request(plain))
        b.append(per_request(profiled))
        t0 = time.perf_counter()
        profiled.profiler.fold()
        fold.append((time.perf_counter() - t0) / len(requests) * 1e6)
    fig["score per request (us)"] = statistics.median(a)
    fig["served profile added per request (us)"] = statistics.median(b) - statistics.median(a)
    fig["served profile fold per request (us, background)"] = statistics.median(fold)
    print(f"score {fig['score per request (us)']:.1f} us/request; the profiler adds "
          f"{fig['served profile added per request (us)']:.2f} us on the request path, "
          f"{fig['served profile fold per request (us, background)']:.2f} us in its thread", flush=True)
    # (d): an hour of one-minute windows, the last 20 minutes with bigger orders
    profiled.profiler.fold()
    profiled.profiler.finished(0, everything=True)            # (c)'s windows: not part of the hour
    logs = Path(tmp) / "logs"
    now = time.time() - time.time() % 60
    for minute in range(60):
        shifted = minute >= 40
        for i in range(120):
            o = orders[(minute * 120 + i) % len(orders)]
            profiled.score([{"r_id": o["r_id"], "order_size": o["order_size"] + (2 if shifted else 0)}])
        profiled.profiler.fold()
        [(_, _, n, profiles)] = profiled.profiler.finished(0, everything=True)
        write_window(logs, "eta", path, now - 3600 + minute * 60, now - 3600 + (minute + 1) * 60, n, profiles)
    t0 = time.perf_counter()
    report = model_report("eta", logs, last=timedelta(minutes=60), every=timedelta(minutes=10),
                          now=datetime.fromtimestamp(now, timezone.utc))
    fig["monitor model (s)"] = time.perf_counter() - t0
    fig["monitor model alerts"] = len(report.alerts)
    fig["monitor model windows x features tested"] = len(report.tests)
    print(report.headline())
    print(f"monitor model: {fig['monitor model (s)']:.3f}s for {len(report.tests)} tests over 6 windows", flush=True)


EVIDENTLY = r'''
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
t0 = time.perf_counter()
result = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
seconds = time.perf_counter() - t0
drifted = {}
for m in result.dict()["metrics"]:
    name = m.get("metric_name", "") or ""
    cfg = m.get("config", {}) or {}
    if "ValueDrift" in name and "column" in cfg:
        v = m["value"]; thr = cfg.get("threshold")
        method = cfg.get("method", "")
        pvalue = "p_value" in method or "test" in method and "distance" not in method
        drifted[cfg["column"]] = bool(v < thr) if pvalue and thr is not None else bool(thr is not None and v >= thr)
print(json.dumps({"seconds": seconds, "drifted": drifted}))
'''


def evidently_python() -> str:
    """Evidently's own virtualenv (``$PALETTE_EVIDENTLY_VENV``); it imports pandas 2 internals."""
    return own_venv("evidently", "evidently", ["evidently", "pandas<3"], "PALETTE_EVIDENTLY_VENV")


def evidently(fig: dict, tmp: str, rows: int) -> None:
    import pandas as pd

    from palette.monitor.drift import compare, flag
    from palette.monitor.profile import Profile
    heading(f"(e) Evidently's data drift preset against palette, {rows:,} + {rows:,} rows x 10 features")
    rng = np.random.default_rng(3)

    def sample(shift: bool) -> pd.DataFrame:
        d = {n: rng.normal(i, i + 1, rows) for i, n in enumerate(NUM)}
        d["c0"] = rng.choice([f"k{i}" for i in range(20)], rows)
        d["c1"] = rng.choice([f"k{i}" for i in range(5)], rows)
        if shift:
            d["x0"] = d["x0"] + 0.2                               # 0.2 sd (Evidently alerts from 0.1 sd)
            d["x5"] = d["x5"] * 1.2                               # spread
            d["c1"] = np.where(rng.random(rows) < 0.05, "new", d["c1"])   # a new category, 5 %
        return pd.DataFrame(d)
    ref, cur = sample(False), sample(True)
    ref.to_parquet(f"{tmp}/ref.parquet")
    cur.to_parquet(f"{tmp}/cur.parquet")
    script = Path(tmp) / "evidently_run.py"
    script.write_text(EVIDENTLY)
    out = subprocess.run([evidently_python(), str(script), f"{tmp}/ref.parquet", f"{tmp}/cur.parquet"],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"Evidently failed: {out.stderr[-2000:]}")
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    t0 = time.perf_counter()
    kinds = {**{n: "num" for n in NUM}, **{c: "cat" for c in CAT}}
    a = {n: Profile.of(ref[n].to_numpy() if k == "num" else ref[n], k) for n, k in kinds.items()}
    b = {n: Profile.of(cur[n].to_numpy() if k == "num" else cur[n], k) for n, k in kinds.items()}
    tests = flag([t for n in kinds for t in compare(n, a[n], b[n]) if t.test != "null_rate"])
    ours_s = time.perf_counter() - t0
    ours = {t.feature: t.alert for t in tests}
    planted = {"x0", "x5", "c1"}
    fig["evidently seconds"] = theirs["seconds"]
    fig["palette seconds (profile + test)"] = ours_s
    fig["evidently / palette (time)"] = theirs["seconds"] / ours_s
    fig["palette alerts on planted features"] = sum(ours.get(f, False) for f in planted)
    fig["evidently alerts on planted features"] = sum(theirs["drifted"].get(f, False) for f in planted)
    fig["verdict disagreements on planted features"] = sum(ours.get(f) != theirs["drifted"].get(f) for f in planted)
    fig["false alerts palette / evidently"] = sum(v for f, v in ours.items() if f not in planted)
    fig["false alerts evidently"] = sum(v for f, v in theirs["drifted"].items() if f not in planted)
    print(f"palette {ours_s:.2f}s {sorted(f for f, v in ours.items() if v)}; Evidently {theirs['seconds']:.1f}s "
          f"{sorted(f for f, v in theirs['drifted'].items() if v)}", flush=True)


def main(rows: int | None = None) -> dict:
    rows = rows or ROWS
    fig: dict = {}
    spark = spark_session()
    profiling(spark, rows, fig)
    merging(fig)
    with tempfile.TemporaryDirectory(prefix="palette-bench-monitor-") as tmp:
        served(spark, fig, tmp)
        evidently(fig, tmp, min(rows, 1_000_000))
    return fig


if __name__ == "__main__":
    for k, v in main(int(sys.argv[1]) if len(sys.argv) > 1 else None).items():
        print(f"{k}: {v}")
