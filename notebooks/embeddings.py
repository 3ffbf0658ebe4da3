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
# # Embedding features: versions, stability, compression
#
# Restaurant embeddings learned from simulated order history (the positive PMI of
# co-orders, factorized by a truncated SVD), read by an ETA model beside the order size.
# We register version 1, fit the model on it, learn version 2 from twice the history, and
# ask the two questions a team asks before a new embedding reaches its models:
#
# 1. **What moved?** Drift per restaurant after Procrustes alignment, 10-NN overlap, the
#    eigenspace instability measure — and what the new version would do to the model.
# 2. **What can we drop?** Top-k restaurants kept, the rest one UNK vector, quantized:
#    memory against the model's quality, measured.
#
# `PALETTE_EXAMPLE_ORDERS` sizes the orders (4,000 here; the test suite runs 2,000).

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from palette.examples import embeddings as example
from palette.spark import session

ORDERS = int(os.environ.get("PALETTE_EXAMPLE_ORDERS", "4000"))
RESTAURANTS = 2000 if ORDERS >= 4000 else 600
workdir = os.environ.get("PALETTE_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="palette-emb-")
spark = session(app_name="palette-embeddings-notebook")
spark.sparkContext.setLogLevel("ERROR")
print(f"working in {workdir}")

# %% [markdown]
# ## The whole story in one call
#
# `run` registers `restaurant:dish_emb` version 1 (a `vector(16)` feature and an order
# count), ingests it into Delta, fits the ETA model on point-in-time lookups of it,
# materializes it into SQLite, registers version 2 and compares the two, then compresses
# version 1 with a sweep of settings measured on the model.

# %%
story = example.run(workdir, restaurants=RESTAURANTS, customers=int(RESTAURANTS * 2.5), orders=ORDERS)
store = story["store"]
print([g for g in sorted(store.registry.groups()) if g.startswith("restaurant:dish_emb")])

# %% [markdown]
# ## 1. What moved between version 1 and version 2

# %%
stability = story["stability"]
print(stability)

# %% [markdown]
# An SVD's axes are arbitrary, so the raw vectors of two trainings are not comparable;
# after the best rotation (Procrustes) most restaurants still moved, and rarely ordered-from
# ones moved most. The neighbourhoods tell the same story. The model fitted on version 1
# would be badly wrong on version 2: the report shows its RMSE before and after.

# %%
counts = dict(zip(story["sim"].keys[1], story["sim"].counts[1]))
orders_of = np.array([counts[k] for k in stability.keys])
fig, axes = plt.subplots(1, 3, figsize=(16, 4))
axes[0].hist(stability.drift, bins=40)
axes[0].set(title="drift per restaurant (after alignment)", xlabel="1 - cosine", ylabel="restaurants")
axes[1].scatter(orders_of, stability.drift, s=6, alpha=0.5)
axes[1].set(xscale="log", title="rarely ordered-from restaurants move most", xlabel="orders in v1's window",
            ylabel="drift")
top = np.argsort(-stability.eis_per_entity)[:20]
axes[2].barh([str(stability.keys[i]) for i in top][::-1], stability.eis_per_entity[top][::-1])
axes[2].set(title="instability per restaurant (EIS contributions, top 20)", xlabel="share of EIS")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Memory against quality
#
# Each setting keeps the top-k restaurants by orders (the rest read one UNK vector) in
# float32, float16 or int8. The price is measured on the model, JVM-free, on held-out
# orders: the share of predictions that move and its RMSE.

# %%
compression = story["compression"]
print(compression)

# %%
from matplotlib.ticker import FormatStrFormatter, NullFormatter

fig, ax = plt.subplots(figsize=(8, 4.5))
for quant, marker in (("float32", "o"), ("float16", "s"), ("int8", "^")):
    points = [(c.online_bytes / compression.before_online_bytes, c.change.metric_after, c.top_k)
              for c in compression.candidates if c.quantize == quant]
    ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, s=50, label=quant)
    if quant == "int8":
        for x, y, k in points:
            ax.annotate(f"top {k:,}", (x, y), textcoords="offset points", xytext=(-10, 8), fontsize=8)
ax.axhline(compression.candidates[0].change.metric_before, ls="--", c="grey", label="uncompressed")
ax.set_xscale("log")
ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))
ax.xaxis.set_minor_formatter(NullFormatter())
ax.set(xlabel="online bytes (ratio to uncompressed, log scale)", ylabel="RMSE on held-out orders",
       title="memory against quality: top-k restaurants x quantization")
ax.legend()
plt.show()

# %% [markdown]
# Quantization is nearly free; dropping restaurants is what costs, through the ones that
# now read the UNK vector. `compress` wrote the chosen setting as version 3: the model
# fitted on version 1 still reads version 1, a model fitted now reads version 3.

# %%
assert stability.summary.n > 100 and compression.written == "restaurant:dish_emb@v3"
int8_all = next(c for c in compression.candidates if c.top_k == len(story["sim"].keys[1]) and c.quantize == "int8")
print(f"int8, every restaurant: {int8_all.online_bytes / compression.before_online_bytes:.3f} of the bytes, "
      f"{int8_all.change.changed_rate:.2%} of predictions changed")
