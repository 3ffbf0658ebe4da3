"""Scaling on a Spark standalone cluster: the ETA jobs with one worker against two.

A cluster on loopback (``palette.testing.spark_cluster``: a master and two workers of one
core and 1.5 GB each, their own JVMs), a Redis on loopback. The ETA simulation at four
sizes — rows/8, rows/4, rows/2 and rows orders over 28 days (25,000 to 200,000 at the
default) — is ingested into Delta once. Then, in an application that may use one worker
(``spark.cores.max=1``: one executor) and in one that may use both (two executors), at
each size:

  (a) the tutorial's feature stages (two point-in-time lookups, the region id,
      imputation) over every order, forced with a ``noop`` write (best of two);
  (b) ``materialize`` of every group into Redis (full), written from the executors;
  (c) ``batch_score`` of every order (a GBT 50 x 5 fitted once on the smallest size) into
      a Delta table.

Each application first does one unrecorded pass at the smallest size (JVM, Delta, MLflow
warm-up). Figures: seconds per step, size and worker count, and the 1-worker / 2-worker
time ratio per step and size (``*_speedup_*``: 2 is perfect scaling). Both workers share
this machine's two cores with the driver and Redis, so the ratio is a floor.

    .venv/bin/python benchmarks/run.py --only cluster_scaling [--rows N]
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from _fresh import cli, noop_write, remove, scratch

DEFAULT_ROWS = 200_000
STEPS = ("pit", "materialize", "batch_score")


def _app(master: str, cores: int):
    from palette.spark import session
    spark = session(app_name=f"palette-bench-cluster-{cores}", master=master, conf={
        "spark.cores.max": str(cores), "spark.executor.memory": "1g", "spark.driver.memory": "2g",
        "spark.sql.shuffle.partitions": "8", "spark.pyspark.python": os.environ["PYSPARK_PYTHON"]})
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _measure(spark, size: dict, model_uri: str, redis_url: str) -> dict[str, float]:
    from pyspark.ml import Pipeline

    from palette.examples import eta
    from palette.jobs import batch_score
    orders = spark.read.parquet(size["sim"].paths["orders"]).cache()
    orders.count()
    features = Pipeline(stages=eta.stages(size["store"].root)).fit(orders.limit(1000))
    pit = []
    for _ in range(2):
        t0 = time.perf_counter()
        noop_write(features.transform(orders))
        pit.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    size["store"].materialize(online_store=redis_url, full=True, spark=spark)
    materialize = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch_score.run(model_uri, size["sim"].paths["orders"], str(size["work"] / "predictions"),
                    f"bench-{spark.sparkContext.applicationId}", spark=spark)
    scored = time.perf_counter() - t0
    orders.unpersist()
    return {"pit": min(pit), "materialize": materialize, "batch_score": scored}


def main(rows: int | None = None) -> dict:
    import sys

    import mlflow

    from palette.examples import eta
    from palette.jobs import train
    from palette.store import FeatureStore
    from palette.testing import redis_server, spark_cluster

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    rows = rows or DEFAULT_ROWS
    sizes = [rows // 8, rows // 4, rows // 2, rows]
    base = scratch("palette-cluster-scaling-")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{base}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.create_experiment("cluster_scaling", artifact_location=f"file://{base}/artifacts")
    end = datetime.utcnow().replace(second=0, microsecond=0)
    figures: dict[str, float] = {}
    try:
        with spark_cluster(workers=2, cores=1) as (master, _), redis_server() as (redis_url, _):
            data, model_uri = {}, None
            for cores in (1, 2):
                spark = _app(master, cores)
                for i, n in enumerate([sizes[0]] + sizes):
                    if n not in data:                      # simulated and ingested once, by the first app
                        work = base / f"n{n}"
                        sim = eta.simulate(str(work / "src"), orders=n, seed=7, days=28,
                                           start=end - timedelta(days=28))
                        store = FeatureStore(work / "store")
                        eta.declare(store)
                        eta.ingest(spark, store, sim)
                        data[n] = {"sim": sim, "store": store, "work": work}
                    if model_uri is None:
                        mlflow.set_experiment("cluster_scaling")
                        model_uri = train.run("palette.examples.eta:pipeline", data[n]["sim"].paths["orders"],
                                              "delivery_minutes", "order_ts", store_root=data[n]["store"].root,
                                              register="eta_cluster_scaling", spark=spark)["registered"]
                    took = _measure(spark, data[n], model_uri, redis_url)
                    if i == 0:                             # warm-up: not recorded
                        continue
                    for step, seconds in took.items():
                        figures[f"{step}_s_{n}_{cores}w"] = seconds
                    print(f"  {cores} worker(s), {n:>9,} orders: point-in-time features {took['pit']:.1f} s, "
                          f"materialize {took['materialize']:.1f} s, batch score {took['batch_score']:.1f} s",
                          flush=True)
                spark.stop()
        for n in sizes:
            for step in STEPS:
                figures[f"{step}_speedup_{n}"] = figures[f"{step}_s_{n}_1w"] / figures[f"{step}_s_{n}_2w"]
        print(f"\n  {'orders':>9}  " + "  ".join(f"{s + ' 1w/2w':>22}" for s in STEPS))
        for n in sizes:
            print(f"  {n:>9,}  " + "  ".join(
                f"{figures[f'{s}_s_{n}_1w']:6.1f} / {figures[f'{s}_s_{n}_2w']:5.1f} = "
                f"{figures[f'{s}_speedup_{n}']:4.2f}x" for s in STEPS), flush=True)
    finally:
        remove(base)
    return figures


if __name__ == "__main__":
    cli("cluster_scaling", main)
