"""The RPC loop on Spark: serve (a real `palette serve` and kitchen service), log, backfill
the logs into the group's Delta table, and read back exactly what was served — the
consistency check reports 0 mismatches and the fallbacks apart; history never served is
fetched as of its time from the executors."""
import json
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F

from palette import Entity, FeatureGroup, FeatureStore, Fetcher
from palette.errors import InvalidArgument, MaterializeError
from palette.examples.kitchen import answer
from palette.logs import check_consistency, training_set
from palette.rpc import backfill_rpc, fetch_history
from palette.testing import kitchen_mode, start_service, stop
from palette.transformers.palette_stage import PaletteTransformer

RESTAURANT = Entity("restaurant", {"r_id": "str"})
FIELDS = {"queue_minutes": "$.queue.minutes", "queue_orders": "$.queue.orders"}
REF = "@palette:restaurant:kitchen_rpc:queue_minutes:r_id"


def predict(url, instances):
    req = urllib.request.Request(f"{url}/v1/models/m:predict", json.dumps({"instances": instances}).encode(),
                                 {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())["predictions"]


@pytest.fixture(scope="module")
def served(spark_session, kitchen_service, tmp_path_factory):
    """A store with an RPC group, a saved PaletteTransformer reading it, served with a
    feature log while the kitchen service answers, fails, and answers again."""
    root = tmp_path_factory.mktemp("rpc_offline")
    store = FeatureStore(root / "store")
    store.register(RESTAURANT, FeatureGroup(
        "restaurant", "kitchen_rpc", {"queue_minutes": "num", "queue_orders": "num"}, kind="rpc",
        fetcher=Fetcher(url=f"{kitchen_service}/restaurants/{{r_id}}/queue", fields=FIELDS, timeout="500ms",
                        fallback={"queue_minutes": -1.0}, breaker_failures=1000)))
    model = str(root / "model")
    PaletteTransformer({"q": REF}, storeRoot=str(store.root)).write().save(model)
    logs = root / "logs"
    kitchen_mode(kitchen_service, "fast", reset=True)
    proc, url = start_service(["--model", f"m={model}", "--log-dir", str(logs)], str(root / "serve.log"))
    try:
        answers = []
        for i in range(40):                                   # 40 requests, 10 keys
            if i == 30:
                kitchen_mode(kitchen_service, "failing")
            if i == 36:
                kitchen_mode(kitchen_service, "fast")
            answers.append(predict(url, [{"r_id": f"r{i % 10}"}])[0])
        answers.append(predict(url, [{"r_id": "unknown-1"}])[0])
    finally:
        stop(proc)
        kitchen_mode(kitchen_service, "fast")
    return {"store": store, "logs": str(logs), "answers": answers, "model": model}


def test_backfill_rpc_writes_every_logged_fetch_once_fallbacks_kept_apart(spark_session, served):
    store = served["store"]
    first = backfill_rpc("restaurant:kitchen_rpc", served["logs"], store=store, spark=spark_session)
    assert first["fetches"] == 41 and first["fallbacks"] == 6 and first["inserted"] == 41
    again = backfill_rpc("restaurant:kitchen_rpc", served["logs"], store=store, spark=spark_session)
    assert again["inserted"] == 0 and again["updated"] == 0 and again["version"] == first["version"]
    table = store.read("restaurant:kitchen_rpc", spark=spark_session)
    assert table.columns == ["r_id", "event_ts", "queue_minutes", "queue_orders", "rpc_fallback"]
    assert table.where("rpc_fallback = 'error'").count() == 6
    assert table.where("rpc_fallback IS NULL AND queue_orders IS NULL AND r_id != 'unknown-1'").count() == 0


def test_transform_reads_back_what_was_served_and_consistency_is_exact(spark_session, served):
    store = served["store"]
    backfill_rpc("restaurant:kitchen_rpc", served["logs"], store=store, spark=spark_session)
    logged = (spark_session.read.parquet(served["logs"])
              .select("request_id", "request_time", F.get_json_object("request", "$.r_id").alias("r_id"),
                      F.expr("try_cast(prediction AS double)").alias("served")))
    looked = PaletteTransformer({"q": REF}, timestampCol="request_time", storeRoot=str(store.root)).transform(logged)
    rows = looked.collect()
    assert len(rows) == 41
    fetched = [r for r in rows if r.served != -1.0]
    assert len(fetched) == 35 and all(r.q == r.served for r in fetched)
    # a fallback served while the service failed: the lookup reads the last value it gave instead
    for r in (r for r in rows if r.served == -1.0):
        assert r.q is not None and r.q != -1.0

    report = check_consistency(spark_session, served["logs"], store_root=str(store.root))
    row = next(r for r in report.rows if r["feature"] == "queue_minutes")
    assert row["rows"] == 41 and row["mismatch_rate"] == 0 and row["missing_offline_rate"] == 0
    assert row["rpc_fallback_rate"] == pytest.approx(6 / 41)
    assert row["match_rate"] == pytest.approx(35 / 41)
    assert report.check(max_mismatch_rate=0.0) == []
    assert report.check(max_rpc_fallback_rate=0.1)            # over the limit: a breach names it
    assert "rpc fallback" in str(report)


def test_training_set_from_the_logs_has_the_served_values(spark_session, served):
    labels = spark_session.createDataFrame([(f"r{i}", float(i)) for i in range(10)], "r_id string, eta double")
    train = training_set(spark_session, served["logs"], labels, on="r_id")
    assert {"q", "q__event_time"} <= set(train.columns)
    assert train.count() == 40


def test_materialize_leaves_rpc_groups_out(spark_session, served, tmp_path):
    store = served["store"]
    with pytest.raises(MaterializeError, match="restaurant:kitchen_rpc is an RPC group.*fetch its values at request "
                                               "time"):
        store.materialize(["restaurant:kitchen_rpc"], online_store=f"sqlite:///{tmp_path}/o.db", spark=spark_session)


def test_fetch_history_calls_the_service_as_of_each_time(spark_session, kitchen, tmp_path):
    store = FeatureStore(tmp_path / "store")
    asof = FeatureGroup("restaurant", "kitchen_asof", {"queue_minutes": "num", "queue_orders": "num"}, kind="rpc",
                        fetcher=Fetcher(url=f"{kitchen}/restaurants/{{r_id}}/queue?at={{as_of}}", fields=FIELDS,
                                        as_of=True, timeout="2s"))
    now_only = FeatureGroup("restaurant", "kitchen_now", {"queue_minutes": "num"}, kind="rpc",
                            fetcher=Fetcher(url=f"{kitchen}/restaurants/{{r_id}}/queue",
                                            fields={"queue_minutes": "$.queue.minutes"}))
    store.register(RESTAURANT, asof, now_only)
    start = datetime(2026, 11, 30, 12, 0)
    reqs = [(f"r{i % 7}", start + timedelta(minutes=3 * i)) for i in range(30)] + [("unknown-4", start)]
    df = spark_session.createDataFrame(reqs, "r_id string, order_ts timestamp")
    result = fetch_history("restaurant:kitchen_asof", df, ts_col="order_ts", rate=500, store=store)
    assert result["fetches"] == 31 and result["fallbacks"] == 0
    got = {(r.r_id, r.event_ts): (r.queue_minutes, r.queue_orders)
           for r in store.read("restaurant:kitchen_asof", spark=spark_session).collect()}
    for r_id, t in reqs[:-1]:
        q = answer(r_id, t.replace(tzinfo=timezone.utc).timestamp())["queue"]
        assert got[(r_id, t)] == (q["minutes"], float(q["orders"]))
    assert got[("unknown-4", start)] == (None, None)
    assert fetch_history("restaurant:kitchen_asof", df, ts_col="order_ts", rate=500, store=store)["inserted"] == 0
    with pytest.raises(InvalidArgument, match="cannot answer as of a past time.*palette backfill-rpc"):
        fetch_history("restaurant:kitchen_now", df, ts_col="order_ts", store=store)
