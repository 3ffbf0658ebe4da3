"""Synthetic Uber Eats data for the ETA example: weeks of orders with a label a model can learn.

Restaurants in three cities, each with a location, a typical preparation time and a
popularity; a daily batch of mean preparation times (at 03:00, for the day before); the
**order events** (restaurant, region, time, size) that the stream features count — meals
ordered from the restaurant in the last 30 minutes (``n_meal``, its kitchen's load) and
orders in its geohash region in the last 15 minutes (``n_busy``, how busy the couriers
are); the restaurants' **location events** (once a day, and when they join); and the
orders, with the delivery time in minutes — the label. The label is made from the state
the world was in at the order's time (the values a point-in-time lookup finds) plus the
city and noise, so a model trained on point-in-time features has measurable skill, and one
trained on leaked or later values is wrong by a measurable amount.

Everything is sized by one number, ``orders`` (1,000 for tests, 10 million for benchmarks:
arrays, no Python loop per row), and deterministic for a seed. The files are Parquet, as an
upstream system would leave them; :func:`ingest` loads the batch source with ``palette
ingest``, publishes the events into the stream groups' Delta event tables (:func:`publish`)
and backfills the stream groups from them.

>>> import tempfile
>>> sim = simulate(tempfile.mkdtemp(), orders=1000, seed=7)
>>> sim.counts["orders"], sim.counts["restaurants"]
(1000, 20)
>>> sorted(sim.paths)
['batch_fg', 'locations', 'order_events', 'orders']
>>> 25 < sim.label_mean < 60 and sim.label_std > 5
True
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from palette.dsl import geohash
from palette.errors import InvalidArgument

CITIES = {"san_francisco": (37.77, -122.42, 0.40), "new_york": (40.73, -73.99, 0.35),
          "chicago": (41.88, -87.63, 0.25)}
CITY_MINUTES = {"san_francisco": 0.0, "new_york": 3.0, "chicago": 1.5}
START = datetime(2024, 5, 6)                   # a Monday, naive UTC
# Orders per hour of day (UTC as local time, for simplicity): lunch and dinner peaks.
HOURLY = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 3, 4, 7, 10, 8, 5, 4, 5, 8, 11, 12, 9, 6, 4, 2], float)
HOP_S, MEAL_WINDOW_S, BUSY_WINDOW_S = 60, 30 * 60, 15 * 60      # the stream features' hop and windows
_US = 1_000_000
ORDER_EVENT_TYPES = {"r_id": pa.string(), "region_id": pa.string(), "order_ts": pa.timestamp("us", tz="UTC"),
                     "order_size": pa.float64()}
LOCATION_TYPES = {"r_id": pa.string(), "event_ts": pa.timestamp("us", tz="UTC"), "lat": pa.float64(),
                  "long": pa.float64()}


@dataclass
class Simulation:
    """Where the files are and what they hold."""
    root: str
    paths: dict[str, str]
    counts: dict[str, int]
    start: datetime
    end: datetime
    label_mean: float
    label_std: float
    seed: int
    params: dict = field(default_factory=dict)

    def split_time(self, test_fraction: float = 0.25) -> datetime:
        """The instant that leaves the last ``test_fraction`` of the period for evaluation."""
        return self.start + (self.end - self.start) * (1 - test_fraction)


def _micros(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1)).total_seconds()) * _US


def _write(path: str, columns: dict[str, np.ndarray | list], types: dict[str, pa.DataType]) -> str:
    """One Parquet file; a float NaN is written as null (a missing value, not a number)."""
    def column(values, t):
        mask = np.isnan(values) if t == pa.float64() else None
        return pa.array(values, type=t, mask=mask)
    table = pa.table({name: column(values, types[name]) for name, values in columns.items()})
    os.makedirs(path, exist_ok=True)
    pq.write_table(table, os.path.join(path, "part-0.parquet"))
    return path


def _latest(keys: np.ndarray, times: np.ndarray, at_keys: np.ndarray, at_times: np.ndarray) -> np.ndarray:
    """For each (at_key, at_time), the index of the latest (key, time) row at or before it
    with the same key, or -1: one sort and one binary search, for any number of rows."""
    order = np.lexsort((times, keys))
    k, t = keys[order], times[order]
    pos = np.searchsorted(k * (1 << 44) + t, at_keys * (1 << 44) + at_times, side="right") - 1
    ok = (pos >= 0) & (k[np.maximum(pos, 0)] == at_keys)
    return np.where(ok, order[np.maximum(pos, 0)], -1)


def window_counts(keys: np.ndarray, secs: np.ndarray, over: int, hop: int = HOP_S) -> np.ndarray:
    """For each event i, how many events of its key lie in ``[b - over, b)``, ``b`` its time
    (seconds) rounded down to the hop: the windowed count a lookup at that instant reads
    (``palette.windows``), by one sort and two binary searches."""
    code = keys.astype(np.int64) * (1 << 40) + secs
    ordered = np.sort(code)
    b = keys.astype(np.int64) * (1 << 40) + secs // hop * hop
    return np.searchsorted(ordered, b, side="left") - np.searchsorted(ordered, b - over, side="left")


def simulate(out_dir: str, orders: int = 1000, seed: int = 7, days: int = 28, start: datetime = START,
             kitchen: bool = False) -> Simulation:
    """Write the example's four Parquet sources under ``out_dir`` and return where they are.

    ``orders`` orders over ``days`` days from ``start`` (naive UTC; no event is later than
    ``start + days``, so a simulation that ends now serves fresh values);
    ``max(20, orders // 1000)`` restaurants. Some values are null (5% of preparation times),
    some restaurants never report a preparation time, and some stop reporting their
    location — as in real data. With ``kitchen``, the kitchen's queue when the order was
    placed (``palette.examples.kitchen.queue_minutes``, the RPC feature) adds to the label.
    """
    if orders < 1 or days < 1:
        raise InvalidArgument(f"orders and days must be at least 1 (got orders={orders}, days={days})")
    rng = np.random.default_rng(seed)
    end = start + timedelta(days=days)
    t0, span = _micros(start) // _US, days * 86400      # seconds

    # Restaurants: city, location, typical prep time, popularity.
    n_rest = max(20, orders // 1000)
    names = list(CITIES)
    city = rng.choice(len(names), n_rest, p=[CITIES[c][2] for c in names])
    lat = np.round(np.array([CITIES[names[c]][0] for c in city]) + rng.normal(0, 0.04, n_rest), 5)
    lng = np.round(np.array([CITIES[names[c]][1] for c in city]) + rng.normal(0, 0.05, n_rest), 5)
    base_prep = rng.uniform(8, 30, n_rest)
    popularity = rng.lognormal(0, 0.6, n_rest)
    r_ids = np.array([f"r{i}" for i in range(n_rest)], dtype=object)
    cells = geohash.encode_many(lat, lng, np.zeros(n_rest, bool), 5)
    regions, rest_region = np.unique(np.array(cells, dtype=object), return_inverse=True)

    # Daily batch of mean prep times, published at 03:00 for the day before.
    day = np.arange(days)
    prep = base_prep[:, None] * (1 + 0.15 * np.sin(2 * np.pi * day / 7))[None, :] + rng.normal(0, 1, (n_rest, days))
    reports = (np.arange(n_rest) % 17 != 16)                    # some restaurants never report
    b_r, b_d = np.nonzero(np.broadcast_to(reports[:, None], (n_rest, days)))
    b_sec = t0 + (b_d + 1) * 86400 + 3 * 3600
    b_r, b_d, b_sec = b_r[b_sec <= t0 + span], b_d[b_sec <= t0 + span], b_sec[b_sec <= t0 + span]   # none after the end
    b_val = prep[b_r, b_d]
    b_null = rng.random(b_val.size) < 0.05

    # Orders: time by hour-of-day profile, restaurant by popularity, size 1-6. Each is an
    # event of the order stream the kitchen load and the region's busyness count.
    o_day = rng.integers(0, days, orders)
    o_hour = rng.choice(24, orders, p=HOURLY / HOURLY.sum())
    o_sec = np.minimum(t0 + o_day * 86400 + o_hour * 3600 + rng.integers(0, 3600, orders), t0 + span - 1)
    o_rest = rng.choice(n_rest, orders, p=popularity / popularity.sum())
    o_size = rng.integers(1, 7, orders)
    by_time = np.argsort(o_sec, kind="stable")
    o_sec, o_rest, o_size = o_sec[by_time], o_rest[by_time], o_size[by_time]
    region = rest_region[o_rest]

    # Locations: each restaurant reports where it is when it joins (at the start) and then
    # once a day; every 13th stops reporting halfway, so its location goes past max age.
    l_r, l_d = np.nonzero(np.ones((n_rest, days), bool))
    l_sec = t0 + l_d * 86400 + np.where(l_d == 0, 0, rng.integers(0, 86400, l_r.size))
    keep = ~((l_r % 13 == 12) & (l_d >= days // 2))
    l_r, l_sec = l_r[keep], l_sec[keep]

    # The label, from the state the world was in at each order: the windowed counts a
    # point-in-time lookup finds (palette.windows: events in [b - over, b), b the order's
    # time rounded down to the hop), the preparation time of the last batch (its latent
    # value where the reading is null), the size, the city and noise.
    o_day_idx = (o_sec - t0 - 3 * 3600) // 86400                # the batch the order sees
    latent_prep = np.where(o_day_idx >= 0, prep[o_rest, np.clip(o_day_idx, 0, days - 1)], base_prep[o_rest])
    n_meal = window_counts(o_rest, o_sec, MEAL_WINDOW_S)
    n_busy = window_counts(region, o_sec, BUSY_WINDOW_S)
    city_min = np.array([CITY_MINUTES[n] for n in names])[city[o_rest]]
    minutes = (8 + 0.7 * latent_prep + 2.5 * n_meal + 1.2 * o_size + 2.0 * n_busy + city_min
               + rng.normal(0, 3, orders))
    if kitchen:
        from .kitchen import queue_minutes
        minutes = minutes + 0.8 * np.array([queue_minutes(r_ids[r], s) for r, s in zip(o_rest, o_sec)])

    ts = pa.timestamp("us", tz="UTC")
    paths = {
        "batch_fg": _write(os.path.join(out_dir, "batch_fg"), {
            "r_id": r_ids[b_r], "event_ts": b_sec * _US,
            "prep_time": np.where(b_null, np.nan, np.round(b_val, 2))},
            {"r_id": pa.string(), "event_ts": ts, "prep_time": pa.float64()}),
        "order_events": _write(os.path.join(out_dir, "order_events"), {
            "r_id": r_ids[o_rest], "region_id": regions[region], "order_ts": o_sec * _US,
            "order_size": o_size.astype(float)}, ORDER_EVENT_TYPES),
        "locations": _write(os.path.join(out_dir, "locations"), {
            "r_id": r_ids[l_r], "event_ts": l_sec * _US, "lat": lat[l_r], "long": lng[l_r]}, LOCATION_TYPES),
        "orders": _write(os.path.join(out_dir, "orders"), {
            "order_id": np.arange(orders), "r_id": r_ids[o_rest], "order_ts": o_sec * _US,
            "order_size": o_size, "city": np.array(names, dtype=object)[city[o_rest]],
            "delivery_minutes": np.round(minutes, 3)},
            {"order_id": pa.int64(), "r_id": pa.string(), "order_ts": ts, "order_size": pa.int32(),
             "city": pa.string(), "delivery_minutes": pa.float64()}),
    }
    counts = {"orders": orders, "restaurants": n_rest, "regions": len(regions), "batch_fg": int(b_val.size),
              "order_events": orders, "locations": int(l_r.size)}
    return Simulation(out_dir, paths, counts, start, end, float(minutes.mean()), float(minutes.std()), seed,
                      {"orders": orders, "days": days, "seed": seed, "start": start.isoformat(), "kitchen": kitchen})


def publish(spark, store, sim: Simulation, since: datetime | None = None, until: datetime | None = None) -> dict:
    """Append the simulation's events with ``since <= time < until`` (naive UTC; default:
    all) to the Delta event tables the stream groups read (``eta.declare``), as the
    upstream services would: once — a rerun of the same ``until`` is skipped by Delta's
    idempotent writes (``txnAppId``/``txnVersion``). Returns the events appended per table."""
    from pyspark.sql import functions as F

    until_s = _micros(until or sim.end) // _US
    sources = {"order_events": (store.group("restaurant:realtime_fg").source, "order_ts"),
               "locations": (store.group("restaurant:location_fg").source, "event_ts")}
    out = {}
    for name, (source, ts) in sources.items():
        events = spark.read.parquet(sim.paths[name])
        if since is not None:
            events = events.where(F.col(ts) >= F.lit(since))
        events = events.where(F.col(ts) < F.lit(datetime(1970, 1, 1) + timedelta(seconds=until_s)))
        append_events(events, source, f"palette-eta-{name}", until_s)
        out[name] = events.count()
    return out


def append_events(events, source, app_id: str, version: int) -> None:
    """Append ``events`` to a stream source's Delta table once: Delta skips a write whose
    ``txnVersion`` is not above the last one of its ``txnAppId``, so rerunning the same
    publication appends nothing (what an upstream service's exactly-once sink does)."""
    events.write.format("delta").mode("append").option("txnAppId", app_id).option("txnVersion", version) \
        .save(source.path)


STREAM_GROUPS = ("restaurant:realtime_fg", "restaurant:location_fg", "region:service_fg")


@contextmanager
def streams(spark, store, checkpoint: str, online_store: str, trigger: str = "1 second"):
    """The example's stream groups running (``palette.streaming.start``) from their
    checkpoints under ``checkpoint`` into Delta and ``online_store``; stopped between
    micro-batches on leaving, so Delta and the online store agree.

    >>> with streams(spark, store, "/data/chk", "sqlite:////data/online.db"):   # doctest: +SKIP
    ...     publish(spark, store, sim)
    """
    from palette import streaming
    queries = []
    try:
        for gid in STREAM_GROUPS:
            queries.append(streaming.start(gid, checkpoint=streaming.checkpoint_path(checkpoint, gid),
                                           online_store=online_store, trigger=trigger, store=store, spark=spark))
        yield queries
    finally:
        for q in queries:
            streaming.stop(q)
KITCHEN_GROUP = "restaurant:kitchen_rpc"


def ingest(spark, store, sim: Simulation, until: datetime | None = None,
           checkpoint: str | None = None) -> dict[str, dict]:
    """Load the simulation into ``store`` (declared with ``eta.declare``) as its jobs would:
    ``palette ingest`` of the batch source, the events before ``until`` (default: all)
    published to the event tables, and the stream groups computed from them — by ``palette
    backfill``, or, given ``checkpoint`` (a directory), by the streaming job processing what
    is there and stopping, so that ``palette stream`` with that checkpoint goes on from
    there; with the kitchen's RPC group declared, its history asked of the kitchen service
    as of each order's time (``palette.rpc.fetch_history``). Returns each group's result
    (``source_rows``: the rows or events it read). Idempotent."""
    from palette import streaming
    from palette.jobs import ingest as job
    out = {"restaurant:batch_fg": job.run("restaurant:batch_fg", sim.paths["batch_fg"], "parquet", store.root, spark)}
    published = publish(spark, store, sim, until=until)
    for gid in STREAM_GROUPS:
        if checkpoint:
            t0 = time.monotonic()
            streaming.start(gid, checkpoint=streaming.checkpoint_path(checkpoint, gid), store=store, spark=spark,
                            once=True).awaitTermination()
            result = {"seconds": round(time.monotonic() - t0, 3)}
        else:
            result = streaming.backfill(gid, store=store, spark=spark)
        source = "locations" if gid == "restaurant:location_fg" else "order_events"
        out[gid] = {**result, "source_rows": published[source], "version": store.version(gid, spark)}
    if KITCHEN_GROUP in store.registry.groups():            # the RPC group's history: asked of the service
        from palette.rpc import fetch_history
        orders = spark.read.parquet(sim.paths["orders"])
        if until is not None:
            orders = orders.where(orders.order_ts < until)
        result = fetch_history(KITCHEN_GROUP, orders, ts_col="order_ts", rate=20_000, store=store)
        out[KITCHEN_GROUP] = {**result, "source_rows": result["fetches"]}
    return out


__all__ = ["simulate", "ingest", "publish", "append_events", "streams", "window_counts", "Simulation", "CITIES", "START", "STREAM_GROUPS"]
