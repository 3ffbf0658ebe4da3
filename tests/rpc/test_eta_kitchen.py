"""The ETA example with its RPC feature over real HTTP, end to end: the kitchen service
(its own process) answers the training history as of each order and every served request;
the model is served by `palette serve` with a feature log, the log backfilled into the
kitchen group's table, the served values read back exactly, the model retrained, and the
parity harness passes with the RPC feature in the pipeline."""
import json
import urllib.request
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from palette import FeatureStore
from palette.examples import eta
from palette.jobs import train
from palette.logs import check_consistency, ingest_logs
from palette.mlflow.uri import local_model_dir
from palette.parity import check_parity
from palette.rpc import backfill_rpc
from palette.testing import kitchen_stats, start_service, stop


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """An MLflow store of this test's own, the previous one restored afterwards."""
    import mlflow
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.create_experiment("eta_kitchen", artifact_location=f"file://{tmp_path}/artifacts")  # not ./mlruns
    yield
    mlflow.set_tracking_uri(before)


def test_eta_with_the_kitchen_queue_over_http(spark_session, kitchen, tmp_path, tracking):
    now = datetime.utcnow().replace(second=0, microsecond=0)
    sim = eta.simulate(str(tmp_path / "sources"), orders=1500, seed=3, days=7, start=now - timedelta(days=7),
                       kitchen=True)
    store = FeatureStore(tmp_path / "store")
    eta.declare(store, kitchen=kitchen)
    ingested = eta.ingest(spark_session, store, sim)
    history = ingested[eta.KITCHEN_GROUP]
    assert history["fetches"] == 1500 and history["fallbacks"] == 0     # every order's queue, as of its time
    assert kitchen_stats(kitchen)["requests"] >= 1500

    first = train.run("palette.examples.eta:kitchen_pipeline", sim.paths["orders"], "delivery_minutes", "order_ts",
                      store_root=store.root, experiment="eta_kitchen", register="eta_kitchen",
                      pipeline_args={"max_iter": 10}, spark=spark_session)
    assert first["metrics"]["rmse"] < first["metrics"]["baseline_rmse"]
    model = local_model_dir(first["registered"])
    online = f"sqlite:///{tmp_path}/online.db"
    store.materialize(online_store=online, spark=spark_session)           # every group but the RPC one

    logs = tmp_path / "logs"
    orders = spark_session.read.parquet(sim.paths["orders"]).orderBy(F.desc("order_ts")).limit(60).collect()
    proc, url = start_service(["--model", f"eta={model}", "--online-store", online, "--log-dir", str(logs / "raw")],
                              str(tmp_path / "serve.log"))
    try:
        served = []
        for o in orders:
            req = urllib.request.Request(f"{url}/v1/models/eta:predict?features=true", json.dumps(
                {"instances": [{"r_id": o.r_id, "order_size": o.order_size}]}).encode(),
                {"Content-Type": "application/json"})
            served.append(json.loads(urllib.request.urlopen(req, timeout=10).read())["features"][0]["queue_minutes"])
    finally:
        stop(proc)
    assert all(q is not None for q in served)
    ingest_logs(spark_session, str(logs / "raw"), str(logs / "served"))
    backfilled = backfill_rpc(eta.KITCHEN_GROUP, str(logs / "served"), store=store, spark=spark_session)
    assert backfilled["fetches"] == 60 and backfilled["fallbacks"] == 0
    report = check_consistency(spark_session, str(logs / "served"), store_root=str(store.root))
    queue = next(r for r in report.rows if r["group"] == eta.KITCHEN_GROUP and r["feature"] == "queue_minutes")
    assert queue["rows"] == 60 and queue["match_rate"] == 1.0 and queue["mismatch_rate"] == 0

    second = train.run("palette.examples.eta:kitchen_pipeline", sim.paths["orders"], "delivery_minutes", "order_ts",
                       store_root=store.root, experiment="eta_kitchen", register="eta_kitchen",
                       pipeline_args={"max_iter": 10}, spark=spark_session)
    assert second["registered"].endswith("/2")
    requests = spark_session.createDataFrame([(o.r_id, o.order_size) for o in orders], "r_id string, order_size int") \
        .withColumn("order_ts", F.current_timestamp())
    parity = check_parity(second["registered"], requests, online_store=online)
    assert parity.ok, str(parity)
    assert parity.rpc[eta.KITCHEN_GROUP]["fetched"] == len({o.r_id for o in orders})
    assert parity.rpc[eta.KITCHEN_GROUP]["fallbacks"] == 0
