"""`palette serve` under load: the tutorial's ETA pipeline over HTTP, on loopback.

The pipeline of online_serving.py (lookups incl. the chained region lookup, DSL
imputation, VectorAssembler, GBT 100 trees × depth 5, 100,000 restaurants), served by
`python -m palette.serve --workers 2` (this machine has 2 cores, which the load generator
shares), from SQLite and then from Redis. Load from `wrk` (from the OS packages; one
thread, a Lua script drawing a random restaurant per request), each run DURATION seconds
(60; ``--rows N`` makes it N):

  (a) one instance per request, closed loop, concurrency 16: requests/s, p50/p99/p99.9,
      errors (goal >= 2,000 requests/s, zero errors);
  (b) one instance per request offered at about 1,000 requests/s: 16 connections, each
      waiting an exponential time (mean 16 ms) before its next request, so arrivals are
      spread as in an open loop (`hey -q` paces its workers in lockstep: they fire
      together, in bursts of 16); p50/p99 (goal p99 <= 5 ms);
  (c) 100 instances per request, concurrency 16: instances/s (goal >= 20,000);
  (d) (a) at concurrency 64: no errors, latency;
  (e) in-process ``scoreInstance`` p50 of the same model, same run, and the HTTP p50 of
      (b) over it: what the HTTP layer costs.

    .venv/bin/python benchmarks/run.py --only http_serving [--rows SECONDS]
"""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
import urllib.request
from datetime import datetime, timezone

from _common import heading, spark_session
from dsl_single_row import latencies_us

DURATION = 60
GOALS = {"sqlite_c16_rps": (">=", 2000.0), "sqlite_c16_errors": ("==", 0), "sqlite_rate1000_p99_ms": ("<=", 5.0),
         "sqlite_batch100_instances_per_s": (">=", 20000.0), "sqlite_c64_errors": ("==", 0),
         "redis_c16_rps": (">=", 2000.0), "redis_c16_errors": ("==", 0), "redis_rate1000_p99_ms": ("<=", 5.0),
         "redis_batch100_instances_per_s": (">=", 20000.0), "redis_c64_errors": ("==", 0)}

WRK_SCRIPT = """
math.randomseed(7)
local ids = {IDS}
local per = PER
local gap = GAP
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local parts = {}
  for i = 1, per do
    parts[i] = '{"r_id":"' .. ids[math.random(#ids)] .. '","order_size":' .. math.random(1, 6) .. '}'
  end
  return wrk.format(nil, "/v1/models/eta:predict", nil, '{"instances":[' .. table.concat(parts, ",") .. ']}')
end
if gap > 0 then
  -- Open loop, approximately: each connection waits an exponential time of mean ``gap`` ms
  -- before its next request, so arrivals are spread like a Poisson stream, not in lockstep.
  delay = function() return -math.log(1 - math.random()) * gap end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %f %f %f %f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.mean))
end
"""


def wrk(url: str, ids: list[str], per: int, connections: int, seconds: int, workdir: str, rate: int = 0) -> dict:
    """A wrk run; with ``rate``, each connection paces itself to ``rate / connections``
    requests/s with exponential gaps (an open-loop load of about ``rate``)."""
    script = f"{workdir}/load.lua"
    with open(script, "w") as f:
        gap = connections * 1000 / rate if rate else 0
        f.write(WRK_SCRIPT.replace("IDS", ",".join(f'"{i}"' for i in ids)).replace("PER", str(per))
                .replace("GAP", f"{gap:.3f}"))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    n, micros, errors, p50, p99, p999, mean = re.search(r"RESULT (.*)", out).group(1).split()
    return {"rps": int(n) / (int(micros) / 1e6), "errors": int(errors), "p50_ms": float(p50) / 1000,
            "p99_ms": float(p99) / 1000, "p999_ms": float(p999) / 1000, "requests": int(n)}


def main(rows: int | None = None) -> dict:
    from online_serving import fitted_eta

    from palette.online import open_store
    from palette.testing import redis_server, start_service, stop
    from palette.transformers import load_scorer

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
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
        # so its driver's threads and collector take no CPU from the service and wrk.
        spark.stop()
        for name, url in urls.items():
            scorer = load_scorer(path, online_store=open_store(url))
            reqs = [{"r_id": i, "order_size": 3} for i in ids[:1000]]
            fig[f"{name}_in_process_p50_us"] = latencies_us(scorer.scoreInstance, reqs, 20_000)["p50"]
            proc, base = start_service(["--model", f"eta={path}", "--online-store", url, "--workers", "2",
                                        "--log-level", "warning"], f"{workdir}/serve.log")
            try:
                one = json.dumps({"instances": [{"r_id": ids[0], "order_size": 3}]})
                req = urllib.request.Request(base + "/v1/models/eta:predict", one.encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
                assert json.load(urllib.request.urlopen(req))["predictions"][0] is not None
                endpoint = base + "/v1/models/eta:predict"
                a = wrk(endpoint, ids, 1, 16, seconds, workdir)
                b = wrk(endpoint, ids, 1, 16, seconds, workdir, rate=1000)
                c = wrk(endpoint, ids, 100, 16, seconds, workdir)
                d = wrk(endpoint, ids, 1, 64, seconds, workdir)
            finally:
                stop(proc, timeout=60)
            fig.update({f"{name}_c16_rps": a["rps"], f"{name}_c16_p50_ms": a["p50_ms"], f"{name}_c16_p99_ms": a["p99_ms"],
                        f"{name}_c16_p999_ms": a["p999_ms"], f"{name}_c16_errors": a["errors"],
                        f"{name}_rate1000_rps": b["rps"], f"{name}_rate1000_p50_ms": b["p50_ms"],
                        f"{name}_rate1000_p99_ms": b["p99_ms"], f"{name}_rate1000_errors": b["errors"],
                        f"{name}_batch100_instances_per_s": c["rps"] * 100, f"{name}_batch100_errors": c["errors"],
                        f"{name}_c64_rps": d["rps"], f"{name}_c64_p99_ms": d["p99_ms"], f"{name}_c64_errors": d["errors"],
                        f"{name}_http_over_in_process_p50": b["p50_ms"] * 1000 / fig[f"{name}_in_process_p50_us"]})
            print(f"{name}: c16 {a['rps']:,.0f} req/s p50 {a['p50_ms']:.2f} p99 {a['p99_ms']:.2f} "
                  f"p99.9 {a['p999_ms']:.2f} ms, {a['errors']} errors; 1,000 req/s offered: p50 {b['p50_ms']:.2f} "
                  f"p99 {b['p99_ms']:.2f} ms; 100 per request: {c['rps'] * 100:,.0f} instances/s; c64 "
                  f"{d['rps']:,.0f} req/s p99 {d['p99_ms']:.2f} ms, {d['errors']} errors; in-process p50 "
                  f"{fig[f'{name}_in_process_p50_us']:.0f} µs", flush=True)
    return fig
