"""RPC features on the serving path: what a fetched feature adds to a request, and batching.

A lookup stage reads the ETA pipeline's first dependency level from SQLite (three stored
groups: kitchen load, location, prep time; 2,000 restaurants) and, in the variants, one or
three RPC groups from the kitchen service (``palette.examples.kitchen``, its own process on
loopback) answering in 2 ms as a client sees it (its sleep calibrated until a plain call's
p50 is 2 ms). ``scoreInstance`` p50 of each variant, interleaved in the same run:

- ``added p50 one RPC group (ms)``: with one RPC group minus without — about the service's
  own latency (goal <= 2.5 ms for a 2 ms service), since the store read runs while the call
  is in flight;
- ``three groups / one group (added p50)``: three RPC groups called at once add about what
  one does (goal <= 1.3);
- ``plain HTTP call p50 (ms)``: the service called directly (``http.client``, a kept-alive
  connection), the floor, and
  ``added p50 over the plain call (ms)``: what palette adds to it (pool, parsing, policy);
- ``scoreBatch 100 keys / scoreInstance (rows/s)``: 100 instances with 100 distinct keys
  through the batch endpoint, against single rows one by one (goal >= 20).

    .venv/bin/python benchmarks/run.py --only rpc_features
"""
from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timezone

from _common import heading

GOALS = {"added p50 one RPC group (ms)": ("<=", 2.5), "three groups / one group (added p50)": ("<=", 1.3),
         "scoreBatch 100 keys / scoreInstance (rows/s)": (">=", 20.0)}
RESTAURANTS = 2000
SERVICE_MS = 2.0


def _setup(tmp: str, kitchen: str):
    from palette import Entity, FeatureGroup, Fetcher
    from palette.online import open_store
    from palette.online.writes import write_rows
    from palette.testing import save_lookup_stage

    restaurant = Entity("restaurant", {"r_id": "str"})
    stored = [FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num"}),
              FeatureGroup("restaurant", "location_fg", {"lat": "num", "long": "num"}, max_age="3d"),
              FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}, max_age="7d")]
    url = f"sqlite:///{tmp}/online.db"
    now = datetime.now(timezone.utc)
    with open_store(url) as store:
        for g in stored:
            write_rows(store, restaurant, g, [{"r_id": f"r{i}", "event_ts": now, **{f.name: float(i) for f in g.features}}
                                              for i in range(RESTAURANTS)])
    fields = {"queue_minutes": "$.queue.minutes"}
    rpc = [FeatureGroup("restaurant", f"kitchen{i}_rpc", {"queue_minutes": "num"}, kind="rpc", fetcher=Fetcher(
        url=f"{kitchen}/restaurants/{{r_id}}/queue", batch_url=f"{kitchen}/restaurants/queue:batch", fields=fields,
        timeout="250ms")) for i in range(3)]
    base = {"n_meal": "restaurant:realtime_fg:n_meal:r_id", "lat": "restaurant:location_fg:lat:r_id",
            "long": "restaurant:location_fg:long:r_id", "prep_time": "restaurant:batch_fg:prep_time:r_id"}
    models = {}
    for name, groups in (("store", []), ("one", rpc[:1]), ("three", rpc)):
        refs = {**base, **{f"q{i}": f"restaurant:{g.name}:queue_minutes:r_id" for i, g in enumerate(groups)}}
        models[name] = save_lookup_stage(f"{tmp}/{name}", refs, [restaurant], stored + groups)
    return url, models


def _p50(xs: list[float]) -> float:
    return statistics.median(xs)


def main(rows: int | None = None) -> dict:
    import http.client
    from urllib.parse import urlsplit

    from palette.testing import kitchen_mode, start_kitchen, stop
    from palette.transformers.runtime import load_scorer

    n = rows or 2000
    heading(f"RPC features: {n:,} requests per variant, a service answering in {SERVICE_MS:g} ms")
    proc, kitchen = start_kitchen()
    try:
        with tempfile.TemporaryDirectory(prefix="palette-rpc-bench-") as tmp:
            url, paths = _setup(tmp, kitchen)
            scorers = {name: load_scorer(p, online_store=url) for name, p in paths.items()}
            where = urlsplit(kitchen)
            conn = http.client.HTTPConnection(where.hostname, where.port)

            def plain_call(key: str) -> bytes:
                conn.request("GET", f"/restaurants/{key}/queue")
                return conn.getresponse().read()
            # The service answers in SERVICE_MS as its clients see it: its sleep is adjusted until
            # a plain call's p50 is that.
            delay = SERVICE_MS
            for _ in range(4):
                kitchen_mode(kitchen, "fast", delay_ms=delay)
                plain = []
                for i in range(200):
                    t0 = time.perf_counter()
                    plain_call(f"r{i}")
                    plain.append(time.perf_counter() - t0)
                delay = max(0.0, delay - (_p50(plain) * 1e3 - SERVICE_MS))
            times: dict[str, list[float]] = {name: [] for name in [*scorers, "plain"]}
            for name, s in scorers.items():                      # warm up: connections, caches
                for i in range(50):
                    s.scoreInstance({"r_id": f"r{i}"})
            for i in range(n):
                key = f"r{i % RESTAURANTS}"
                for name, s in scorers.items():
                    t0 = time.perf_counter()
                    s.scoreInstance({"r_id": key})
                    times[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                plain_call(key)
                times["plain"].append(time.perf_counter() - t0)
            p50 = {name: _p50(t) * 1e3 for name, t in times.items()}
            added_one, added_three = p50["one"] - p50["store"], p50["three"] - p50["store"]

            one = scorers["one"]
            batches = max(20, n // 100)
            kitchen_mode(kitchen, "fast", reset=True)
            t0 = time.perf_counter()
            for b in range(batches):
                one.scoreBatch([{"r_id": f"r{(b * 100 + j) % RESTAURANTS}"} for j in range(100)])
            batch_rate = batches * 100 / (time.perf_counter() - t0)
            assert kitchen_mode(kitchen)["batch_requests"] == batches
            single_rate = 1.0 / (statistics.mean(times["one"]))
            for s in scorers.values():
                s.close()
    finally:
        stop(proc)
    print(f"scoreInstance p50: store only {p50['store']:.3f} ms, + one RPC group {p50['one']:.3f} ms, "
          f"+ three {p50['three']:.3f} ms; the service called directly: {p50['plain']:.3f} ms")
    print(f"scoreBatch of 100 distinct keys: {batch_rate:,.0f} rows/s; scoreInstance one by one: {single_rate:,.0f} rows/s")
    return {"store only p50 (ms)": p50["store"], "plain HTTP call p50 (ms)": p50["plain"],
            "added p50 one RPC group (ms)": added_one, "added p50 over the plain call (ms)": added_one - p50["plain"], "added p50 three RPC groups (ms)": added_three,
            "three groups / one group (added p50)": added_three / added_one,
            "scoreBatch 100 keys (rows/s)": batch_rate,
            "scoreBatch 100 keys / scoreInstance (rows/s)": batch_rate / single_rate}


if __name__ == "__main__":
    main()
