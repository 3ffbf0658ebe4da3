"""The parity harness on the tutorial's ETA pipeline: 100,000 rows, against ``transform``.

The pipeline of ``online_serving`` (lookups incl. the chained ``region_id`` lookup, DSL
imputation, VectorAssembler, GBTRegressor 100 trees x depth 5) over 100,000 restaurants,
materialized into SQLite. In one run, on the same 100,000 requests (``--rows`` overrides):

  (a) Spark's ``transform`` of them, written to the ``noop`` sink (every column computed,
      nothing collected): the baseline;
  (b) ``check_parity(path, requests, online_store=sqlite)``: the serving side in its own
      process without Spark, ``transform`` stage by stage keeping every stage's outputs,
      the offline view of every key read, and the comparison of every column.

Figures: (b)'s wall time (goal: under 120 s on 2 cores), its ratio to (a), its parts, and
the mismatches it found (goal: 0).

    .venv/bin/python benchmarks/run.py --only parity_check [--rows N]
"""
from __future__ import annotations

import tempfile
from datetime import datetime, timezone

from _common import heading, spark_session, timed

ROWS = 100_000
GOALS = {"harness_s": ("<=", 120.0), "mismatched_rows": ("==", 0), "store_skew_keys": ("==", 0)}


def main(rows: int | None = None) -> dict:
    from online_serving import RESTAURANTS, fitted_eta
    from pyspark.sql import functions as F

    from palette.examples import eta
    from palette.parity import check_parity

    n = rows or ROWS
    heading(f"parity_check: the harness on {n:,} rows of the ETA pipeline")
    spark = spark_session()
    as_of = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    workdir = tempfile.mkdtemp(prefix="palette-bench-parity-")
    store, model, path = fitted_eta(spark, workdir, as_of)
    url = f"sqlite:///{workdir}/online.db"
    store.materialize(online_store=url, spark=spark)
    requests = spark.createDataFrame(eta.requests(RESTAURANTS, n, seed=29), "order_id int, r_id string, order_size int")
    requests = requests.cache()
    requests.count()
    with_ts = requests.withColumn("order_ts", F.lit(as_of))
    model.transform(with_ts).write.format("noop").mode("overwrite").save()        # warm up
    transform_s = timed(lambda: model.transform(with_ts).write.format("noop").mode("overwrite").save())
    report = None

    def check():
        nonlocal report
        report = check_parity(path, requests, online_store=url)
    harness_s = timed(check)
    print(report)
    report.write_html(f"{workdir}/parity.html")
    print(f"HTML report: {workdir}/parity.html", flush=True)
    fig = {"rows": n, "transform_s": transform_s, "harness_s": harness_s, "harness_over_transform": harness_s / transform_s,
           "mismatched_rows": report.mismatched_rows, "store_skew_keys": len(report.store_skew)}
    fig.update({f"part_{k.replace(' ', '_')}_s": v for k, v in report.seconds.items()})
    requests.unpersist()
    return fig
