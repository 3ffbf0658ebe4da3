"""Synthetic Uber Eats data for the ETA example: weeks of orders with a label a model can learn.

Restaurants in three cities, each with a location, a typical preparation time and a
popularity; a daily batch of mean preparation times (at 03:00, for the day before); a
kitchen-load reading (``n_meal``, meals in progress, with the location) streamed a few
minutes before each order; the couriers busy in each geohash region (``n_busy``) every 15
minutes; and the orders, with their size and the delivery time in minutes — the label.
The label is made from the state the world was in at the order's time (the values a
point-in-time lookup finds) plus the hour of day, the city and noise, so a model trained on
point-in-time features has measurable skill, and one trained on leaked or later values is
wrong by a measurable amount.

Everything is sized by one number, ``orders`` (1,000 for tests, 10 million for benchmarks:
arrays, no Python loop per row), and deterministic for a seed. The files are Parquet, as an
upstream system would leave them; ``palette ingest`` (or :func:`ingest`) loads them.

>>> import tempfile
>>> sim = simulate(tempfile.mkdtemp(), orders=1000, seed=7)
>>> sim.counts["orders"], sim.counts["restaurants"]
(1000, 20)
>>> sorted(sim.paths)
['batch_fg', 'orders', 'realtime_fg', 'service_fg']
>>> 25 < sim.label_mean < 60 and sim.label_std > 5
True
"""
from __future__ import annotations

import os
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
BUSY_EVERY = timedelta(minutes=15)
_US = 1_000_000


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


def simulate(out_dir: str, orders: int = 1000, seed: int = 7, days: int = 28, start: datetime = START) -> Simulation:
    """Write the example's four Parquet sources under ``out_dir`` and return where they are.

    ``orders`` orders over ``days`` days from ``start`` (naive UTC; no event is later than
    ``start + days``, so a simulation that ends now serves fresh values);
    ``max(20, orders // 50)`` restaurants. Some values are null (5% of preparation times and
    kitchen loads), some restaurants never report a preparation time, some regions no
    busyness, and some orders come without a recent kitchen reading — as in real data.
    """
    if orders < 1 or days < 1:
        raise InvalidArgument(f"orders and days must be at least 1 (got orders={orders}, days={days})")
    rng = np.random.default_rng(seed)
    end = start + timedelta(days=days)
    t0, span = _micros(start) // _US, days * 86400      # seconds

    # Restaurants: city, location, typical prep time, popularity.
    n_rest = max(20, orders // 50)
    names = list(CITIES)
    city = rng.choice(len(names), n_rest, p=[CITIES[c][2] for c in names])
    lat = np.array([CITIES[names[c]][0] for c in city]) + rng.normal(0, 0.04, n_rest)
    lng = np.array([CITIES[names[c]][1] for c in city]) + rng.normal(0, 0.05, n_rest)
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

    # Orders: time by hour-of-day profile, restaurant by popularity, size 1-6.
    o_day = rng.integers(0, days, orders)
    o_hour = rng.choice(24, orders, p=HOURLY / HOURLY.sum())
    o_sec = t0 + o_day * 86400 + o_hour * 3600 + rng.integers(0, 3600, orders)
    o_rest = rng.choice(n_rest, orders, p=popularity / popularity.sum())
    o_size = rng.integers(1, 7, orders)
    by_time = np.argsort(o_sec, kind="stable")
    o_sec, o_rest, o_size, o_hour = o_sec[by_time], o_rest[by_time], o_size[by_time], o_hour[by_time]

    # Kitchen load, read a few minutes before each order (3% of orders have no reading).
    load_mean = 2 + 0.8 * HOURLY[o_hour] * popularity[o_rest]
    has_reading = rng.random(orders) >= 0.03
    m_sec = (o_sec - rng.integers(60, 900, orders))[has_reading]
    m_rest = o_rest[has_reading]
    m_val = rng.poisson(load_mean[has_reading]).astype(float)
    m_null = rng.random(m_val.size) < 0.05
    _, first = np.unique(m_rest.astype(np.int64) * (1 << 40) + m_sec, return_index=True)   # one reading a second
    first.sort()
    m_sec, m_rest, m_val, m_null = m_sec[first], m_rest[first], m_val[first], m_null[first]

    # Couriers busy per region, every 15 minutes (every 10th region reports nothing).
    slots = span // int(BUSY_EVERY.total_seconds())
    reporting = np.nonzero(np.arange(len(regions)) % 10 != 9)[0]
    s_reg = np.repeat(reporting, slots)
    s_slot = np.tile(np.arange(slots), len(reporting))
    s_hour = (s_slot * 15 // 60) % 24
    s_val = rng.poisson(1 + 0.6 * HOURLY[s_hour]).astype(float)

    # The label, from the state the world was in at each order (the latent value where a
    # reading is null; an expectation where there is none).
    o_day_idx = (o_sec - t0 - 3 * 3600) // 86400                # the batch the order sees
    latent_prep = np.where(o_day_idx >= 0, prep[o_rest, np.clip(o_day_idx, 0, days - 1)], base_prep[o_rest])
    k = _latest(m_rest, m_sec, o_rest, o_sec)
    latent_load = np.where(k >= 0, m_val[np.maximum(k, 0)], load_mean)
    slot = (o_sec - t0) // int(BUSY_EVERY.total_seconds())
    region = rest_region[o_rest]
    busy_idx = np.searchsorted(reporting, region)
    reported = (busy_idx < len(reporting)) & (reporting[np.minimum(busy_idx, len(reporting) - 1)] == region)
    latent_busy = np.where(reported, s_val[np.minimum(busy_idx, len(reporting) - 1) * slots + slot],
                           1 + 0.6 * HOURLY[o_hour])
    city_min = np.array([CITY_MINUTES[n] for n in names])[city[o_rest]]
    minutes = (8 + 0.7 * latent_prep + 0.45 * latent_load + 1.2 * o_size + 0.8 * latent_busy + city_min
               + rng.normal(0, 3, orders))

    ts = pa.timestamp("us", tz="UTC")
    paths = {
        "batch_fg": _write(os.path.join(out_dir, "batch_fg"), {
            "r_id": r_ids[b_r], "event_ts": b_sec * _US,
            "prep_time": np.where(b_null, np.nan, np.round(b_val, 2))},
            {"r_id": pa.string(), "event_ts": ts, "prep_time": pa.float64()}),
        "realtime_fg": _write(os.path.join(out_dir, "realtime_fg"), {
            "r_id": r_ids[m_rest], "event_ts": m_sec * _US, "n_meal": np.where(m_null, np.nan, m_val),
            "lat": np.round(lat[m_rest], 5), "long": np.round(lng[m_rest], 5)},
            {"r_id": pa.string(), "event_ts": ts, "n_meal": pa.float64(), "lat": pa.float64(),
             "long": pa.float64()}),
        "service_fg": _write(os.path.join(out_dir, "service_fg"), {
            "region_id": regions[s_reg], "event_ts": (t0 + s_slot * int(BUSY_EVERY.total_seconds())) * _US,
            "n_busy": s_val}, {"region_id": pa.string(), "event_ts": ts, "n_busy": pa.float64()}),
        "orders": _write(os.path.join(out_dir, "orders"), {
            "order_id": np.arange(orders), "r_id": r_ids[o_rest], "order_ts": o_sec * _US,
            "order_size": o_size, "city": np.array(names, dtype=object)[city[o_rest]],
            "delivery_minutes": np.round(minutes, 3)},
            {"order_id": pa.int64(), "r_id": pa.string(), "order_ts": ts, "order_size": pa.int32(),
             "city": pa.string(), "delivery_minutes": pa.float64()}),
    }
    counts = {"orders": orders, "restaurants": n_rest, "regions": len(regions), "batch_fg": int(b_val.size),
              "realtime_fg": int(m_val.size), "service_fg": int(s_val.size)}
    return Simulation(out_dir, paths, counts, start, end, float(minutes.mean()), float(minutes.std()), seed,
                      {"orders": orders, "days": days, "seed": seed, "start": start.isoformat()})


def ingest(spark, store, sim: Simulation) -> dict[str, dict]:
    """Ingest the simulation's feature sources into ``store`` (declared with
    ``eta.declare``), as ``palette ingest`` would; returns each group's result."""
    from palette.jobs import ingest as job
    return {f"{entity}:{name}": job.run(f"{entity}:{name}", sim.paths[name], "parquet", store.root, spark)
            for entity, name in (("restaurant", "realtime_fg"), ("restaurant", "batch_fg"), ("region", "service_fg"))}


__all__ = ["simulate", "ingest", "Simulation", "CITIES", "START"]
