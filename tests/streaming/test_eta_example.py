"""The ETA example's world-building is safe to rerun, as its jobs are."""
from datetime import datetime

from palette import FeatureStore
from palette.examples import eta


def test_generate_twice_for_one_instant_appends_the_events_once(spark_session, tmp_path):
    store = FeatureStore(tmp_path / "store")
    eta.declare(store)
    as_of = datetime(2026, 12, 1, 12, 0)
    counts = eta.generate(spark_session, store, 30, as_of)
    orders = store.group("restaurant:realtime_fg").source.path
    events = spark_session.read.format("delta").load(orders).count()
    assert events == counts["order_events"] > 0
    versions = {g: store.version(g, spark_session) for g in (*eta.STREAM_GROUPS, "restaurant:batch_fg")}
    eta.generate(spark_session, store, 30, as_of)
    assert spark_session.read.format("delta").load(orders).count() == events
    assert {g: store.version(g, spark_session) for g in versions} == versions     # nothing written again
    eta.generate(spark_session, store, 30, as_of, seed=12)                            # another world: appended
    assert spark_session.read.format("delta").load(orders).count() > events
