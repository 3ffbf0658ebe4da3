# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Uber Eats ETA, end to end
#
# The VLDB 2021 tutorial's example, as a data scientist runs it with palette: generate
# realistic data, declare the features, ingest their histories into Delta, build the
# tutorial's pipeline (feature-store lookups, a region id computed in the DSL, a second
# lookup keyed by it, imputation, a GBT), fit it on **point-in-time** features, evaluate it
# against a baseline with plots, log it to MLflow, materialize the latest values into the
# online store, score one order without Spark and through the HTTP service, and prove with
# the parity harness that serving gives what Spark gives.
#
# Everything runs on embedded defaults: local Spark, Delta tables on local disk, SQLite as
# the online store, MLflow's SQLite tracking store. `PALETTE_EXAMPLE_ORDERS` sizes the
# data (20,000 orders here; the test suite runs it with 2,000 and fewer trees).

# %%
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from pyspark.sql import functions as F

from palette import FeatureStore
from palette.examples import eta
from palette.spark import session

ORDERS = int(os.environ.get("PALETTE_EXAMPLE_ORDERS", "20000"))
TREES = int(os.environ.get("PALETTE_EXAMPLE_TREES", "50"))
workdir = os.environ.get("PALETTE_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="palette-eta-")
spark = session(app_name="palette-eta-notebook")
spark.sparkContext.setLogLevel("ERROR")
mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
os.environ["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()       # for the processes started below
if mlflow.get_experiment_by_name("eta") is None:
    mlflow.create_experiment("eta", artifact_location=f"file://{workdir}/mlartifacts")
mlflow.set_experiment("eta")
print(f"working in {workdir}")

# %% [markdown]
# ## 1. Data
#
# Four weeks of orders in three cities. Restaurants publish a daily mean preparation time
# (at 03:00, for the day before); kitchens stream how many meals are in progress; the
# courier service counts busy couriers per geohash region every 15 minutes. The delivery
# time depends on the state of the world *when the order was placed* — the values a
# point-in-time lookup finds — plus noise. The data ends now, so the online store will
# serve fresh values.

# %%
now = datetime.utcnow().replace(second=0, microsecond=0)
sim = eta.simulate(f"{workdir}/sources", orders=ORDERS, seed=7, days=28, start=now - timedelta(days=28))
print(json.dumps(sim.counts))
orders = spark.read.parquet(sim.paths["orders"])
orders.orderBy("order_ts").limit(5).toPandas()

# %% [markdown]
# ## 2. Declare the features; search the registry

# %%
store = FeatureStore(f"{workdir}/store")
eta.declare(store)
pd.DataFrame([{"feature": f.id, "type": f.type, "kind": f.kind, "max_age": f.max_age, "description": f.description}
              for f in store.search()])

# %% [markdown]
# ## 3. Ingest the histories into Delta
#
# Validated and MERGEd: a rerun of the same ingest commits nothing.

# %%
ingested = eta.ingest(spark, store, sim)
pd.DataFrame(ingested).T[["version", "source_rows", "inserted", "updated"]]

# %%
rerun = eta.ingest(spark, store, sim)
assert all(r["inserted"] == r["updated"] == 0 for r in rerun.values())
print("rerun: nothing inserted, nothing updated")

# %% [markdown]
# ## 4. The tutorial's pipeline
#
# Lookups by restaurant id, a region id computed from the looked-up coordinates, a lookup
# keyed by that computed region id, imputation in the DSL, then Spark's VectorAssembler and
# GBTRegressor. Every lookup is as of each order's `order_ts`.

# %%
from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor

from palette import DSLEstimator, PaletteTransformer, nFill, nVal, regionId

lookup = {"timestampCol": "order_ts", "storeRoot": store.root}
restaurant = PaletteTransformer({"n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
                                 "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
                                 "lat": "@palette:restaurant:realtime_fg:lat:r_id",
                                 "long": "@palette:restaurant:realtime_fg:long:r_id"}, **lookup)
region = DSLEstimator(lambdas={"region_id": regionId(nVal("restaurant:realtime_fg:lat:r_id"),
                                                     nVal("restaurant:realtime_fg:long:r_id"), 5)}, **lookup)
busy = PaletteTransformer({"n_busy": "@palette:region:service_fg:n_busy:region_id"}, **lookup)
impute = DSLEstimator(lambdas={"prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
                               "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
                               "order_size_f": nVal("basis:order_size"),
                               "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1)}, **lookup)
features = ["prep_time_f", "n_meal_f", "order_size_f", "n_busy_f"]
pipeline = Pipeline(stages=[restaurant, region, busy, impute,
                            VectorAssembler(inputCols=features, outputCol="features"),
                            GBTRegressor(labelCol="delivery_minutes", maxIter=TREES, maxDepth=5, seed=1)])
for stage in (restaurant, busy):
    stage.pinVersions(spark)          # fit reads these Delta versions; they are saved and logged with the model

# %% [markdown]
# ## 5. Fit on point-in-time features, split by time
#
# The last week evaluates; the model — and every statistic it learns — sees only the
# three weeks before it.

# %%
split = sim.split_time(0.25)
train = orders.where(F.col("order_ts") < F.lit(split)).cache()
test = orders.where(F.col("order_ts") >= F.lit(split)).cache()
started = time.perf_counter()
model = pipeline.fit(train)
print(f"fitted on {train.count():,} orders before {split:%Y-%m-%d %H:%M} in {time.perf_counter() - started:.1f} s; "
      f"{test.count():,} orders after it evaluate")
model.transform(test).select("order_id", "r_id", "order_ts", *features, "delivery_minutes", "prediction") \
    .limit(5).toPandas()

# %% [markdown]
# Point in time, checked by hand: for some orders, the kitchen-load rows at or before the
# order's time (within the group's 2-hour max age) are read straight from the Delta table;
# the lookup must have picked the latest of them — never a later one.

# %%
looked_up = {r.order_id: r.n_meal for r in restaurant.transform(test.limit(200)).collect()}
table = store.read("restaurant:realtime_fg", spark).toPandas()
for r in test.limit(200).collect():
    past = table[(table.r_id == r.r_id) & (table.event_ts <= pd.Timestamp(r.order_ts))
                 & (table.event_ts >= pd.Timestamp(r.order_ts - timedelta(hours=2)))]
    expected = None if past.empty else past.sort_values("event_ts").n_meal.iloc[-1]
    assert (looked_up[r.order_id] is None and (expected is None or pd.isna(expected))) \
        or looked_up[r.order_id] == expected, r.order_id
print("point in time: 200 orders checked against the Delta table by hand")

# %% [markdown]
# ## 6. Evaluate against a baseline, with plots

# %%
from palette.jobs.train import evaluate

metrics = evaluate(model, train, test, "delivery_minutes")
print(f"RMSE {metrics['rmse']:.2f} min against {metrics['baseline_rmse']:.2f} for the training mean "
      f"(skill {metrics['skill']:.0%}); MAE {metrics['mae']:.2f}; R² {metrics['r2']:.2f}")
assert metrics["rmse"] < 0.8 * metrics["baseline_rmse"]

scored = model.transform(test).select("delivery_minutes", "prediction", F.hour("order_ts").alias("hour")).toPandas()
scored["residual"] = scored.delivery_minutes - scored.prediction
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
axes[0].scatter(scored.delivery_minutes, scored.prediction, s=4, alpha=0.4)
lo, hi = scored.delivery_minutes.min(), scored.delivery_minutes.max()
axes[0].plot([lo, hi], [lo, hi], color="black", linewidth=1)
axes[0].set(title="predicted vs actual", xlabel="actual minutes", ylabel="predicted minutes")
by_hour = scored.groupby("hour").residual.agg(["mean", "std"])
axes[1].bar(by_hour.index, by_hour["mean"], yerr=by_hour["std"], alpha=0.7)
axes[1].set(title="residual by hour of day (mean ± sd)", xlabel="hour (UTC)", ylabel="actual − predicted")
importances = model.stages[-1].featureImportances.toArray()
axes[2].barh(features, importances)
axes[2].set(title="GBT feature importances")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Log to MLflow
#
# One model, two flavors over one saved directory: Spark's (`mlflow.spark.load_model`) and a
# `python_function` loaded by palette's JVM-free runtime. With it go its lineage — the refs it
# reads, the Delta version of every feature table it was trained on, the training window —
# and the request fields it needs, as its signature.

# %%
from palette.mlflow import log_model, read_lineage

with mlflow.start_run(run_name="eta-notebook") as run:
    mlflow.log_params({"orders": ORDERS, "split_at": split.isoformat(), "maxIter": TREES, "maxDepth": 5})
    mlflow.log_metrics(metrics)
    mlflow.log_figure(fig, "evaluation.png")
    info = log_model(model, "model", registered_model_name="eta", training_window=(sim.start, split),
                     input_schema=orders.schema, spark=spark)
mlflow.MlflowClient().set_registered_model_alias("eta", "champion", info.registered_model_version)
lineage = read_lineage("models:/eta@champion")
print(f"run {run.info.run_id}: registered models:/eta/{info.registered_model_version} (alias champion)")
print(json.dumps({k: lineage[k] for k in ("feature_tables", "training_window", "request_fields")}, indent=1))
print("features of models:/eta@champion:", [f.id for f in store.search(model="models:/eta@champion")])

# %% [markdown]
# ## 8. Materialize, then score one order without Spark
#
# `materialize` copies the latest value of every key from Delta into the online store.
# `load_scorer` reads the registered model — no pyspark, no JVM — and scores a request with
# two online round trips (the restaurant's features; then the region's, keyed by the region
# id the DSL computes).

# %%
from palette.transformers import load_scorer

online = f"sqlite:///{workdir}/online.db"
materialized = store.materialize(online_store=online, spark=spark)
print({g: r["rows"] for g, r in materialized.items()})
scorer = load_scorer("models:/eta@champion", online_store=online)
latest = orders.orderBy(F.desc("order_ts")).first()            # a restaurant with a fresh kitchen reading
order = {"r_id": latest.r_id, "order_size": 3}
print(scorer.scoreInstance(order))
timings = []
for _ in range(1000):
    t0 = time.perf_counter()
    scorer.scoreInstance(order)
    timings.append(time.perf_counter() - t0)
timings.sort()
print(f"{scorer.round_trips} round trips; p50 {timings[500] * 1e6:.0f} µs, p99 {timings[990] * 1e6:.0f} µs "
      "over 1,000 calls")
pyfunc = mlflow.pyfunc.load_model("models:/eta@champion", model_config={"online_store": online})
print("pyfunc:", pyfunc.predict(pd.DataFrame([order, {"r_id": "r5", "order_size": 1}])))

# %% [markdown]
# ## 9. Through the HTTP service
#
# `palette serve` is a separate process with no JVM; it takes the registry URI as it takes
# a path, and speaks KServe v1 and MLflow's `/invocations`.

# %%
from palette.testing import free_port

port = free_port()
service = subprocess.Popen([sys.executable, "-m", "palette.serve", "--model", "eta=models:/eta@champion",
                            "--online-store", online, "--port", str(port), "--workers", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/eta:predict", method="POST",
                                     data=json.dumps({"instances": [order]}).encode(),
                                     headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    answer = json.loads(urllib.request.urlopen(request, timeout=10).read())
    print(f"HTTP answer in {(time.perf_counter() - t0) * 1e3:.1f} ms:", answer)
finally:
    service.terminate()
    service.wait(30)
assert abs(answer["predictions"][0] - scorer.scoreInstance(order)["prediction"]) < 1e-9

# %% [markdown]
# ## 10. Parity: prove the two paths agree
#
# `check_parity` runs the model both ways on the same requests — Spark's `transform`, stage
# by stage, and the serving path in a separate process that cannot import pyspark — compares
# every column of every stage, and checks the online store against the offline store for
# every key read. The report goes to the training run too.

# %%
from IPython.display import HTML, display

from palette.parity import check_parity

requests = orders.select("r_id", "order_size").limit(2000).withColumn("order_ts", F.lit(now))
report = check_parity("models:/eta@champion", requests, online_store=online)
print(report)
report.write_html(f"{workdir}/parity.html")
report.log_to_mlflow(run.info.run_id)
display(HTML(open(f"{workdir}/parity.html").read()))
assert report.ok

# %%
print(f"""
orders            {ORDERS:,} ({sum(r['source_rows'] for r in ingested.values()):,} feature rows ingested)
model             models:/eta/{info.registered_model_version}: RMSE {metrics['rmse']:.2f} min vs baseline \
{metrics['baseline_rmse']:.2f}
one order         {scorer.scoreInstance(order)['prediction']:.1f} min, p50 {timings[500] * 1e6:.0f} µs without Spark
parity            {'PASS' if report.ok else 'FAIL'} on {report.rows:,} requests
MLflow            {mlflow.get_tracking_uri()} (run {run.info.run_id})
parity report     {workdir}/parity.html
""")
