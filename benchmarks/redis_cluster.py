"""Redis Cluster against a single Redis, on the same machine: the ETA pipeline of
online_serving.py (100,000 restaurants, GBT 100 trees x depth 5) materialized into a
single ``redis-server`` and into a 3-master Redis Cluster (``redis+cluster://``, both
from the OS packages, on loopback), then, for each:

  (a) materialization from Spark's executors: seconds;
  (b) ``scoreInstance`` (one request's lookups: the restaurant's 3 groups in one slot,
      then its region's) over CALLS calls: p50 µs and calls/s;
  (c) ``scoreBatch`` of 100 requests: rows/s;
  (d) ``palette serve --workers 2`` under `wrk` at concurrency 16, one instance per
      request, RUNS runs of DURATION seconds (``--rows N`` makes it N): median req/s;

and the cluster/single ratio of each throughput (goal >= 0.8: on one machine a cluster
only adds routing; what it buys is capacity over machines, shown by the keys spread
evenly over the three masters, also reported). 2 cores are shared by the servers, the
service and the load generator, so read the ratios, not the absolute figures.

    make wrk && .venv/bin/python benchmarks/run.py --only redis_cluster [--rows SECONDS]
"""
from __future__ import annotations

import json
import random
import statistics
import tempfile
import urllib.request
from datetime import datetime, timezone

from _common import heading, spark_session, timed
from _load import wrk
from dsl_single_row import latencies_us

CALLS = 20_000
DURATION = 20
RUNS = 3
GOALS = {"lookups_cluster_over_single": (">=", 0.8), "http_cluster_over_single": (">=", 0.8),
         "batch_cluster_over_single": (">=", 0.8), "keys_max_over_min_master": ("<=", 1.2),
         "http_errors": ("==", 0)}


def keys_per_master(cluster, prefix: str) -> list[int]:
    return [sum(1 for _ in cluster.client(port).scan_iter(match=prefix + ":*", count=1000))
            for port in sorted(cluster.masters())]


def main(rows: int | None = None) -> dict:
    from online_serving import RESTAURANTS, batch_rows_per_s, fitted_eta

    from palette.examples import eta
    from palette.online import open_store
    from palette.testing import redis_cluster, redis_server, start_service, stop
    from palette.transformers import load_scorer

    seconds = rows or DURATION
    heading(f"redis_cluster: a 3-master Redis Cluster against a single Redis, {seconds} s per HTTP run")
    spark = spark_session()
    as_of = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    workdir = tempfile.mkdtemp(prefix="palette-bench-cluster-")
    store, _, path = fitted_eta(spark, workdir, as_of)
    requests = [{"r_id": r_id, "order_size": size} for _, r_id, size in eta.requests(RESTAURANTS, 2000, seed=29)]
    ids = [f"r{i}" for i in random.Random(3).sample(range(RESTAURANTS), 2000)]
    fig = {}
    with redis_server() as (single, _), redis_cluster(masters=3, replicas=0) as cluster:
        urls = {"single": f"{single}?timeout_ms=100", "cluster": f"{cluster.url}?timeout_ms=100"}
        for name, url in urls.items():
            fig[f"materialize_{name}_s"] = timed(lambda: store.materialize(online_store=url, spark=spark))
            print(f"materialized into {name} Redis in {fig[f'materialize_{name}_s']:.1f}s", flush=True)
        per = keys_per_master(cluster, "palette")
        fig.update({f"keys_master_{i + 1}": n for i, n in enumerate(per)})
        fig["keys_max_over_min_master"] = max(per) / min(per)
        print(f"keys per master: {per} (max/min {fig['keys_max_over_min_master']:.3f})", flush=True)
        spark.stop()                    # a serving host runs no JVM: leave the cores to the servers
        for name, url in urls.items():
            scorer = load_scorer(path, online_store=open_store(url))
            lat = latencies_us(scorer.scoreInstance, requests, CALLS)
            fig[f"lookups_{name}_p50_us"], fig[f"lookups_{name}_per_s"] = lat["p50"], 1e6 / lat["loop_mean"]
            fig[f"batch_{name}_rows_per_s"] = batch_rows_per_s(scorer, requests, 20_000)
            scorer.close()
            proc, base = start_service(["--model", f"eta={path}", "--online-store", url, "--workers", "2",
                                        "--log-level", "warning"], f"{workdir}/serve-{name}.log")
            try:
                one = json.dumps({"instances": [{"r_id": ids[0], "order_size": 3}]}).encode()
                req = urllib.request.Request(base + "/v1/models/eta:predict", one, method="POST",
                                             headers={"Content-Type": "application/json"})
                assert json.load(urllib.request.urlopen(req))["predictions"][0] is not None
                runs = [wrk(base + "/v1/models/eta:predict", ids, 1, 16, seconds, workdir) for _ in range(RUNS)]
            finally:
                stop(proc, timeout=60)
            fig[f"http_{name}_rps"] = statistics.median(r["rps"] for r in runs)
            fig["http_errors"] = fig.get("http_errors", 0) + sum(r["errors"] for r in runs)
            print(f"{name}: scoreInstance p50 {lat['p50']:.0f} µs ({fig[f'lookups_{name}_per_s']:,.0f} calls/s); "
                  f"scoreBatch {fig[f'batch_{name}_rows_per_s']:,.0f} rows/s; HTTP c16 "
                  f"{[round(r['rps']) for r in runs]} req/s", flush=True)
    for what, unit in (("lookups", "per_s"), ("batch", "rows_per_s"), ("http", "rps")):
        fig[f"{what}_cluster_over_single"] = fig[f"{what}_cluster_{unit}"] / fig[f"{what}_single_{unit}"]
    fig["materialize_cluster_over_single"] = fig["materialize_cluster_s"] / fig["materialize_single_s"]
    print(f"cluster/single: lookups {fig['lookups_cluster_over_single']:.2f}x, scoreBatch "
          f"{fig['batch_cluster_over_single']:.2f}x, HTTP {fig['http_cluster_over_single']:.2f}x; materialization "
          f"took {fig['materialize_cluster_over_single']:.2f}x as long", flush=True)
    return fig

