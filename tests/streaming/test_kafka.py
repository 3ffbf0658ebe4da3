"""Streaming from a real Kafka broker: JSON events produced by a Python producer, read by
Spark's own Kafka source, equal to a backfill of the same topic and to the oracle online."""
import json
import uuid

from confluent_kafka import Producer

from palette import Entity, FeatureStore, StreamSource
from palette import streaming
from stream_events import (HOP, SCHEMA, G, assert_online_matches, assert_same_rows, events, group, micros,
                           table_rows)


def produce(servers, topic, evs):
    p = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for e in evs:
        payload = {**e, "ts": e["ts"].isoformat()}
        p.produce(topic, key=e["r_id"].encode(), value=json.dumps(payload).encode())
    p.produce(topic, value=b"not json")                 # a bad payload is dropped, not fatal
    assert p.flush(30) == 0


def test_a_kafka_topic_streams_into_delta_and_online_as_a_backfill_computes_it(
        spark_session, kafka_servers, tmp_path):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    evs = sorted(events(seed=11, n=150), key=lambda e: e["ts"])     # in time order, arriving in two parts
    source = StreamSource("kafka", SCHEMA, "ts", topic=topic, servers=kafka_servers)
    stores = {}
    for name in ("streamed", "backfilled"):
        stores[name] = FeatureStore(tmp_path / name)
        stores[name].register(Entity("restaurant", {"r_id": "str"}), group(source=source))
    online = f"sqlite:///{tmp_path}/online.db"
    half = len(evs) // 2
    for part in (evs[:half], evs[half:]):            # two arrivals, the stream restarted from its checkpoint
        produce(kafka_servers, topic, part)
        q = streaming.start(G, checkpoint=str(tmp_path / "chk"), online_store=online, store=stores["streamed"],
                            spark=spark_session, once=True)
        q.awaitTermination()
        assert q.exception() is None
    streaming.backfill(G, store=stores["backfilled"], spark=spark_session)
    assert_same_rows(table_rows(stores["streamed"], spark_session), table_rows(stores["backfilled"], spark_session))
    last = max(micros(e["ts"]) for e in evs)
    assert_online_matches(online, evs, [f"r{i}" for i in range(5)], last, last + 7 * HOP, HOP)
