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
    """Restaurant i has 100 - i // 2 orders: ties in pairs, for the top-k."""
    return [(f"r{i}", T0, [float(x) for x in v], float(100 - i // 2)) for i, v in enumerate(_vectors(version))]


def _group(version: int) -> FeatureGroup:
    return FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({DIM})", "n_orders": "num"}, kind="embedding",
                        version=version)


@pytest.fixture(scope="module")
def emb_store(spark_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("emb") / "store"
    store = FeatureStore(root)
    store.register(Entity("restaurant", {"r_id": "str"}), _group(1))
    schema = "r_id string, event_ts timestamp, emb array<double>, n_orders double"
    store.ingest(spark_session.createDataFrame(_emb_rows(1), schema), "restaurant:dish_emb")
    rng = np.random.default_rng(7)
    orders = [(f"o{j}", f"r{int(rng.integers(0, N + 5))}", T0 + timedelta(days=1, minutes=j),
               float(rng.integers(1, 6)), float(rng.normal())) for j in range(300)]
    orders_df = spark_session.createDataFrame(orders, "order_id string, r_id string, order_ts timestamp, "
                                                      "order_size double, label double")
    return {"store": store, "root": str(root), "orders": orders_df, "schema": schema,
            "requests": [{"r_id": r[1], "order_size": r[3], "label": r[4]} for r in orders]}


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
    short = rows[:2] + [("r2", T0, [1.0, 2.0], 1.0)]
    with pytest.raises(IngestError, match=r"1 rows hold vectors.*r_id=r2.*emb has 2 values, not 8.*Nothing was"):
        store.ingest(spark_session.createDataFrame(short, schema), "restaurant:dish_emb")
    nan = rows[:1] + [("r1", T0, [float("nan")] * DIM, 1.0), ("r2", T0, [float("inf")] + [0.0] * (DIM - 1), 1.0)]
    with pytest.raises(IngestError, match=r"2 rows hold vectors.*r_id=r1.*NaN"):
        store.ingest(spark_session.createDataFrame(nan, schema), "restaurant:dish_emb")
    huge = rows[:1] + [("r1", T0, [1e39] + [0.0] * (DIM - 1), 1.0)]          # beyond float32: not infinity
    with pytest.raises(IngestError, match=r"1 rows hold vectors.*r_id=r1.*beyond float32"):
        store.ingest(spark_session.createDataFrame(huge, schema), "restaurant:dish_emb")
    missing = rows[:1] + [("r1", T0, None, 1.0)]
    with pytest.raises(IngestError, match=r"r_id=r1, event_ts=.*: emb is null \(an embedding version holds a vector"):
        store.ingest(spark_session.createDataFrame(missing, schema), "restaurant:dish_emb")
    with pytest.raises(IngestError, match="wrong types: emb is string"):
        store.ingest(spark_session.createDataFrame([("r1", T0, "x", 1.0)],
                                                   "r_id string, event_ts timestamp, emb string, n_orders double"),
                     "restaurant:dish_emb")


@pytest.fixture(scope="module")
def two_models(emb_store, spark_session, tmp_path_factory):
    """A model fitted on version 1; the embedding retrained as version 2; a model fitted on it."""
    store, orders, root = emb_store["store"], emb_store["orders"], emb_store["root"]
    out = tmp_path_factory.mktemp("models")
    known = orders.where(f"int(substring(r_id, 2)) < {N}")          # unknown restaurants are scored, not trained on
    _pipeline(root).fit(known).write().save(str(out / "m1"))
    store.register(_group(2))
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


def test_compress_keeps_the_top_k_quantized_and_reads_unk_for_the_rest_on_both_paths(
        emb_store, two_models, spark_session, tmp_path):
    from palette.embeddings import compress, read_version
    from palette.embeddings.quantize import decode_int8, encode_int8
    store, orders, root = emb_store["store"], emb_store["orders"], emb_store["root"]
    url = f"sqlite:///{tmp_path}/online.db"
    store.materialize(online_store=url, spark=spark_session)
    report = compress(spark_session, store, "restaurant:dish_emb@v1", 21, by="n_orders", quantize="int8",
                      sweep=[(None, "float16"), (10, "int8")], model=two_models["m1"],
                      requests=emb_store["requests"], online_store=url, label="label")
    new = store.group("restaurant:dish_emb")
    assert report.written == new.id == "restaurant:dish_emb@v3" and new.feature("emb").type == f"vector({DIM}, int8)"
    kept = read_version(spark_session, store, new.id)
    # 100 - i // 2 orders: r0..r19 hold the 20 largest counts; r20 and r21 tie at 90, the smaller key wins
    assert sorted(kept.keys.tolist()) == sorted([f"r{i}" for i in range(21)])
    v1 = _vectors(1)
    dropped = np.array([i not in range(21) for i in range(N)])
    unk = np.asarray(new.unk_vector("emb"), np.float32)
    assert np.allclose(unk, v1[dropped].mean(axis=0), atol=0.02)          # the mean of the dropped, quantized
    assert (decode_int8(encode_int8(kept.matrix)) == kept.matrix).all()   # fixed points: online = offline
    rows = [int(k[1:]) for k in kept.keys]                              # int8: within half a step of v1
    assert (np.abs(kept.matrix - v1[rows]) <= np.abs(v1[rows]).max(axis=1, keepdims=True) / 127 * 0.51).all()
    # the price, per setting, on the model fitted on v1 (its RMSE before and after, changed predictions)
    assert [c.label for c in report.candidates] == ["top-21 int8", "top-all float16", "top-10 int8"]
    top21, f16, top10 = (c.change for c in report.candidates)
    assert f16.changed_rate < 0.05 and 0 < f16.mean_abs_change < 1e-3 < top10.mean_abs_change
    assert top10.changed_rate >= top21.changed_rate > f16.changed_rate
    assert top21.metric == "rmse" and top21.metric_before == pytest.approx(f16.metric_before)
    assert report.candidates[1].online_bytes < report.before_online_bytes
    assert report.ok and "top-21 int8" in str(report)
    from palette.errors import InvalidArgument
    with pytest.raises(InvalidArgument, match="stores emb as float16/int8 online.*fixed_points=True"):
        store.ingest(spark_session.createDataFrame(_emb_rows(1)[:2], emb_store["schema"]).drop("n_orders"), new.id)
    held = compress(spark_session, store, "restaurant:dish_emb@v1", 5, by="n_orders", model=two_models["m1"],
                    requests=emb_store["requests"], online_store=url, max_change_rate=0.01)
    assert held.written is None and not held.ok and held.exit_code == 1 and "not written" in held.notes[0]
    assert store.group("restaurant:dish_emb").id == "restaurant:dish_emb@v3"          # nothing registered
    # a model fitted on the compressed version: UNK for dropped and unknown restaurants, Spark = JVM-free
    model = _pipeline(root).fit(orders.where(f"int(substring(r_id, 2)) < {N}"))
    model.write().save(str(tmp_path / "m3"))
    store.materialize(["restaurant:dish_emb@v3"], online_store=url, spark=spark_session)
    expected = {r.order_id: r for r in model.transform(orders).collect()}
    got = load_scorer(str(tmp_path / "m3"), online_store=open_store(url)).scoreBatch(emb_store["requests"])
    for (oid, want), row in zip(sorted(expected.items(), key=lambda kv: int(kv[0][1:])), got):
        assert row["emb"].tolist() == want.emb.toArray().tolist(), (oid, want.r_id, row["r_id"], unk)
        if int(want.r_id[1:]) >= 21:
            assert row["emb"].tolist() == unk.astype(np.float64).tolist()
        assert row["prediction"] == pytest.approx(want.prediction, rel=1e-12, abs=1e-12)


def test_compare_reports_drift_neighbours_instability_and_the_models_change(emb_store, two_models, spark_session,
                                                                             tmp_path):
    from palette.embeddings import compare
    from palette.jobs import job_module
    store = emb_store["store"]
    url = f"sqlite:///{tmp_path}/online.db"
    store.materialize(["restaurant:dish_emb@v1"], online_store=url, spark=spark_session)
    report = compare(spark_session, store, "restaurant:dish_emb", 1, 2, models=[two_models["m1"], two_models["m2"]],
                     requests=emb_store["requests"], online_store=url, label="label", k=5, max_change_rate=0.5)
    s = report.summary
    assert s.n == N and 0 < s.drift_mean < s.drift_p95 < 1 and 0 < s.knn_overlap_mean < 1 and 0 < s.eis < 1
    assert len(report.drift) == N and report.most_drifted(1)[0][1] == pytest.approx(float(report.drift.max()))
    m1 = report.changes[0]                            # fitted on v1: switching it to v2 moves its predictions
    assert m1.model == two_models["m1"] and m1.changed_rate > 0.5 and m1.metric == "rmse"
    assert any("reads restaurant:dish_emb@v2, not v1" in n for n in report.notes)
    assert not report.ok and report.exit_code == 1 and "changed_rate" in str(report)
    same = compare(spark_session, store, "restaurant:dish_emb", 1, 1, k=5)
    assert same.summary.drift_p95 < 1e-6 and same.summary.knn_overlap_mean == 1.0 and same.summary.eis < 1e-9
    # the job: exit 1 on a breached limit, the report written
    out = tmp_path / "stability.json"
    code = job_module("embeddings_compare").main(["restaurant:dish_emb", "--from", "1", "--to", "2", "--store",
                                                  emb_store["root"], "--k", "5", "--min-knn-overlap", "0.99",
                                                  "--json", str(out), "--html", str(tmp_path / "s.html")])
    assert code == 1 and '"kind": "embedding_stability"' in out.read_text()
    assert "<svg" in (tmp_path / "s.html").read_text()
    assert job_module("embeddings_compare").main(["restaurant:dish_emb", "--from", "1", "--to", "9", "--store",
                                                  emb_store["root"]]) == 1              # no such version: logged


def test_the_parity_harness_checks_a_pipeline_with_vector_lookups(emb_store, two_models, spark_session, tmp_path):
    from palette.parity import check_parity
    url = f"sqlite:///{tmp_path}/online.db"
    emb_store["store"].materialize(["restaurant:dish_emb@v1"], online_store=url, spark=spark_session)
    report = check_parity(two_models["m1"], emb_store["orders"].drop("label"), online_store=url, sample=100)
    assert report.ok, str(report)
    assert report.rows == 100
