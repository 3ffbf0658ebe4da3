"""The tutorial's ETA pipeline served from the online store, without Spark.

PaletteTransformer (n_meal, prep_time, lat, long by r_id) -> regionId DSL stage ->
PaletteTransformer (n_busy by the computed region_id) -> DSL imputation ->
VectorAssembler -> GBTRegressor (100 trees, depth 5), fitted on point-in-time features of
100,000 restaurants, saved, materialized into SQLite (a file) and Redis (a real server on
loopback). In one run:

  (a) ``load_scorer(path, online_store=...).scoreInstance(request)`` over 100,000 calls
      (``--rows`` overrides) on random restaurants (5% unknown): p50 / p99 µs, SQLite
      and Redis (goals: SQLite p50 <= 100, p99 <= 500; Redis p50 <= 300);
  (b) Spark's ``transform`` of a one-row DataFrame of the same model (median of 10) and
      its ratio to (a)'s p50;
  (c) ``scoreBatch`` of 1,000 requests: rows/s, against the single-row rows/s of (a)
      (goal >= 10x).

Before timing, the served predictions of 1,000 requests are compared with Spark's.

    .venv/bin/python benchmarks/run.py --only online_serving [--rows N]
"""
from __future__ import annotations

import math
import tempfile
import time
from datetime import datetime, timezone

from _common import goal_text, heading, median, spark_session, timed
from dsl_single_row import latencies_us

DEFAULT_CALLS = 100_000
RESTAURANTS = 100_000
TRAIN_ORDERS = 20_000
REQUESTS = 1_000
BATCH = 1_000
SPARK_REPEATS = 10
GOALS = {"sqlite_p50_us": ("<=", 100.0), "sqlite_p99_us": ("<=", 500.0), "redis_p50_us": ("<=", 300.0),
         "sqlite_batch_over_single": (">=", 10.0), "redis_batch_over_single": (">=", 10.0),
         "prediction_mismatches": ("==", 0)}


def fitted_eta(spark, workdir: str, as_of: datetime):
    """(store, fitted model, saved path)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor
    from pyspark.sql import functions as F

    from palette import FeatureStore
    from palette.examples import eta

    store = FeatureStore(f"{workdir}/store")
    eta.declare(store)
    t = timed(lambda: eta.generate(spark, store, RESTAURANTS, as_of))
    print(f"ingested the histories of {RESTAURANTS:,} restaurants in {t:.1f}s", flush=True)
    orders = spark.createDataFrame(eta.requests(RESTAURANTS, TRAIN_ORDERS, seed=17),
                                   "order_id int, r_id string, order_size int")
    orders = orders.withColumn("order_ts", F.lit(as_of)).withColumn(
        "eta", F.col("order_size") * 3.0 + F.col("order_id") % 7 + F.rand(3) * 4)
    pipeline = Pipeline(stages=eta.stages(store.root) + [
        VectorAssembler(inputCols=eta.FEATURES, outputCol="features"),
        GBTRegressor(labelCol="eta", maxIter=100, maxDepth=5, seed=1)])
    t0 = time.perf_counter()
    model = pipeline.fit(orders)
    print(f"fitted the pipeline (GBT 100 trees, depth 5) on {TRAIN_ORDERS:,} orders in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)
    path = f"{workdir}/eta_model"
    model.write().save(path)
    return store, model, path


def spark_one_row_s(spark, model, requests, as_of) -> float:
    def once(r):
        df = spark.createDataFrame([(r["r_id"], r["order_size"], as_of)], "r_id string, order_size int, "
                                   "order_ts timestamp")
        model.transform(df).select("prediction").collect()
    for r in requests[:3]:
        once(r)
    return median([timed(lambda: once(requests[i])) for i in range(SPARK_REPEATS)])


def batch_rows_per_s(scorer, rows, calls: int) -> float:
    scorer.scoreBatch(rows)                         # warm-up
    n, t0 = 0, time.perf_counter()
    while n < calls:
        scorer.scoreBatch(rows)
        n += len(rows)
    return n / (time.perf_counter() - t0)


def main(rows: int | None = None) -> dict:
    from palette.examples import eta
    from palette.online import open_store
    from palette.testing import redis_server
    from palette.transformers import load_scorer

    calls = rows or DEFAULT_CALLS
    heading(f"online_serving: the ETA pipeline served from SQLite and Redis ({calls:,} calls)")
    spark = spark_session()
    as_of = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    clock = as_of.replace(tzinfo=timezone.utc).timestamp()
    workdir = tempfile.mkdtemp(prefix="palette-bench-online-")
    store, model, path = fitted_eta(spark, workdir, as_of)
    requests = [{"r_id": r_id, "order_size": size} for _, r_id, size in eta.requests(RESTAURANTS, REQUESTS, seed=23)]
    spark_df = spark.createDataFrame([(i, r["r_id"], r["order_size"], as_of) for i, r in enumerate(requests)],
                                     "i int, r_id string, order_size int, order_ts timestamp")
    expected = {row.i: row.prediction for row in model.transform(spark_df).select("i", "prediction").collect()}
    fig = {}
    with redis_server() as (redis_url, _):
        urls = {"sqlite": f"sqlite:///{workdir}/online.db", "redis": f"{redis_url}?timeout_ms=50"}
        for name, url in urls.items():
            t = timed(lambda: store.materialize(online_store=url, spark=spark))
            print(f"materialized into {name} in {t:.1f}s", flush=True)
        mismatches = 0
        for name, url in urls.items():
            scorer = load_scorer(path, online_store=open_store(url, clock=lambda: clock))
            for i, r in enumerate(requests):
                got = scorer.scoreInstance(r)["prediction"]
                mismatches += not math.isclose(got, expected[i], rel_tol=1e-12)
            lat = latencies_us(scorer.scoreInstance, requests, calls)
            fig[f"{name}_p50_us"], fig[f"{name}_p99_us"] = lat["p50"], lat["p99"]
            single_rows_per_s = 1e6 / lat["loop_mean"]
            batch = batch_rows_per_s(scorer, requests, max(calls // 2, BATCH * 5))
            fig[f"{name}_batch_rows_per_s"] = batch
            fig[f"{name}_batch_over_single"] = batch / single_rows_per_s
            print(f"{name}: scoreInstance p50 {lat['p50']:.1f} µs, p99 {lat['p99']:.1f} µs "
                  f"({goal_text(lat['p50'], *GOALS[f'{name}_p50_us'])}); scoreBatch {batch:,.0f} rows/s = "
                  f"{batch / single_rows_per_s:.1f}x single rows ({single_rows_per_s:,.0f}/s)", flush=True)
        fig["prediction_mismatches"] = mismatches
    spark_s = spark_one_row_s(spark, model, requests, as_of)
    fig["spark_one_row_ms"] = spark_s * 1000
    fig["spark_over_sqlite_p50"] = spark_s * 1e6 / fig["sqlite_p50_us"]
    fig["spark_over_redis_p50"] = spark_s * 1e6 / fig["redis_p50_us"]
    print(f"Spark one-row transform {spark_s * 1000:.0f} ms: {fig['spark_over_sqlite_p50']:,.0f}x the SQLite p50, "
          f"{fig['spark_over_redis_p50']:,.0f}x the Redis p50; served predictions differing from Spark's: "
          f"{mismatches} of {2 * len(requests)}", flush=True)
    return fig
