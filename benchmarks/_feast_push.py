"""Feast's side of the streaming comparison in streaming.py, run by Feast's own virtualenv.

    <feast venv>/bin/python _feast_push.py WORKDIR EVENTS BATCH

Feast's way to make a fresh value readable: ``FeatureStore.push(source, df,
to=PushMode.ONLINE_AND_OFFLINE)`` into a PushSource (online SQLite, offline Parquet
files), ``EVENTS`` events in pushes of ``BATCH`` rows, as fast as it goes (a closed loop:
its ceiling). A push returns when the values are readable online, so a push's duration
is its push-to-readable latency. Prints one JSON object: events/s, p50/p99 seconds per
push, and whether the last pushed value is readable.
"""
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import PushMode
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.repo_config import RepoConfig
from feast.types import Float64


def main():
    workdir, events, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keys = 10_000
    seed = pd.DataFrame({"r_id": ["r0"], "event_ts": [datetime.now(timezone.utc) - timedelta(days=1)],
                         "lat": [0.0]})
    seed.to_parquet(f"{workdir}/locations.parquet")
    config = RepoConfig(project="push_bench", registry=f"{workdir}/registry.db", provider="local",
                        online_store=SqliteOnlineStoreConfig(path=f"{workdir}/online.db"),
                        entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    restaurant = Entity(name="restaurant", join_keys=["r_id"], value_type=ValueType.STRING)
    batch_source = FileSource(name="locations_file", path=f"{workdir}/locations.parquet", timestamp_field="event_ts")
    push = PushSource(name="locations_push", batch_source=batch_source)
    view = FeatureView(name="location_fg", entities=[restaurant], ttl=timedelta(days=2),
                       schema=[Field(name="lat", dtype=Float64)], source=push)
    store.apply([restaurant, view])
    rng = random.Random(1)
    durations, sent = [], 0
    started = time.perf_counter()
    while sent < events:
        now = datetime.now(timezone.utc)
        df = pd.DataFrame({"r_id": [f"r{rng.randrange(keys)}" for _ in range(batch)],
                           "event_ts": [now] * batch, "lat": [time.time()] * batch})
        t0 = time.perf_counter()
        store.push("locations_push", df, to=PushMode.ONLINE_AND_OFFLINE)
        durations.append(time.perf_counter() - t0)
        sent += batch
    elapsed = time.perf_counter() - started
    last = df.iloc[-1]
    got = store.get_online_features(features=["location_fg:lat"], entity_rows=[{"r_id": last.r_id}]).to_dict()
    durations.sort()
    print(json.dumps({"events_per_s": sent / elapsed, "p50_s": durations[len(durations) // 2],
                      "p99_s": durations[min(len(durations) - 1, int(len(durations) * 0.99))],
                      "pushes": len(durations), "readable": bool(got["lat"][0] == last.lat)}))


if __name__ == "__main__":
    main()
