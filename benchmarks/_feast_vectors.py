"""Feast's side of the vector lookup comparison in embeddings.py, run by Feast's own virtualenv.

    <feast venv>/bin/python _feast_vectors.py WORKDIR REDIS_HOST:PORT CALLS

WORKDIR holds emb.parquet (r_id, event_ts, emb: the 128 float32 values as a list) — the
rows palette materialized — and keys.json (the request keys). Feast stores ``emb`` as an
``Array(Float32)`` feature of one feature view, in SQLite and in the given Redis. Prints
one JSON object: per online store (sqlite, redis), the seconds ``write_to_online_store``
took, p50 / p99 µs of ``get_online_features`` for one entity row and the one vector
feature, and the vectors it served for the first 200 keys.
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
from feast.types import Array, Float32
from _feast_side import measure as feast_measure          # (this folder is on sys.path: run as a script)

FEATURES = ["emb_fv:emb"]


def build(workdir: str, name: str, online, frame: pd.DataFrame) -> tuple[FeatureStore, float]:
    config = RepoConfig(project=f"emb_{name}", registry=f"{workdir}/registry_{name}.db", provider="local",
                        online_store=online, entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    item = Entity(name="item", join_keys=["r_id"], value_type=ValueType.STRING)
    view = FeatureView(name="emb_fv", entities=[item], ttl=timedelta(0),
                       schema=[Field(name="emb", dtype=Array(Float32))],
                       source=FileSource(path=f"{workdir}/emb.parquet", timestamp_field="event_ts"))
    store.apply([item, view])
    t0 = time.perf_counter()
    store.write_to_online_store("emb_fv", frame)
    return store, time.perf_counter() - t0


def measure(store: FeatureStore, keys: list, calls: int) -> dict:
    return feast_measure(store, keys, calls, FEATURES, lambda got: [float(x) for x in got["emb"][0]])


def main():
    workdir, redis_address, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    keys = json.load(open(f"{workdir}/keys.json"))
    frame = pd.read_parquet(f"{workdir}/emb.parquet")
    out = {}
    for name, online in (("sqlite", SqliteOnlineStoreConfig(path=f"{workdir}/feast_online.db")),
                         ("redis", RedisOnlineStoreConfig(connection_string=redis_address))):
        store, write_s = build(workdir, name, online, frame)
        out[name] = {"write_s": write_s, **measure(store, keys, calls)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
