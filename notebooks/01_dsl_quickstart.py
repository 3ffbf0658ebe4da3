# %% [markdown]
# # palette DSL quick start
#
# A feature pipeline written in the palette DSL runs two ways with the same results:
# `transform()` on a Spark DataFrame, and `scoreInstance()` on one dict with no JVM.
# This notebook (jupytext percent format; `make demo` runs it as a script) builds a
# small pipeline, fits it, saves it with ordinary Spark ML persistence, and scores the
# saved artifact without Spark.

# %%
import os
import shutil
import tempfile

from pyspark.ml import Pipeline, PipelineModel

from palette import DSLEstimator, DSLTransformer, if_, impute, nFill, nVal, regionId, standardize
from palette.spark import session
from palette.transformers import load_scorer

spark = session(app_name="palette-demo")
spark.sparkContext.setLogLevel("ERROR")

# %% [markdown]
# Training rows: a restaurant's location, its (sometimes missing) prep time, and the
# request's order size.

# %%
orders = spark.createDataFrame(
    [("r1", 37.7749, -122.4194, 12.0, 3, 31.0), ("r2", 37.8044, -122.2712, None, 1, 22.0),
     ("r3", 40.7128, -74.0060, 20.0, 5, 45.0), ("r4", 51.5074, -0.1278, 8.0, 2, 18.0),
     ("r5", None, None, 15.0, 4, 35.0), ("r6", 48.8566, 2.3522, float("nan"), 2, 25.0)],
    "r_id string, lat double, lng double, prep_time double, order_size int, eta double")

# %% [markdown]
# Stage 1 computes a region id (a geohash cell) from the coordinates. Stage 2 reads it
# and learns an imputation and a standardization from the training data.

# %%
region = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("lng"), 5)})
features = DSLEstimator(lambdas={
    "prep_time_f": impute(nVal("prep_time"), "median"),
    "order_size_z": standardize(nVal("basis:order_size")),
    "big_order": if_(nFill(nVal("basis:order_size"), 0) >= 4, 1, 0),
})
model = Pipeline(stages=[region, features]).fit(orders)
print("learned:", model.stages[1].getLambdas())

# %%
scored = model.transform(orders)
scored.select("r_id", "region_id", "prep_time_f", "order_size_z", "big_order").show()

# %% [markdown]
# Save with Spark ML's own persistence; load the very same directory without Spark.

# %%
path = os.path.join(tempfile.mkdtemp(prefix="palette-demo-"), "eta_features")
model.write().overwrite().save(path)
assert [type(s).__name__ for s in PipelineModel.load(path).stages] == ["DSLTransformer", "DSLModel"]

scorer = load_scorer(path)       # json + the DSL grammar; no pyspark, no JVM
request = {"r_id": "r9", "lat": 37.7749, "lng": -122.4194, "prep_time": None, "order_size": 4}
print("scoreInstance:", scorer.scoreInstance(request))

# %% [markdown]
# Parity: every training row scored both ways gives the same values.

# %%
mismatches = 0
for spark_row in scored.collect():
    row = spark_row.asDict()
    single = scorer.scoreInstance({k: row[k] for k in orders.columns})
    for col in ("region_id", "prep_time_f", "order_size_z", "big_order"):
        if single[col] != row[col]:
            mismatches += 1
            print("MISMATCH", col, single[col], row[col])
print(f"parity: {scored.count()} rows, {mismatches} mismatches")
assert mismatches == 0
shutil.rmtree(os.path.dirname(path))
