"""Latest-value stream groups, events later than the lateness, and the parity harness over
stream groups: dropped late events are counted, show as store skew until a backfill, and
parity passes once the backfill reached the online store."""
from datetime import datetime, timedelta, timezone

from pyspark.ml import Pipeline

from palette import Entity, FeatureGroup, FeatureStore, PaletteTransformer, StreamSource
from palette import streaming
from palette.jobs.stream import progress
from palette.online import open_store
from palette.parity import check_parity
from palette.streaming.apply import apply_latest
from stream_events import G, assert_online_matches, events, group, micros, oracle, write_events

LOC = "restaurant:location_fg"


def test_a_latest_value_group_keeps_every_event_offline_and_the_latest_online(spark_session, tmp_path):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    path = tmp_path / "locations"
    source = StreamSource("delta", {"r_id": "str", "ts": "ts", "lat": "num", "long": "num"}, "ts", path=str(path))
    base = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    evs = [("r1", base + timedelta(minutes=m), 37.0 + m, -122.0 - m) for m in (3, 1, 2)] + \
          [("r2", base, 40.0, -70.0), ("r2", base, 41.0, -71.0)]          # two at one instant: the greatest wins
    stores = {}
    for name in ("streamed", "backfilled"):
        stores[name] = FeatureStore(tmp_path / name)
        stores[name].register(Entity("restaurant", {"r_id": "str"}),
                              FeatureGroup("restaurant", "location_fg", {"lat": "num", "long": "num"}, kind="stream",
                                           source=source))
    online = f"sqlite:///{tmp_path}/online.db"
    for part in (evs[:1], evs[1:]):                      # the newest arrives first: an older one never wins online
        spark_session.createDataFrame(part, "r_id string, ts timestamp, lat double, long double") \
            .write.format("delta").mode("append").save(str(path))
        streaming.start(LOC, checkpoint=str(tmp_path / "chk"), online_store=online, store=stores["streamed"],
                        spark=spark_session, once=True).awaitTermination()
    streaming.backfill(LOC, store=stores["backfilled"], spark=spark_session)
    rows = {name: sorted(tuple(r) for r in s.read(LOC, spark_session).collect()) for name, s in stores.items()}
    assert rows["streamed"] == rows["backfilled"] and len(rows["streamed"]) == 4
    s = open_store(online)
    layout = s.layout(LOC)
    (found,) = s.read([(layout, ["r1", "r2"])])
    assert [layout.codec().decode(f[1]) for f in found] == [(40.0, -125.0), (41.0, -71.0)]
    # A micro-batch appends once: the same (writer, batch) run again, as after a crash
    # between the Delta commit and the checkpoint's, adds nothing.
    streamed = stores["streamed"]
    later = spark_session.createDataFrame([("r3", base, 1.0, 2.0)], "r_id string, ts timestamp, lat double, long double")
    entity, g = streamed.entity("restaurant"), streamed.group(LOC)
    assert [apply_latest(spark_session, streamed, entity, g, later, txn=("a-writer", 7))["rows"] for _ in "ab"] == [1, 0]
    assert streamed.read(LOC, spark_session).count() == 5


def test_late_events_are_dropped_counted_seen_as_store_skew_and_backfilled(spark_session, tmp_path):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    path = tmp_path / "events"
    store = FeatureStore(tmp_path / "store")
    store.register(Entity("restaurant", {"r_id": "str"}), group(path, lateness="1m"))
    evs = sorted(events(seed=5, n=120, base=now - timedelta(minutes=40)), key=lambda e: e["ts"])
    online = f"sqlite:///{tmp_path}/online.db"
    write_events(spark_session, path, evs)
    chk = str(tmp_path / "chk")
    streaming.start(G, checkpoint=chk, online_store=online, store=store, spark=spark_session,
                    once=True).awaitTermination()
    # Later than the lateness (its tile closed more than 1m before the newest event), inside the 5m windows at now.
    late = {"r_id": "r1", "ts": evs[-1]["ts"] - timedelta(minutes=2, seconds=30), "size": 5.0, "kind": "z"}
    write_events(spark_session, path, [late])
    q = streaming.start(G, checkpoint=chk, online_store=online, store=store, spark=spark_session, once=True)
    q.awaitTermination()
    assert progress(q)["late_events_dropped"] == 1

    requests = spark_session.createDataFrame([(f"r{i}",) for i in range(6)], "r_id string")
    model = Pipeline(stages=[PaletteTransformer({"n": f"@palette:{G}:n:r_id", "hi": f"@palette:{G}:hi:r_id",
                                                 "total": f"@palette:{G}:total:r_id"},
                                                storeRoot=str(store.root))]).fit(requests)
    as_of = now + timedelta(seconds=30)
    assert check_parity(model, requests, online_store=online, as_of=as_of).ok        # both lack the late event
    streaming.backfill(G, store=store, spark=spark_session)                          # Delta now has it
    report = check_parity(model, requests, online_store=online, as_of=as_of)
    assert not report.ok
    assert [(s.group, s.key) for s in report.store_skew] == [(G, {"r_id": "r1"})]
    streaming.backfill(G, store=store, spark=spark_session, online_store=online)     # and the online store
    assert check_parity(model, requests, online_store=online, as_of=as_of).ok
    t = micros(as_of)
    assert_online_matches(online, evs + [late], ["r1"], t, t + 1, 1)       # the late event counted now
    assert oracle(evs + [late], "r1", t)["total"] != oracle(evs, "r1", t)["total"]
