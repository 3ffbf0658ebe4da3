"""`palette serve` under load: the tutorial's ETA pipeline over HTTP, on loopback.

The pipeline of online_serving.py (lookups incl. the chained region lookup, DSL
imputation, VectorAssembler, GBT 100 trees × depth 5, 100,000 restaurants), served by
`python -m palette.serve --workers 2` (this machine has 2 cores, which the load generators
share), from SQLite and then from Redis. Each run lasts DURATION seconds (30; ``--rows N``
makes it N), on random restaurants:

  (a) closed loop, `wrk` (OS packages) at concurrency 16, one instance per request, 3 runs:
      requests/s, median and range (goal >= 2,000 in every run), errors (goal 0);
  (b) open loop, `vegeta` (``make vegeta``: built from the Go module proxy) at a fixed
      1,000 requests/s, 3 runs: p50 / p99 / p99.9, median and range (goal p99 <= 2 ms).
      Requests leave at their scheduled times whether or not earlier ones were answered,
      so queueing shows in the latency (a closed loop such as wrk's waits for each answer
      before it sends more, and hides it: coordinated omission);
  (c) open loop at rising rates (1,000 requests/s more each step, DURATION / 3 each)
      until p99 exceeds 10 ms or a request fails: the highest rate whose p99 stayed
      within 10 ms;
  (d) 100 instances per request, wrk at concurrency 16: instances/s (goal >= 20,000);
  (e) wrk at concurrency 64: no errors;
  (f) the baseline: in-process ``scoreInstance`` p50 of the same model in the same run,
      and (b)'s HTTP p50 over it (what the HTTP layer costs).

    make vegeta wrk && .venv/bin/python benchmarks/run.py --only http_serving [--rows SECONDS]
"""
from __future__ import annotations

import json
import random
import statistics
import tempfile
import urllib.request
from datetime import datetime, timezone

from _common import heading, spark_session
from _load import attack, summary, vegeta_binary, write_targets, wrk
from dsl_single_row import latencies_us

DURATION = 30
RUNS = 3
MAX_RATE = 10_000
GOALS = {f"{b}_{f}": g for b in ("sqlite", "redis") for f, g in {
    "c16_rps_min": (">=", 2000.0), "c16_errors": ("==", 0), "open1000_p99_ms_median": ("<=", 2.0),
    "open1000_errors": ("==", 0), "batch100_instances_per_s": (">=", 20000.0), "c64_errors": ("==", 0)}.items()}


def vegeta(targets: str, rate: int, seconds: int, workdir: str) -> dict:
    """An open-loop run at ``rate`` requests/s: latency percentiles over every request."""
    return summary(attack(targets, rate, seconds, workdir))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def load(name: str, endpoint: str, ids: list[str], seconds: int, workdir: str, fig: dict) -> None:
    """(a)-(e) against one running service; figures into ``fig`` under ``name``."""
    closed = [wrk(endpoint, ids, 1, 16, seconds, workdir) for _ in range(RUNS)]
    fig[f"{name}_c16_rps_median"] = statistics.median(r["rps"] for r in closed)
    fig[f"{name}_c16_rps_min"] = min(r["rps"] for r in closed)
    fig[f"{name}_c16_rps_max"] = max(r["rps"] for r in closed)
    fig[f"{name}_c16_p99_ms_median"] = statistics.median(r["p99_ms"] for r in closed)
    fig[f"{name}_c16_errors"] = sum(r["errors"] for r in closed)
    print(f"{name}: closed loop c16, {RUNS} runs: {spread([r['rps'] for r in closed])} req/s, p99 "
          f"{spread([r['p99_ms'] for r in closed])} ms, {fig[f'{name}_c16_errors']} errors", flush=True)
    rnd = random.Random(11)
    targets = write_targets(f"{workdir}/targets.json", [
        (endpoint, json.dumps({"instances": [{"r_id": i, "order_size": rnd.randint(1, 6)}]}).encode()) for i in ids])
    opened = [vegeta(targets, 1000, seconds, workdir) for _ in range(RUNS)]
    for q in ("p50", "p99", "p999"):
        values = [r[f"{q}_ms"] for r in opened]
        fig[f"{name}_open1000_{q}_ms_median"] = statistics.median(values)
        fig[f"{name}_open1000_{q}_ms_max"] = max(values)
    fig[f"{name}_open1000_errors"] = sum(r["errors"] for r in opened)
    print(f"{name}: open loop 1,000 req/s, {RUNS} runs: p50 {spread([r['p50_ms'] for r in opened])}, p99 "
          f"{spread([r['p99_ms'] for r in opened])}, p99.9 {spread([r['p999_ms'] for r in opened])} ms, "
          f"{fig[f'{name}_open1000_errors']} errors", flush=True)
    best, rate = 0, 1000
    while rate <= MAX_RATE:
        r = vegeta(targets, rate, max(seconds // 3, 5), workdir)
        print(f"{name}: open loop {rate:,} req/s: p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} p99.9 "
              f"{r['p999_ms']:.2f} ms, {r['errors']} errors", flush=True)
        if r["errors"] or r["p99_ms"] > 10.0:
            break
        best, rate = rate, rate + 1000
    fig[f"{name}_open_max_rate_p99_within_10ms"] = best
    batch = wrk(endpoint, ids, 100, 16, seconds, workdir)
    fig[f"{name}_batch100_instances_per_s"] = batch["rps"] * 100
    fig[f"{name}_batch100_errors"] = batch["errors"]
    c64 = wrk(endpoint, ids, 1, 64, seconds, workdir)
    fig.update({f"{name}_c64_rps": c64["rps"], f"{name}_c64_p99_ms": c64["p99_ms"], f"{name}_c64_errors": c64["errors"]})
    print(f"{name}: highest open-loop rate with p99 <= 10 ms: {best:,} req/s; 100 per request: "
          f"{batch['rps'] * 100:,.0f} instances/s; c64 {c64['rps']:,.0f} req/s p99 {c64['p99_ms']:.2f} ms, "
          f"{c64['errors']} errors", flush=True)


def main(rows: int | None = None) -> dict:
    from online_serving import fitted_eta

    from palette.online import open_store
    from palette.testing import redis_server, start_service, stop
    from palette.transformers import load_scorer

    vegeta_binary()
    seconds = rows or DURATION
    heading(f"http_serving: palette serve under load, {seconds} s per run")
    spark = spark_session()
    as_of = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    workdir = tempfile.mkdtemp(prefix="palette-bench-http-")
    store, _, path = fitted_eta(spark, workdir, as_of)
    ids = [f"r{i}" for i in random.Random(3).sample(range(100_000), 2000)]
    fig = {}
    with redis_server() as (redis_url, _):
        urls = {"sqlite": f"sqlite:///{workdir}/online.db", "redis": f"{redis_url}?timeout_ms=100"}
        for url in urls.values():
            store.materialize(online_store=url, spark=spark)
        # A serving host runs no JVM: stop this run's Spark (a later module starts its own)
        # so its driver's threads and collector take no CPU from the service and the load.
        spark.stop()
        for name, url in urls.items():
            scorer = load_scorer(path, online_store=open_store(url))
            reqs = [{"r_id": i, "order_size": 3} for i in ids[:1000]]
            fig[f"{name}_in_process_p50_us"] = latencies_us(scorer.scoreInstance, reqs, 20_000)["p50"]
            scorer.close()
            proc, base = start_service(["--model", f"eta={path}", "--online-store", url, "--workers", "2",
                                        "--log-level", "warning"], f"{workdir}/serve.log")
            try:
                one = json.dumps({"instances": [{"r_id": ids[0], "order_size": 3}]})
                req = urllib.request.Request(base + "/v1/models/eta:predict", one.encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
                assert json.load(urllib.request.urlopen(req))["predictions"][0] is not None
                load(name, base + "/v1/models/eta:predict", ids, seconds, workdir, fig)
            finally:
                stop(proc, timeout=60)
            fig[f"{name}_http_over_in_process_p50"] = \
                fig[f"{name}_open1000_p50_ms_median"] * 1000 / fig[f"{name}_in_process_p50_us"]
            print(f"{name}: in-process p50 {fig[f'{name}_in_process_p50_us']:.0f} µs; over HTTP at 1,000 req/s "
                  f"{fig[f'{name}_http_over_in_process_p50']:.1f}x that", flush=True)
    return fig
