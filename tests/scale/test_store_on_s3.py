"""The whole ETA story with the feature store root on object storage (``s3a://`` on a real
S3-compatible server, SeaweedFS, started once per session): the registry's Delta table,
the feature tables, the event tables and the stream backfills, point-in-time training,
materialization, batch scoring and the parity report all live in the bucket; only the
model directory and the SQLite online store are local."""
import json
import os
from pathlib import Path

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor
from pyspark.sql import functions as F

from eta_fixtures import AS_OF
from palette import FeatureStore, RegistryError, uris
from palette.examples import eta as eta_example
from palette.spark import configure_s3a

pytestmark = pytest.mark.spark
N_RESTAURANTS = 60
ARTIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "spark_artifacts" / "4.0.5" / "pipeline_gbt_regressor"
MODEL = ARTIFACT / "model"


@pytest.fixture(scope="module")
def s3_env(s3, spark_session):
    """The standard AWS_* variables (delta-rs and pyarrow read them) and S3A on the session."""
    saved = {k: os.environ.get(k) for k in s3.env()}
    os.environ.update(s3.env())
    configure_s3a(spark_session, s3.endpoint, s3.access_key, s3.secret_key, s3.region)
    yield s3
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_the_eta_story_with_the_store_root_on_s3(s3_env, spark_session, tmp_path):
    from jobs import batch_score, parity
    from pyspark.ml import PipelineModel

    root = s3_env.uri("eta-story")
    store = FeatureStore(root)
    assert store.root == root                                          # a URI stays a URI
    eta_example.declare(store)
    counts = eta_example.generate(spark_session, store, N_RESTAURANTS, AS_OF)
    assert counts["batch_fg"] > 0
    # The registry is a Delta table in the bucket, Spark reads it like any other.
    registry = spark_session.read.format("delta").load(uris.join(root, "_registry"))
    assert {r.id for r in registry.where("kind = 'feature_group'").collect()} == set(store.registry.groups())
    assert store.table_path("restaurant:batch_fg") == f"{root}/tables/restaurant/batch_fg"
    assert spark_session.read.format("delta").load(store.table_path("restaurant:batch_fg")).count() == counts["batch_fg"]

    # Point-in-time training reads the tables from the bucket.
    reqs = spark_session.createDataFrame(eta_example.requests(N_RESTAURANTS, 400), "order_id int, r_id string, "
                                         "order_size int").withColumn("order_ts", F.lit(AS_OF))
    data = uris.join(root, "requests")
    reqs.write.mode("overwrite").parquet(data)
    labels = reqs.select("order_id", (reqs.order_size * 3.0 + reqs.order_id % 7).alias("eta"))
    model = Pipeline(stages=eta_example.stages(store.root) + [
        VectorAssembler(inputCols=eta_example.FEATURES, outputCol="features"),
        GBTRegressor(labelCol="eta", maxIter=5, maxDepth=3, seed=3)]).fit(reqs.join(labels, "order_id"))
    model_dir = str(tmp_path / "model")
    model.write().save(model_dir)
    model.write().save(uris.join(root, "models", "eta"))               # Spark ML saves to the bucket too
    assert [s.uid for s in PipelineModel.load(uris.join(root, "models", "eta")).stages] == \
        [s.uid for s in model.stages]

    # Materialization reads the latest rows from the bucket into the online store.
    online = f"sqlite:///{tmp_path}/online.db"
    assert sorted(store.materialize(online_store=online, spark=spark_session)) == [
        "region:service_fg", "restaurant:batch_fg", "restaurant:location_fg", "restaurant:realtime_fg"]

    # Batch scoring writes its Delta output to the bucket.
    scores = uris.join(root, "scores")
    out = batch_score.run(model_dir, data, scores, run_id="s3-run", keep=["order_id"], spark=spark_session)
    assert out["rows"] == 400
    assert spark_session.read.format("delta").load(scores).where("run_id = 's3-run'").count() == 400

    # Parity between Spark and the JVM-free path; the report lands in the bucket, whole.
    report_uri = uris.join(root, "reports", "parity.html")
    json_uri = uris.join(root, "reports", "parity.json")
    result = parity.run(model_dir, data, online_store=online, report=report_uri, json_path=json_uri,
                        spark=spark_session)
    assert result.ok, str(result)
    assert b"<html" in uris.read_bytes(report_uri).lower()
    assert json.loads(uris.read_bytes(json_uri))["ok"] is True


def test_registering_on_s3_is_checked_against_what_is_there(s3_env):
    """Two FeatureStore objects (two writers) on one s3a root: the second sees the first's
    definitions and an incompatible change is refused, the rows unchanged."""
    from palette import Entity, FeatureGroup
    root = s3_env.uri("registry-race")
    a, b = FeatureStore(root), FeatureStore(root)
    a.register(Entity("courier", {"c_id": "int"}), FeatureGroup("courier", "speed", {"kmh": "num"}))
    with pytest.raises(RegistryError, match="registered differently.*'kmh' type num -> str"):
        b.register(FeatureGroup("courier", "speed", {"kmh": "str"}))
    b.register(FeatureGroup("courier", "vehicle", {"kind": "str"}))
    assert sorted(a.registry.groups()) == ["courier:speed", "courier:vehicle"]
    assert a.group("courier:speed").feature("kmh").type == "num"


def test_two_replicas_log_to_the_bucket_and_spark_reads_every_request_once(s3_env, spark_session, tmp_path):
    """palette serve --log-dir s3a://…: each replica PUTs whole Parquet files of its own."""
    import signal

    from palette.logs.training import read_logs
    from processes import Service, http

    logs = s3_env.uri("served-logs")
    replicas = [Service(tmp_path, ["--model", f"gbt={MODEL}", "--log-dir", logs], wait=False, env=s3_env.env())
                for _ in range(2)]
    for r in replicas:
        r.wait_ready()
    sent = []
    try:
        for i, row in enumerate(json.loads((ARTIFACT / "transform.json").read_text())["inputs"][:10]):
            instance = {f: row[f] for f in ("a", "b", "c", "cat", "n", "k")}
            for name, r in zip("ab", replicas):
                status, _ = http("POST", r.url + "/v1/models/gbt:predict", {"instances": [instance]},
                                 headers={"X-Request-ID": f"{name}-{i}"})
                assert status == 200
                sent.append(f"{name}-{i}")
    finally:
        for r in replicas:                                   # SIGTERM flushes what is queued
            r.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            assert r.proc.wait(90) == 0, r.output()
    ids = [row.request_id for row in read_logs(spark_session, logs).select("request_id").collect()]
    assert sorted(ids) == sorted(sent)
