"""Windowed stream features: declared once, computed by the stream and by a backfill to the
same rows, cell for cell, and read online as the offline store holds them at each instant
— checked against an oracle computed in plain Python from the events."""
import random

import pytest

from palette import Entity, FeatureGroup, FeatureStore, InvalidArgument, RegistryError
from palette import streaming
from palette.windows import Aggregation, StreamSource
from stream_events import (AGGS, BASE, G, HOP, SCHEMA, assert_online_matches, assert_same_rows, close, events,
                           group, micros, offline_at, oracle, table_rows, write_events)


@pytest.fixture
def setup(tmp_path, spark_session):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    evs = events()
    path = tmp_path / "events"
    stores = {}
    for name in ("streamed", "backfilled"):
        s = FeatureStore(tmp_path / name)
        s.register(Entity("restaurant", {"r_id": "str"}), group(path))
        stores[name] = s
    return spark_session, evs, path, stores, tmp_path


def test_stream_and_backfill_write_the_same_rows_and_online_reads_them_at_every_instant(setup, redis_url):
    spark, evs, path, stores, tmp = setup
    by_time = sorted(evs, key=lambda e: e["ts"])
    # Three arrivals, each out of order within the lateness, the stream restarted from its checkpoint each time.
    cut1, cut2 = len(by_time) // 3, 2 * len(by_time) // 3
    chunks = [by_time[:cut1], by_time[cut1:cut2], by_time[cut2:]]
    late = chunks[1][-4:]                                             # a few arrive within the lateness, twice
    chunks[1], chunks[2] = chunks[1] + chunks[2][:5], chunks[2][5:]     # (counted twice: two events each),
    chunks[2].extend(late)                                            # after a few of the next arrived early
    evs = [e for c in chunks for e in c]
    online = {"streamed": f"sqlite:///{tmp}/streamed.db",            # the backfill writes to Redis
              "backfilled": redis_url + "?prefix=windows"}
    for chunk in chunks:
        random.Random(1).shuffle(chunk)
        write_events(spark, path, chunk)
        q = streaming.start(G, checkpoint=str(tmp / "chk"), online_store=online["streamed"],
                            store=stores["streamed"], spark=spark, once=True)
        q.awaitTermination()
        assert q.exception() is None
    result = streaming.backfill(G, online_store=online["backfilled"], store=stores["backfilled"], spark=spark)
    assert result["tiles"] > 0

    assert_same_rows(table_rows(stores["streamed"], spark), table_rows(stores["backfilled"], spark))
    backfilled = table_rows(stores["backfilled"], spark)

    # The offline store's value at t is the oracle's, at every minute and in between.
    last = max(micros(e["ts"]) for e in evs)
    instants = list(range(micros(BASE) - HOP, last + 8 * HOP, HOP // 2))
    for k in [f"r{i}" for i in range(5)] + ["nobody"]:
        for t in instants:
            want, got = oracle(evs, k, t), offline_at(backfilled, k, t)
            assert (want is None) == (got is None), (k, t, want, got)
            if want is not None:
                assert all(close(got[n], want[n]) for n in want), (k, t, want, got)

    # Online, both stores read the oracle's values at each "now" from the last event on.
    for url in online.values():
        assert_online_matches(url, evs, [f"r{i}" for i in range(5)], last, last + 8 * HOP, HOP // 3)

    # A rerun of the backfill changes nothing.
    version = stores["backfilled"].version(G, spark)
    streaming.backfill(G, store=stores["backfilled"], spark=spark)
    assert stores["backfilled"].version(G, spark) == version
    # Values that contradict the events are refused.
    with pytest.raises(InvalidArgument, match="windowed aggregations.*add the events to its source.*backfill"):
        stores["backfilled"].ingest(spark.createDataFrame([("r1", BASE, 1.0)], "r_id string, ts timestamp, n double"), G)
    assert stores["backfilled"].version(G, spark) == version


def test_bad_declarations_fail_naming_the_fix(tmp_path):
    src = StreamSource("delta", SCHEMA, "ts", path="/x")
    with pytest.raises(RegistryError, match="not a multiple of the hop"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="2m",
                     aggregations=[Aggregation("n", "count", over="3m")])
    with pytest.raises(RegistryError, match="needs a number"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m",
                     aggregations=[Aggregation("s", "sum", "kind", over="3m")])
    with pytest.raises(RegistryError, match="event column 'nope', which the source does not have"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m",
                     aggregations=[Aggregation("s", "max", "nope", over="3m")])
    with pytest.raises(RegistryError, match="add hop="):
        FeatureGroup("restaurant", "g", kind="stream", source=src, aggregations=[Aggregation("n", "count")])
    with pytest.raises(RegistryError, match="max_age does not apply"):
        FeatureGroup("restaurant", "g", kind="stream", source=src, hop="1m", max_age="1h",
                     aggregations=[Aggregation("n", "count")])
    with pytest.raises(RegistryError, match="needs source="):
        FeatureGroup("restaurant", "g", kind="stream", features={"x": "num"})
    with pytest.raises(RegistryError, match="unknown operation 'median'"):
        Aggregation("m", "median", "size")
    with pytest.raises(RegistryError, match="must be in the schema as 'ts'"):
        StreamSource("delta", {"r_id": "str"}, "ts", path="/x")
    store = FeatureStore(tmp_path)
    store.register(Entity("courier", {"c_id": "str"}))
    with pytest.raises(RegistryError, match="no column 'c_id'"):
        store.register(FeatureGroup("courier", "g", kind="stream", source=src, hop="1m",
                                    aggregations=[Aggregation("n", "count")]))
    # Declared once, stored, shown: the registry gives back the same definition.
    store.register(Entity("restaurant", {"r_id": "str"}), group("/events"))
    assert store.group(G) == group("/events")
    assert [f.name for f in store.group(G).features] == [a.name for a in AGGS]
    assert store.search("avg")[0].kind == "stream"
    with pytest.raises(RegistryError, match="aggregation 'n'"):
        store.register(FeatureGroup("restaurant", "orders_fg", kind="stream", hop="1m",
                                    source=StreamSource("delta", SCHEMA, "ts", path="/events"),
                                    aggregations=[Aggregation("n", "count", over="4m"), *AGGS[1:]]))


def test_approx_count_distinct_is_within_its_error_at_scale(tmp_path, spark_session):
    from pyspark.sql import functions as F
    path = tmp_path / "events"
    n = 20_000
    (spark_session.range(2 * n).select(F.lit("r1").alias("r_id"),
                                       F.timestamp_seconds(F.lit(micros(BASE) // 1_000_000) + F.col("id") % 50)
                                       .alias("ts"), F.lit(1.0).alias("size"),
                                       (F.col("id") % n).cast("string").alias("kind"))     # each value twice
     .write.format("delta").save(str(path)))
    store = FeatureStore(tmp_path / "store")
    store.register(Entity("restaurant", {"r_id": "str"}), group(path))
    streaming.backfill(G, store=store, spark=spark_session)
    (row,) = [r for r in table_rows(store, spark_session) if r["n"] == 2 * n]
    assert abs(row["kinds"] - n) / n < 0.04, row["kinds"]          # HyperLogLog, 2^12 registers: ~1.6 % typical
