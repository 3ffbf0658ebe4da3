"""Vector features end to end: an embedding group's versions ingested into Delta, looked up
point in time by Spark into a VectorAssembler and a model, materialized into SQLite and
Redis, and scored without a JVM with the same numbers; two models pinned to two versions
served side by side from one store; bad vectors refused at ingest, naming the rows."""
from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import LinearRegression

from palette import Entity, FeatureGroup, FeatureStore, IngestError, PaletteTransformer
from palette.online import open_store
from palette.transformers import load_scorer

DIM, N = 8, 60
T0 = datetime(2026, 3, 1)


def _vectors(version: int) -> np.ndarray:
    rng = np.random.default_rng(version)
    base = np.random.default_rng(0).normal(size=(N, DIM)).astype(np.float32)
    return base if version == 1 else (base + 0.3 * rng.normal(size=(N, DIM))).astype(np.float32)


def _emb_rows(version: int):
    return [(f"r{i}", T0, [float(x) for x in v]) for i, v in enumerate(_vectors(version))]


@pytest.fixture(scope="module")
def emb_store(spark_session, small_delta_snapshots, tmp_path_factory):
    root = tmp_path_factory.mktemp("emb") / "store"
    store = FeatureStore(root)
    store.register(Entity("restaurant", {"r_id": "str"}),
                   FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({DIM})"}, kind="embedding", version=1))
    schema = f"r_id string, event_ts timestamp, emb array<double>"
    store.ingest(spark_session.createDataFrame(_emb_rows(1), schema), "restaurant:dish_emb")
    rng = np.random.default_rng(7)
    orders = [(f"o{j}", f"r{int(rng.integers(0, N + 5))}", T0 + timedelta(days=1, minutes=j),
               float(rng.integers(1, 6)), float(rng.normal())) for j in range(300)]
    orders_df = spark_session.createDataFrame(orders, "order_id string, r_id string, order_ts timestamp, "
                                                      "order_size double, label double")
    return {"store": store, "root": str(root), "orders": orders_df, "schema": schema,
            "requests": [{"r_id": r[1], "order_size": r[3]} for r in orders]}


def _pipeline(root: str) -> Pipeline:
    lookup = PaletteTransformer({"emb": "@palette:restaurant:dish_emb:emb:r_id"}, timestampCol="order_ts",
                                storeRoot=root)
    features = VectorAssembler(inputCols=["emb", "order_size"], outputCol="features", handleInvalid="keep")
    return Pipeline(stages=[lookup, features, LinearRegression(labelCol="label", maxIter=5)])


def test_vectors_are_looked_up_point_in_time_as_spark_ml_vectors(emb_store):
    store, orders = emb_store["store"], emb_store["orders"]
    tx = PaletteTransformer({"emb": "@palette:restaurant:dish_emb:emb:r_id"}, timestampCol="order_ts",
                            storeRoot=emb_store["root"])
    out = {r.order_id: r for r in tx.transform(orders).collect()}
    v1 = _vectors(1)
    for r in out.values():
        i = int(r.r_id[1:])
        if i >= N:
            assert r.emb is None                                     # an unknown restaurant: a null vector
        else:
            assert r.emb.toArray().tolist() == v1[i].astype(np.float64).tolist()
    early = orders.limit(3).selectExpr("order_id", "r_id", "timestamp('2026-02-01') AS order_ts")
    assert all(r.emb is None for r in tx.transform(early).collect())    # before the vectors existed


def test_bad_vectors_are_refused_naming_the_rows(emb_store, spark_session):
    store, schema = emb_store["store"], emb_store["schema"]
    rows = _emb_rows(1)[:3]
    short = rows[:2] + [("r2", T0, [1.0, 2.0])]
    with pytest.raises(IngestError, match=r"1 rows hold vectors.*r_id=r2.*emb has 2 values, not 8.*Nothing was"):
        store.ingest(spark_session.createDataFrame(short, schema), "restaurant:dish_emb")
    nan = rows[:1] + [("r1", T0, [float("nan")] * DIM), ("r2", T0, [float("inf")] + [0.0] * (DIM - 1))]
    with pytest.raises(IngestError, match=r"2 rows hold vectors.*r_id=r1.*NaN"):
        store.ingest(spark_session.createDataFrame(nan, schema), "restaurant:dish_emb")
    with pytest.raises(IngestError, match="wrong types: emb is string"):
        store.ingest(spark_session.createDataFrame([("r1", T0, "x")], "r_id string, event_ts timestamp, emb string"),
                     "restaurant:dish_emb")


@pytest.fixture(scope="module")
def two_models(emb_store, spark_session, tmp_path_factory):
    """A model fitted on version 1; the embedding retrained as version 2; a model fitted on it."""
    store, orders, root = emb_store["store"], emb_store["orders"], emb_store["root"]
    out = tmp_path_factory.mktemp("models")
    known = orders.where(f"int(substring(r_id, 2)) < {N}")          # unknown restaurants are scored, not trained on
    _pipeline(root).fit(known).write().save(str(out / "m1"))
    store.register(FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({DIM})"}, kind="embedding", version=2))
    store.ingest(spark_session.createDataFrame(_emb_rows(2), emb_store["schema"]), "restaurant:dish_emb")
    _pipeline(root).fit(known).write().save(str(out / "m2"))       # a new fit reads the newest version
    return {"m1": str(out / "m1"), "m2": str(out / "m2")}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_models_on_two_versions_served_side_by_side_equal_spark(emb_store, two_models, spark_session, tmp_path,
                                                                    backend, redis_url):
    store, orders = emb_store["store"], emb_store["orders"]
    url = f"sqlite:///{tmp_path}/online.db" if backend == "sqlite" else redis_url
    assert store.materialize(online_store=url, spark=spark_session).keys() == {
        "restaurant:dish_emb@v1", "restaurant:dish_emb@v2"}
    served = {}
    for name in ("m1", "m2"):
        spark_model = PipelineModel.load(two_models[name])           # loaded: still on its own version
        expected = {r.order_id: r for r in spark_model.transform(orders).collect()}
        scorer = load_scorer(two_models[name], online_store=open_store(url))
        got = scorer.scoreBatch(emb_store["requests"])
        single = [scorer.scoreInstance(q) for q in emb_store["requests"][:20]]
        for (oid, want), row in zip(sorted(expected.items(), key=lambda kv: int(kv[0][1:])), got):
            if want.emb is None:
                assert row["emb"] is None
            else:
                assert row["emb"].tolist() == want.emb.toArray().tolist()
            if want.emb is None:                                     # VectorAssembler keeps NaN for a null vector
                assert np.isnan(row["prediction"]) and np.isnan(want.prediction)
            else:
                assert row["prediction"] == pytest.approx(want.prediction, rel=1e-12, abs=1e-12)
        assert [str(s["prediction"]) for s in single] == [str(g["prediction"]) for g in got[:20]]
        served[name] = np.array([g["prediction"] for g in got])
    v1, v2 = _vectors(1), _vectors(2)
    request = next(q for q in emb_store["requests"] if int(q["r_id"][1:]) < N)
    i = int(request["r_id"][1:])
    s1 = load_scorer(two_models["m1"], online_store=open_store(url)).scoreInstance(request)
    assert s1["emb"].tolist() == v1[i].astype(np.float64).tolist()
    s2 = load_scorer(two_models["m2"], online_store=open_store(url)).scoreInstance(request)
    assert s2["emb"].tolist() == v2[i].astype(np.float64).tolist()
    assert not np.allclose(served["m1"], served["m2"], equal_nan=True)
