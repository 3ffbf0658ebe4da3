"""Feast's side of the lookup comparison in online_serving.py, run by Feast's own virtualenv.

    <feast venv>/bin/python _feast_side.py WORKDIR REDIS_HOST:PORT CALLS

WORKDIR holds realtime.parquet (r_id, event_ts, n_meal, lat, long), batch.parquet
(r_id, event_ts, prep_time) — the latest row per restaurant, as palette materialized
them — and keys.json (the request keys). Prints one JSON object: per online store
(sqlite, redis), p50 / p99 µs of ``get_online_features`` for one entity row and the 4
features of 2 feature views, and the values it served for the first 200 keys.
"""
import json
import sys
import time
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.repo_config import RepoConfig
from feast.types import Float64

FEATURES = ["realtime_fg:n_meal", "location_fg:lat", "location_fg:long", "batch_fg:prep_time"]


def build(workdir: str, name: str, online) -> FeatureStore:
    config = RepoConfig(project=f"eta_{name}", registry=f"{workdir}/registry_{name}.db", provider="local",
                        online_store=online, entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    restaurant = Entity(name="restaurant", join_keys=["r_id"], value_type=ValueType.STRING)
    realtime = FeatureView(name="realtime_fg", entities=[restaurant], ttl=timedelta(0),
                           schema=[Field(name="n_meal", dtype=Float64)],
                           source=FileSource(path=f"{workdir}/realtime.parquet", timestamp_field="event_ts"))
    location = FeatureView(name="location_fg", entities=[restaurant], ttl=timedelta(days=3),
                           schema=[Field(name=n, dtype=Float64) for n in ("lat", "long")],
                           source=FileSource(path=f"{workdir}/location.parquet", timestamp_field="event_ts"))
    batch = FeatureView(name="batch_fg", entities=[restaurant], ttl=timedelta(days=7),
                        schema=[Field(name="prep_time", dtype=Float64)],
                        source=FileSource(path=f"{workdir}/batch.parquet", timestamp_field="event_ts"))
    store.apply([restaurant, realtime, location, batch])
    store.write_to_online_store("realtime_fg", pd.read_parquet(f"{workdir}/realtime.parquet"))
    store.write_to_online_store("location_fg", pd.read_parquet(f"{workdir}/location.parquet"))
    store.write_to_online_store("batch_fg", pd.read_parquet(f"{workdir}/batch.parquet"))
    return store


def measure(store: FeatureStore, keys: list, calls: int, features: list | None = None, served_of=None) -> dict:
    """p50/p99 µs of one-key ``get_online_features`` over ``calls`` calls, and what it served
    for the first 200 keys (``served_of(answer)``; default: each feature's value)."""
    features = features or FEATURES
    served_of = served_of or (lambda got: {f.split(":")[1]: got[f.split(":")[1]][0] for f in features})

    def once(k):
        return store.get_online_features(features=features, entity_rows=[{"r_id": k}]).to_dict()
    for k in keys[:200]:
        once(k)
    lat = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        once(keys[i % len(keys)])
        lat.append(time.perf_counter_ns() - t0)
    lat.sort()
    served = {k: served_of(once(k)) for k in keys[:200]}
    return {"p50_us": lat[len(lat) // 2] / 1000, "p99_us": lat[int(len(lat) * 0.99)] / 1000, "served": served}


def main():
    workdir, redis_address, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    keys = json.load(open(f"{workdir}/keys.json"))
    out = {}
    for name, online in (("sqlite", SqliteOnlineStoreConfig(path=f"{workdir}/feast_online.db")),
                         ("redis", RedisOnlineStoreConfig(connection_string=redis_address))):
        out[name] = measure(build(workdir, name, online), keys, calls)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
