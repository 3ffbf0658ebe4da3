"""Lookups in the single-row path: the tutorial's ETA pipeline trained with transform()
and served with load_scorer(path, online_store=...), with the same numbers.

For the same keys and the same instant, scoreInstance / scoreBatch against the online
store (SQLite file, Redis server) equal Spark's transform with timestampCol at that
instant, in every output column: both spellings of the tutorial (PaletteTransformer
lookups; DSL stages looking up by themselves), thousands of requests including unknown
keys, null keys, expired values and null features.
"""
import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor

from palette import (DSLEstimator, DSLTransformer, Entity, FeatureGroup, FeatureLookupError, FeatureStore,
                     OnlineSchemaMismatch, PaletteTransformer, nFill, nVal, regionId)
from palette.errors import NotConfigured
from palette.online import open_store
from palette.transformers import load_scorer

# "Now" for both paths: the Spark side looks up as of AS_OF, the online reads use it as
# their clock. It is the real time (to the minute), so that Redis's own expiry (event
# time + max age, in real time) agrees; every generated age keeps 30 minutes away from
# its group's max age, so the minutes the test runs change nothing.
AS_OF = datetime.now(timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
AS_OF_SECONDS = AS_OF.replace(tzinfo=timezone.utc).timestamp()
N_RESTAURANTS = 400
MAX_AGE = {"realtime_fg": timedelta(hours=2), "batch_fg": timedelta(days=7), "service_fg": timedelta(hours=1)}
OUTPUTS = ["n_meal", "prep_time", "lat", "long", "region_id", "n_busy",
           "prep_time_f", "n_meal_f", "order_size_f", "n_busy_f", "features", "prediction"]


def age(rng, group, expired=False):
    """An age that is clearly within (or clearly past) the group's max age."""
    limit = MAX_AGE[group]
    margin = timedelta(minutes=30)
    if expired:
        return limit + margin + (limit * rng.random())
    return (limit - margin) * rng.random()


def declare(store):
    store.register(
        Entity("restaurant", {"r_id": "str"}), Entity("region", {"region_id": "str"}),
        FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num", "lat": "num", "long": "num"},
                     kind="realtime", max_age="2h"),
        FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}, max_age="7d"),
        FeatureGroup("region", "service_fg", {"n_busy": "num"}, kind="realtime", max_age="1h"))


def generate(spark, store):
    rng = random.Random(11)
    realtime, batch = [], []
    for i in range(N_RESTAURANTS):
        r_id = f"r{i}"
        lat, lng = 37.6 + rng.random() * 0.4, -122.6 + rng.random() * 0.4
        if i % 10 != 9:                                    # r9, r19, ...: no realtime row at all
            expired = i % 10 == 8                          # r8, r18, ...: only rows past max age
            for j in range(rng.randint(1, 4)):
                a = age(rng, "realtime_fg", expired) + timedelta(minutes=20 * j * (1 if expired else 0))
                n_meal = None if rng.random() < 0.1 else float(rng.randint(0, 30))
                realtime.append((r_id, AS_OF - a - timedelta(seconds=j), n_meal, lat, lng))
        if i % 7 != 6:
            for j in range(rng.randint(1, 3)):
                prep = None if rng.random() < 0.15 else 5 + rng.random() * 25
                batch.append((r_id, AS_OF - age(rng, "batch_fg", i % 7 == 5) - timedelta(hours=j), prep))
    region = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("long"), 5)})
    rows = spark.createDataFrame([(r[3], r[4]) for r in realtime], "lat double, long double")
    regions = sorted({r.region_id for r in region.transform(rows).select("region_id").distinct().collect()})
    busy = []
    for k, cell in enumerate(regions):
        if k % 6 == 5:
            continue                                       # some regions have no busyness data
        for j in range(rng.randint(1, 3)):
            busy.append((cell, AS_OF - age(rng, "service_fg", k % 6 == 4) - timedelta(minutes=j),
                         float(rng.randint(0, 12))))
    store.ingest(spark.createDataFrame(realtime, "r_id string, event_ts timestamp, n_meal double, lat double, "
                                                 "long double"), "restaurant:realtime_fg")
    store.ingest(spark.createDataFrame(batch, "r_id string, event_ts timestamp, prep_time double"),
                 "restaurant:batch_fg")
    store.ingest(spark.createDataFrame(busy, "region_id string, event_ts timestamp, n_busy double"),
                 "region:service_fg")


def requests(spark, n=3000):
    rng = random.Random(5)
    rows = []
    for i in range(n):
        pick = rng.random()
        r_id = None if pick < 0.02 else (f"unknown{i}" if pick < 0.07 else f"r{rng.randrange(N_RESTAURANTS)}")
        rows.append((i, r_id, rng.randint(1, 6), AS_OF))
    return spark.createDataFrame(rows, "order_id int, r_id string, order_size int, order_ts timestamp")


def tutorial_stages(root, spelling):
    lookup = {"timestampCol": "order_ts", "storeRoot": root}
    if spelling == "palette_transformer":
        return [
            PaletteTransformer({"n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
                                "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
                                "lat": "@palette:restaurant:realtime_fg:lat:r_id",
                                "long": "@palette:restaurant:realtime_fg:long:r_id"}, **lookup),
            DSLEstimator(lambdas={"region_id": regionId(nVal("restaurant:realtime_fg:lat:r_id"),
                                                        nVal("restaurant:realtime_fg:long:r_id"), 5)}, **lookup),
            PaletteTransformer({"n_busy": "@palette:region:service_fg:n_busy:region_id"}, **lookup),
            DSLEstimator(lambdas={
                "prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
                "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
                "order_size_f": nVal("basis:order_size"),
                "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1)}, **lookup)]
    return [   # the DSL stages alone, looking up what they read
        DSLEstimator(lambdas={"region_id": regionId(nVal("restaurant:realtime_fg:lat:r_id"),
                                                    nVal("restaurant:realtime_fg:long:r_id"), 5),
                              "lat": nVal("restaurant:realtime_fg:lat:r_id"),
                              "long": nVal("restaurant:realtime_fg:long:r_id"),
                              "n_meal": nVal("restaurant:realtime_fg:n_meal:r_id"),
                              "prep_time": nVal("restaurant:batch_fg:prep_time:r_id")}, **lookup),
        DSLEstimator(lambdas={
            "n_busy": nVal("region:service_fg:n_busy:region_id"),
            "prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
            "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
            "order_size_f": nVal("basis:order_size"),
            "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1)}, **lookup)]


@pytest.fixture(scope="module")
def eta(spark_session, tmp_path_factory, small_delta_snapshots):
    root = tmp_path_factory.mktemp("eta")
    store = FeatureStore(root / "store")
    declare(store)
    generate(spark_session, store)
    reqs = requests(spark_session).cache()
    labels = reqs.select("order_id", (reqs.order_size * 3.0 + reqs.order_id % 7).alias("eta"))
    models = {}
    for spelling in ("palette_transformer", "dsl_only"):
        pipeline = Pipeline(stages=tutorial_stages(store.root, spelling) + [
            VectorAssembler(inputCols=["prep_time_f", "n_meal_f", "order_size_f", "n_busy_f"],
                            outputCol="features"),
            GBTRegressor(labelCol="eta", maxIter=15, maxDepth=4, seed=3)])
        model = pipeline.fit(reqs.join(labels, "order_id"))
        path = str(root / spelling)
        model.write().save(path)
        expected = {r.order_id: r.asDict() for r in model.transform(reqs).select("order_id", *OUTPUTS).collect()}
        models[spelling] = (path, expected)
    sqlite_url = f"sqlite:///{root}/online.db"
    return {"store": store, "requests": [r.asDict() for r in reqs.select("order_id", "r_id", "order_size").collect()],
            "models": models, "sqlite": sqlite_url, "root": root}


@pytest.fixture(scope="module")
def online_urls(eta, redis_server, spark_session):
    urls = {"sqlite": eta["sqlite"], "redis": redis_server[0] + "?timeout_ms=2000&prefix=eta"}
    for url in urls.values():
        results = eta["store"].materialize(online_store=url, spark=spark_session)
        assert sorted(results) == ["region:service_fg", "restaurant:batch_fg", "restaurant:realtime_fg"]
    return urls


def same(a, b, column):
    if hasattr(a, "toArray"):
        a = a.toArray().tolist()
    if hasattr(b, "tolist"):
        b = b.tolist()
    if column == "prediction":
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("spelling", ["palette_transformer", "dsl_only"])
def test_served_eta_pipeline_equals_spark(eta, online_urls, backend, spelling):
    path, expected = eta["models"][spelling]
    scorer = load_scorer(path, online_store=open_store(online_urls[backend], clock=lambda: AS_OF_SECONDS))
    assert scorer.round_trips == 2                  # the restaurant's features, then the region's
    rows = eta["requests"]
    batch = scorer.scoreBatch([{"r_id": r["r_id"], "order_size": r["order_size"]} for r in rows])
    mismatches = []
    kinds = {"unknown": 0, "null key": 0, "expired": 0, "null feature": 0, "busy": 0}
    for r, from_batch in zip(rows, batch):
        single = scorer.scoreInstance({"r_id": r["r_id"], "order_size": r["order_size"]})
        want = expected[r["order_id"]]
        for c in OUTPUTS:
            if not (same(want[c], single[c], c) and same(want[c], from_batch[c], c)):
                mismatches.append((r, c, want[c], single[c], from_batch[c]))
        assert not any(k.startswith("__palette") for k in single) and not any(k.startswith("__palette") for k in from_batch)
        r_id = r["r_id"] or ""
        kinds["unknown"] += r_id.startswith("unknown")
        kinds["null key"] += r["r_id"] is None
        kinds["expired"] += r_id[1:].isdigit() and int(r_id[1:]) % 10 == 8
        kinds["null feature"] += want["n_meal"] is None and want["lat"] is not None
        kinds["busy"] += want["n_busy"] is not None
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:3]}"
    assert len(rows) == 3000 and all(v >= 20 for v in kinds.values()), kinds


def test_stage_score_instance_reads_the_online_store(eta, online_urls, monkeypatch):
    """An unsaved PaletteTransformer (and a DSL stage looking up by itself) scores one row
    against the configured online store."""
    import palette
    store_root = eta["store"].root
    tx = PaletteTransformer({"prep": "@palette:restaurant:batch_fg:prep_time:r_id"}, storeRoot=store_root)
    dsl = DSLTransformer(lambdas={"p2": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), 0) * 2},
                         storeRoot=store_root)
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.delenv("PALETTE_ONLINE_STORE", raising=False)
    with pytest.raises(NotConfigured, match="online store.*PALETTE_ONLINE_STORE"):
        tx.scoreInstance({"r_id": "r1"})
    palette.configure(online_store=online_urls["sqlite"])
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    for r_id in ("r1", "r2", "r6", "nope"):
        want = scorer.scoreInstance({"r_id": r_id, "order_size": 1})["prep_time"]
        assert tx.scoreInstance({"r_id": r_id}) == {"r_id": r_id, "prep": want}
        assert dsl.scoreInstance({"r_id": r_id})["p2"] == (0.0 if want is None else want * 2)


def test_request_errors_name_the_field(eta, online_urls):
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    with pytest.raises(FeatureLookupError, match="no field 'r_id'.*fields present: order_size"):
        scorer.scoreInstance({"order_size": 2})
    with pytest.raises(FeatureLookupError, match="'r_id' is the key of restaurant:.*must be a string, got int 42"):
        scorer.scoreInstance({"r_id": 42, "order_size": 2})
    with pytest.raises(FeatureLookupError, match="'r_id'.*must be a string"):
        scorer.scoreBatch([{"r_id": "r1", "order_size": 2}, {"r_id": 7.0, "order_size": 2}])


def test_load_fails_naming_a_group_the_online_store_lacks(eta, tmp_path):
    url = f"sqlite:///{tmp_path}/partial.db"
    eta["store"].materialize(["restaurant:batch_fg"], online_store=url)
    with pytest.raises(OnlineSchemaMismatch, match="restaurant:realtime_fg, which is not in the online store.*"
                                                   "palette materialize"):
        load_scorer(eta["models"]["palette_transformer"][0], online_store=url)


def test_load_without_online_store_names_what_to_configure(eta, monkeypatch):
    import palette
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.delenv("PALETTE_ONLINE_STORE", raising=False)
    with pytest.raises(NotConfigured, match="PaletteTransformer.*restaurant:realtime_fg.*online_store="):
        load_scorer(eta["models"]["palette_transformer"][0])
    monkeypatch.setenv("PALETTE_ONLINE_STORE", eta["sqlite"])
    load_scorer(eta["models"]["palette_transformer"][0])


def test_saved_stage_carries_its_definitions(eta):
    """The serving side needs no registry: the saved stages hold entities and groups."""
    import json
    from pathlib import Path
    path = Path(eta["models"]["dsl_only"][0])
    metas = [json.loads(next((d / "metadata").glob("part-*")).read_text()) for d in sorted((path / "stages").iterdir())]
    defs = metas[1]["paletteDefinitions"]
    assert sorted(defs["groups"]) == ["region:service_fg", "restaurant:batch_fg", "restaurant:realtime_fg"]
    assert defs["entities"]["region"]["join_keys"] == [["region_id", "str"]]
    assert defs["groups"]["region:service_fg"]["max_age_seconds"] == 3600
