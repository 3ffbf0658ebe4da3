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
# realistic data, declare the features — a batch group and three **stream** groups computed
# from order and location events — load their histories into Delta, build the tutorial's
# pipeline (feature-store lookups, a region id computed in the DSL, a second
# lookup keyed by it, imputation, a GBT), fit it on **point-in-time** features, evaluate it
# against a baseline with plots, log it to MLflow, materialize the latest values into the
# online store, score one order without Spark, stream new events and see them served seconds
# later, score through the HTTP service, and prove with the parity harness that serving
# gives what Spark gives.
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
from datetime import datetime, timedelta, timezone

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
# (at 03:00, for the day before) and stream their location; every order is also an **event**
# of the order stream, from which two windowed counts are computed as events arrive: meals
# ordered from the restaurant in the last 30 minutes (`n_meal`, its kitchen's load) and
# orders in its geohash region in the last 15 minutes (`n_busy`, how busy the couriers are).
# The delivery time depends on the state of the world *when the order was placed* — the
# values a point-in-time lookup finds — plus noise. The data ends now, so the online store
# will serve fresh values.

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
# ## 3. Load the histories into Delta
#
# The batch source is validated and MERGEd into its table. The events go to their Delta
# event tables (`store/events`), and the streaming job processes them once and stops
# (`availableNow`): the windowed counts at every minute where they change, and each
# restaurant's locations, into the stream groups' tables. Its checkpoint remembers where it
# got to, so the live stream of section 9 goes on from there. A rerun commits nothing.

# %%
checkpoints = f"{workdir}/checkpoints"
ingested = eta.ingest(spark, store, sim, checkpoint=checkpoints)
pd.DataFrame(ingested).T[["version", "source_rows"]]

# %%
rerun = eta.ingest(spark, store, sim, checkpoint=checkpoints)
assert all(rerun[g]["version"] == ingested[g]["version"] for g in ingested)
print("rerun: no table changed")

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
                                 "lat": "@palette:restaurant:location_fg:lat:r_id",
                                 "long": "@palette:restaurant:location_fg:long:r_id"}, **lookup)
region = DSLEstimator(lambdas={"region_id": regionId(nVal("restaurant:location_fg:lat:r_id"),
                                                     nVal("restaurant:location_fg:long:r_id"), 5)}, **lookup)
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
# Point in time, checked by hand from the raw events: for some orders, `n_meal` must be the
# number of the restaurant's order events in the 30 minutes before the order's time rounded
# down to the minute (`[b − 30 min, b)`) — never one after it — and null only for a
# restaurant that had no order before `b`.

# %%
looked_up = {r.order_id: r.n_meal for r in restaurant.transform(test.limit(200)).collect()}
events = pd.read_parquet(sim.paths["order_events"])
for r in test.limit(200).collect():
    b = pd.Timestamp(r.order_ts, tz="UTC").floor("min")
    mine = events[(events.r_id == r.r_id) & (events.order_ts < b)]
    expected = None if mine.empty else float((mine.order_ts >= b - pd.Timedelta(minutes=30)).sum())
    assert looked_up[r.order_id] == expected, (r.order_id, looked_up[r.order_id], expected)
print("point in time: 200 orders checked against the events by hand")

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
# the request fields it needs, as its signature, and (`reference_data`) the training set's
# profile with the model's feature importances: what monitoring compares served traffic with.

# %%
from palette.mlflow import log_model, read_lineage

with mlflow.start_run(run_name="eta-notebook") as run:
    mlflow.log_params({"orders": ORDERS, "split_at": split.isoformat(), "maxIter": TREES, "maxDepth": 5})
    mlflow.log_metrics(metrics)
    mlflow.log_figure(fig, "evaluation.png")
    info = log_model(model, "model", registered_model_name="eta", training_window=(sim.start, split),
                     input_schema=orders.schema, spark=spark, reference_data=train)
mlflow.MlflowClient().set_registered_model_alias("eta", "champion", info.registered_model_version)
lineage = read_lineage("models:/eta@champion")
print(f"run {run.info.run_id}: registered models:/eta/{info.registered_model_version} (alias champion)")
print(json.dumps({k: lineage[k] for k in ("feature_tables", "training_window", "request_fields")}, indent=1))
print("features of models:/eta@champion:", [f.id for f in store.search(model="models:/eta@champion")])

# %% [markdown]
# ## 8. Materialize, then score one order without Spark
#
# `materialize` copies the latest value of every key from Delta into the online store (for a
# windowed group, each key's values from its last window on, each with the minute it takes
# effect).
# `load_scorer` reads the registered model — no pyspark, no JVM — and scores a request with
# two online round trips (the restaurant's features; then the region's, keyed by the region
# id the DSL computes).

# %%
from palette.transformers import load_scorer

online = f"sqlite:///{workdir}/online.db"
materialized = store.materialize(online_store=online, spark=spark)
print({g: r["rows"] for g, r in materialized.items()})
scorer = load_scorer("models:/eta@champion", online_store=online)
latest = orders.orderBy(F.desc("order_ts")).first()            # a restaurant with recent orders
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
# ## 9. Stream: new events served seconds later
#
# The streaming jobs start on the event tables from their checkpoints (one per stream group,
# a micro-batch a second): each batch goes to the group's Delta table and, from the
# executors, to the online store. A burst of orders at our restaurant and a location event
# are published now; we wait until the online store serves them and score the order again.
# A windowed count changes at minute boundaries, so the burst is placed in the seconds before
# the current one.

# %%
from palette.examples.demo import stream_live

with eta.streams(spark, store, checkpoints, online):   # stopped between micro-batches: Delta and online agree
    live = stream_live(spark, store, scorer, online, order)
print(f"{live['burst']} orders and a location event published: readable online after {live['readable_s']:.1f} s; "
      f"the order's ETA went from {live['before']:.1f} to {live['after']:.1f} min")
pd.DataFrame([{"feature": name, "value": value, "age (s)": round(age, 1)}
              for name, (value, age) in live["ages"].items()])

# %% [markdown]
# ## 10. Through the HTTP service
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
# ## 11. Parity: prove the two paths agree
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

# %% [markdown]
# ## 12. Monitor: profiles, drift, importance-weighted drift
#
# The feature groups' tables are profiled by day (a few KB of mergeable sketches per feature
# and window, in `palette_profiles`). Then the service runs with `--log-dir`, which also
# profiles what the model is fed per window (5 s here): first 400 orders sampled from the
# history, then a busy hour in one region — 100 orders, each three items bigger than usual.
# The served traffic is compared with the model's training profile (every feature tested
# under one false discovery rate, weighted by the model's feature importances), and the busy
# hour's window with the traffic served before it.

# %%
from palette.examples.demo import PROFILE_WINDOW, busy_hour, serve
from palette.monitor.model_report import model_report
from palette.monitor.offline import profile_groups

for run_ in profile_groups(spark, store, sorted(store.registry.groups()), window="1d"):
    print(run_)
sampled = [{"r_id": r.r_id, "order_size": r.order_size} for r in orders.orderBy(F.rand(7)).limit(400).collect()]
busy = busy_hour(scorer, sampled)
_, (_, busy_at) = serve("models:/eta@champion", online, workdir, [sampled, busy["instances"]])
skew = model_report("eta", f"{workdir}/logs/raw", last=timedelta(hours=1))
print(skew.headline())
busy_end = datetime.fromtimestamp(busy_at - busy_at % PROFILE_WINDOW + PROFILE_WINDOW, timezone.utc)
drift = model_report("eta", f"{workdir}/logs/raw", now=busy_end, last=timedelta(seconds=PROFILE_WINDOW),
                     reference="trailing:1h")
print(drift)
drift.write_html(f"{workdir}/monitoring.html")
display(HTML(open(f"{workdir}/monitoring.html").read()))
assert {"order_size", "order_size_f"} <= {t.feature for t in drift.alerts}

# %%
print(f"""
orders            {ORDERS:,} ({ingested['restaurant:batch_fg']['source_rows']:,} batch rows, \
{ingested['restaurant:realtime_fg']['source_rows'] + ingested['restaurant:location_fg']['source_rows']:,} events)
streamed          readable online {live['readable_s']:.1f} s after publishing
model             models:/eta/{info.registered_model_version}: RMSE {metrics['rmse']:.2f} min vs baseline \
{metrics['baseline_rmse']:.2f}
one order         {scorer.scoreInstance(order)['prediction']:.1f} min, p50 {timings[500] * 1e6:.0f} µs without Spark
parity            {'PASS' if report.ok else 'FAIL'} on {report.rows:,} requests
MLflow            {mlflow.get_tracking_uri()} (run {run.info.run_id})
parity report     {workdir}/parity.html
monitoring        {len(drift.alerts)} drift alerts; importance-weighted drift {drift.latest_iwd:.3f}: \
{workdir}/monitoring.html
""")
