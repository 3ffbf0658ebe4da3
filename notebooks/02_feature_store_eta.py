# %% [markdown]
# # The Uber Eats ETA example, offline: feature store, point-in-time training set, GBT
#
# The tutorial's pipeline (DESIGN.md): features looked up from the feature store by
# restaurant id, a region id computed from the restaurant's coordinates, a second lookup
# keyed by that computed region id, imputation in the DSL, then Spark's VectorAssembler
# and GBTRegressor. Training rows get the feature values as of each order's time, never
# a later one. This notebook (jupytext percent format; `make demo` runs it as a script)
# declares the features, ingests their histories into Delta, fits the pipeline, checks
# point-in-time correctness on a few rows by hand, rebuilds the training set from pinned
# Delta versions, materializes the latest values into the online store and serves the
# whole pipeline from it without a JVM.

# %%
import os
import random
import shutil
import tempfile
from datetime import datetime, timedelta

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor

from palette import (DSLEstimator, DSLTransformer, Entity, FeatureGroup, FeatureStore, PaletteTransformer,
                     nFill, nVal, regionId)
from palette.spark import session
from palette.transformers import load_scorer

spark = session(app_name="palette-eta-demo")
spark.sparkContext.setLogLevel("ERROR")
workdir = tempfile.mkdtemp(prefix="palette-eta-")

# %% [markdown]
# ## Declare: entities, feature groups, features

# %%
store = FeatureStore(os.path.join(workdir, "store"))
store.register(
    Entity("restaurant", {"r_id": "str"}, description="a restaurant on the platform"),
    Entity("region", {"region_id": "str"}, description="a geohash cell (precision 5)"),
    FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num", "lat": "num", "long": "num"},
                 kind="realtime", max_age="2h", description="kitchen load and location, streamed"),
    FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}, kind="batch", max_age="7d",
                 description="daily mean preparation time"),
    FeatureGroup("region", "service_fg", {"n_busy": "num"}, kind="realtime", max_age="1h",
                 description="couriers busy in the region"),
)
print(store.search("n_"))

# %% [markdown]
# ## Ingest feature histories (Delta MERGE; a rerun commits nothing)

# %%
rng = random.Random(7)
T0 = datetime(2024, 5, 1)
restaurants = {f"r{i}": (37.70 + rng.random() * 0.15, -122.50 + rng.random() * 0.15) for i in range(40)}
realtime, batch, busy = [], [], {}
for r_id, (lat, lng) in restaurants.items():
    for h in range(0, 72, 1):                        # hourly kitchen load, 3 days
        if rng.random() < 0.9:
            realtime.append((r_id, T0 + timedelta(hours=h), float(rng.randint(0, 25)), lat, lng))
    for d in range(0, 3):                            # one prep-time row a day, some missing values
        batch.append((r_id, T0 + timedelta(days=d), None if rng.random() < 0.1 else 8 + rng.random() * 20))
cells = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("long"), 5)}).transform(
    spark.createDataFrame([(lat, lng) for lat, lng in restaurants.values()], "lat double, long double"))
for row in cells.select("region_id").distinct().collect():
    for m in range(0, 72 * 60, 30):                  # every 30 minutes
        busy[(row.region_id, T0 + timedelta(minutes=m))] = float(rng.randint(0, 12))

print(store.ingest(spark.createDataFrame(realtime, "r_id string, event_ts timestamp, n_meal double, "
                                         "lat double, long double"), "restaurant:realtime_fg"))
print(store.ingest(spark.createDataFrame(batch, "r_id string, event_ts timestamp, prep_time double"),
                   "restaurant:batch_fg"))
busy_df = spark.createDataFrame([(k, t, v) for (k, t), v in busy.items()],
                                "region_id string, event_ts timestamp, n_busy double")
print(store.ingest(busy_df, "region:service_fg"))
rerun = store.ingest(busy_df, "region:service_fg")
assert (rerun["inserted"], rerun["updated"]) == (0, 0)
print("rerun:", rerun)

# %% [markdown]
# ## Training rows: orders with their time; the label is the delivery time
#
# The label is generated from the features the order really saw (so the model has
# something to learn), plus noise.

# %%
orders = []
for i in range(3000):
    r_id = rng.choice(list(restaurants))
    ts = T0 + timedelta(hours=1, minutes=rng.randint(0, 70 * 60))
    orders.append((i, r_id, ts, rng.randint(1, 6)))
orders_df = spark.createDataFrame(orders, "order_id int, r_id string, order_ts timestamp, order_size int")

# %% [markdown]
# ## The pipeline, as the tutorial writes it

# %%
palette_tx = PaletteTransformer({
    "n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
    "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
    "lat": "@palette:restaurant:realtime_fg:lat:r_id",
    "long": "@palette:restaurant:realtime_fg:long:r_id",
}, timestampCol="order_ts", storeRoot=store.root)
region = DSLEstimator(lambdas={"region_id": regionId(nVal("restaurant:realtime_fg:lat:r_id"),
                                                     nVal("restaurant:realtime_fg:long:r_id"), 5)})
busy_tx = PaletteTransformer({"n_busy": "@palette:region:service_fg:n_busy:region_id"},
                             timestampCol="order_ts", storeRoot=store.root)
impute = DSLEstimator(lambdas={
    "prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
    "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
    "order_size_f": nVal("basis:order_size"),
    "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1)})
features = ["prep_time_f", "n_meal_f", "order_size_f", "n_busy_f"]

training = Pipeline(stages=[palette_tx, region, busy_tx, impute]).fit(orders_df).transform(orders_df).cache()
truth = {r.order_id: 10 + 0.8 * max(r.prep_time_f, 0) + 0.6 * max(r.n_meal_f, 0) + 1.5 * r.order_size_f
         + 0.9 * max(r.n_busy_f, 0) + rng.gauss(0, 2) for r in training.collect()}
labels = spark.createDataFrame(list(truth.items()), "order_id int, eta double")
train_df = orders_df.join(labels, "order_id")

pipeline = Pipeline(stages=[palette_tx, region, busy_tx, impute,
                            VectorAssembler(inputCols=features, outputCol="features"),
                            GBTRegressor(labelCol="eta", maxIter=30, maxDepth=4, seed=1)])
fit_part, eval_part = train_df.randomSplit([0.8, 0.2], seed=3)
model = pipeline.fit(fit_part)
rmse = RegressionEvaluator(labelCol="eta").evaluate(model.transform(eval_part))
print(f"GBT on point-in-time features: RMSE {rmse:.2f} minutes on held-out orders")
assert rmse < 5

# %% [markdown]
# ## Point in time, checked by hand
#
# For a few orders, the feature rows at or before the order's time (within max age) are
# read straight from the Delta table; the lookup must have picked the latest of them.

# %%
looked_up = {r.order_id: r for r in training.collect()}
table = store.read("restaurant:realtime_fg", spark).collect()
for order_id, r_id, ts, _ in orders[:25]:
    past = [row for row in table if row.r_id == r_id and row.event_ts <= ts
            and ts - row.event_ts <= timedelta(hours=2)]
    expected = max(past, key=lambda row: row.event_ts).n_meal if past else None
    assert looked_up[order_id]["n_meal"] == expected, order_id
print("point in time: 25 orders checked against the Delta table by hand")

# %% [markdown]
# ## Save, reload, rebuild the training set exactly
#
# Pinning the Delta versions makes a rebuild read the very table versions the model was
# trained on, even after new data arrives.

# %%
for stage in (palette_tx, busy_tx):
    stage.pinVersions(spark)
pinned = pipeline.fit(fit_part)
path = os.path.join(workdir, "eta_model")
pinned.write().overwrite().save(path)
store.ingest(spark.createDataFrame([("r0", T0 + timedelta(hours=5, minutes=1), 99.0, 0.0, 0.0)],
                                   "r_id string, event_ts timestamp, n_meal double, lat double, long double"),
             "restaurant:realtime_fg")                       # new data after training
before = sorted((r.order_id, r.prediction) for r in pinned.transform(eval_part).collect())
after = sorted((r.order_id, r.prediction) for r in PipelineModel.load(path).transform(eval_part).collect())
assert before == after
store.record_model(path)                                     # the registry learns which features it reads
print("saved model reloaded: same predictions; features searchable by model:",
      [f.id for f in store.search(model=path)])

# %% [markdown]
# ## Served without Spark, from the online store
#
# `materialize` copies the latest value of every key from the Delta tables into the online
# store (SQLite here: a file, no server; Redis in production). `load_scorer` reads the saved
# model — which carries the definitions of the groups it reads — and scores a request with
# lookups (two round trips: by `r_id`, then by the `region_id` the DSL computes), the DSL,
# the VectorAssembler and the GBT, without a JVM. At the same instant, it gives exactly what
# Spark's `transform` gives.

# %%
from datetime import timezone

from palette.online import open_store

online_url = f"sqlite:///{workdir}/online.db"
print(store.materialize(online_store=online_url, spark=spark))
as_of = T0 + timedelta(hours=72)                     # "now" for both paths: after the last event
online = open_store(online_url, clock=lambda: as_of.replace(tzinfo=timezone.utc).timestamp())
scorer = load_scorer(path, online_store=online)
print(f"serving plan: {scorer.round_trips} online round trips per request")
requests = [{"r_id": r_id, "order_size": size} for _, r_id, _, size in orders[:500]] + \
    [{"r_id": "no-such-restaurant", "order_size": 2}]
spark_requests = spark.createDataFrame([(i, r["r_id"], r["order_size"], as_of) for i, r in enumerate(requests)],
                                       "i int, r_id string, order_size int, order_ts timestamp")
expected = {r.i: r.prediction for r in pinned.transform(spark_requests).collect()}
worst = max(abs(scorer.scoreInstance(r)["prediction"] - expected[i]) for i, r in enumerate(requests))
batch = scorer.scoreBatch(requests)
assert all(abs(b["prediction"] - expected[i]) <= 1e-9 * abs(expected[i]) for i, b in enumerate(batch))
print(f"served {len(requests)} requests without Spark: largest difference from Spark {worst:.2e}")
assert worst <= 1e-9 * max(abs(v) for v in expected.values())
print(scorer.scoreInstance({"r_id": "r3", "order_size": 2}))
shutil.rmtree(workdir)
