"""The tutorial's ETA pipeline, fitted once per test session and materialized into
SQLite and Redis: shared by the lookup parity tests and the serving tests (conftest
exposes ``eta`` and ``online_urls``)."""
from datetime import datetime, timezone

from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor
from pyspark.sql import functions as F

from palette import FeatureStore
from palette.examples import eta as eta_example

# "Now" for both paths: the Spark side looks up as of AS_OF, the online reads use it as
# their clock. It is the real time (to the minute), so that Redis's own expiry (event
# time + max age, in real time) agrees; every generated age keeps 30 minutes away from
# its group's max age (palette.examples.eta), so the minutes the test runs change nothing.
AS_OF = datetime.now(timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
AS_OF_SECONDS = AS_OF.replace(tzinfo=timezone.utc).timestamp()
N_RESTAURANTS = 400
OUTPUTS = ["n_meal", "prep_time", "lat", "long", "region_id", "n_busy",
           "prep_time_f", "n_meal_f", "order_size_f", "n_busy_f", "features", "prediction"]


def build_eta(spark_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("eta")
    store = FeatureStore(root / "store")
    eta_example.declare(store)
    eta_example.generate(spark_session, store, N_RESTAURANTS, AS_OF)
    reqs = spark_session.createDataFrame(eta_example.requests(N_RESTAURANTS, 3000), "order_id int, r_id string, "
                                         "order_size int").withColumn("order_ts", F.lit(AS_OF)).cache()
    labels = reqs.select("order_id", (reqs.order_size * 3.0 + reqs.order_id % 7).alias("eta"))
    models = {}
    for spelling in ("palette_transformer", "dsl_only"):
        pipeline = Pipeline(stages=eta_example.stages(store.root, spelling) + [
            VectorAssembler(inputCols=eta_example.FEATURES, outputCol="features"),
            GBTRegressor(labelCol="eta", maxIter=15, maxDepth=4, seed=3)])
        model = pipeline.fit(reqs.join(labels, "order_id"))
        path = str(root / spelling)
        model.write().save(path)
        expected = {r.order_id: r.asDict() for r in model.transform(reqs).select("order_id", *OUTPUTS).collect()}
        models[spelling] = (path, expected)
    sqlite_url = f"sqlite:///{root}/online.db"
    return {"store": store, "requests": [r.asDict() for r in reqs.select("order_id", "r_id", "order_size").collect()],
            "models": models, "sqlite": sqlite_url, "root": root}


def materialize_eta(eta, redis_server, spark_session):
    urls = {"sqlite": eta["sqlite"], "redis": redis_server[0] + "?timeout_ms=2000&prefix=eta"}
    for url in urls.values():
        results = eta["store"].materialize(online_store=url, spark=spark_session)
        assert sorted(results) == ["region:service_fg", "restaurant:batch_fg", "restaurant:location_fg",
                                  "restaurant:realtime_fg"]
    return urls
