"""The embedding example: restaurant embeddings learned from the simulated order history,
versioned, read by an ETA variant, compared and compressed.

Restaurants belong to cuisines and differ in a hidden "kitchen complexity" that also slows
their deliveries; customers order from restaurants their tastes and the restaurants'
popularity (Zipf) favour. A restaurant's embedding is learned from which restaurants the
same customers order from — the positive pointwise mutual information of co-orders,
factorized by a truncated SVD (the classic word2vec-as-matrix-factorization recipe) —
so it carries cuisine and, through the customers who like complicated food, some of the
complexity. Version 1 is learned from the first two weeks of orders, version 2 from four:
more data, a different basis (an SVD's axes are arbitrary), partly different neighbours.
An ETA model reads the embedding beside the order size.

Everything is numpy and deterministic for a seed; ``run`` does the whole story on Spark.

>>> sim = simulate(restaurants=300, customers=800, seed=3)
>>> sim.versions[1].shape[1], len(sim.keys[1]) <= 300, sim.orders["r_id"][:2]
(16, True, ['r213', 'r213'])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

START = datetime(2024, 5, 6)
CUISINES = 6
DIM = 16


@dataclass
class Simulation:
    keys: dict[int, np.ndarray]                 # version -> restaurant ids it holds
    versions: dict[int, np.ndarray]             # version -> float32 matrix (rows as keys)
    counts: dict[int, np.ndarray]               # version -> orders per restaurant in its window
    learned_at: dict[int, datetime]
    orders: dict[str, list] = field(default_factory=dict)        # training and held-out orders
    complexity: np.ndarray | None = None


def _embedding(baskets: np.ndarray, dim: int) -> np.ndarray:
    """Restaurant vectors from a customers × restaurants count matrix: PPMI of co-orders, SVD."""
    co = baskets.T @ baskets
    np.fill_diagonal(co, 0)
    total = co.sum()
    row = co.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(co * total / (row @ row.T))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, s, _ = np.linalg.svd(ppmi, hermitian=True)
    return (u[:, :dim] * np.sqrt(s[:dim])).astype(np.float32)


def simulate(restaurants: int = 2000, customers: int = 5000, dim: int = DIM, orders: int = 4000,
             seed: int = 7) -> Simulation:
    """Two versions of the embedding (two and four weeks of history) and ``orders`` orders
    placed after the first (weeks 3 and 4 to train on, week 5 held out)."""
    rng = np.random.default_rng(seed)
    cuisine = rng.integers(0, CUISINES, restaurants)
    complexity = rng.normal(size=CUISINES)[cuisine] + 0.5 * rng.normal(size=restaurants)
    popularity = 1.0 / np.arange(1, restaurants + 1) ** 1.1
    popularity = popularity[rng.permutation(restaurants)]
    taste = rng.dirichlet(np.full(CUISINES, 0.3), customers)
    adventurous = rng.normal(size=customers)                          # likes complicated kitchens
    affinity = taste[:, cuisine] * np.exp(0.7 * np.outer(adventurous, complexity)) * popularity
    affinity /= affinity.sum(axis=1, keepdims=True)
    weekly = [rng.poisson(3.0 * affinity) for _ in range(4)]           # customers × restaurants, per week
    keys, versions, counts, learned = {}, {}, {}, {}
    for version, weeks in ((1, 2), (2, 4)):
        baskets = np.sum(weekly[:weeks], axis=0).astype(np.float64)
        ordered = baskets.sum(axis=0)
        held = np.flatnonzero(ordered >= 2)                           # enough history to embed
        keys[version] = np.array([f"r{i}" for i in held])
        versions[version] = _embedding(baskets[:, held], dim)
        counts[version] = ordered[held]
        learned[version] = START + timedelta(weeks=weeks)
    n = orders
    r = rng.choice(restaurants, n, p=popularity / popularity.sum())
    at = START + timedelta(weeks=2)
    seconds = np.sort(rng.uniform(0, 3 * 7 * 86400, n))
    size = rng.integers(1, 6, n).astype(float)
    minutes = 22 + 2.0 * size + 4.0 * complexity[r] + rng.normal(0, 2.0, n)
    times = [at + timedelta(seconds=float(s)) for s in seconds]
    held_out = seconds >= 2 * 7 * 86400
    return Simulation(keys, versions, counts, learned, {
        "order_id": [f"o{i}" for i in range(n)], "r_id": [f"r{i}" for i in r], "order_ts": times,
        "order_size": size.tolist(), "delivery_minutes": minutes.tolist(), "held_out": held_out.tolist()},
        complexity)


def group(version: int, dim: int = DIM, unk=None):
    """A version of ``restaurant:dish_emb``; ``unk``: what a restaurant it does not hold reads
    (here the mean vector: a new or rarely ordered-from restaurant looks average)."""
    from palette.registry import FeatureGroup
    return FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({dim})", "n_orders": "num"}, kind="embedding",
                        version=version, description="restaurants embedded by co-orders (PPMI + SVD)",
                        unk={} if unk is None else {"emb": [float(x) for x in unk]})


def ingest_version(spark, store, sim: Simulation, version: int) -> None:
    """Register ``version`` of ``restaurant:dish_emb`` and ingest its vectors."""
    import pyarrow as pa
    from palette.registry import Entity
    M = sim.versions[version]
    store.register(Entity("restaurant", {"r_id": "str"}), group(version, M.shape[1], M.mean(axis=0)))
    table = pa.table({"r_id": sim.keys[version].tolist(),
                      "event_ts": pa.array([sim.learned_at[version]] * len(M), pa.timestamp("us")),
                      "emb": pa.ListArray.from_arrays(pa.array(np.arange(0, M.size + 1, M.shape[1], dtype=np.int32)),
                                                      pa.array(M.reshape(-1))),
                      "n_orders": sim.counts[version].astype(float)})
    store.ingest(spark.createDataFrame(table), "restaurant:dish_emb")


def orders_frame(spark, sim: Simulation, held_out: bool | None = None):
    import pyarrow as pa
    table = pa.table({k: v for k, v in sim.orders.items()})
    df = spark.createDataFrame(table)
    return df if held_out is None else df.where(df.held_out == held_out)


def pipeline(store_root: str):
    """The ETA variant: the restaurant's embedding (point in time) and the order size."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression

    from palette import PaletteTransformer
    return Pipeline(stages=[
        PaletteTransformer({"emb": "@palette:restaurant:dish_emb:emb:r_id"}, timestampCol="order_ts",
                           storeRoot=store_root),
        VectorAssembler(inputCols=["emb", "order_size"], outputCol="features", handleInvalid="keep"),
        LinearRegression(featuresCol="features", labelCol="delivery_minutes", regParam=0.01)])


def run(workdir: str, restaurants: int = 2000, customers: int = 5000, orders: int = 4000, seed: int = 7) -> dict:
    """The whole story in ``workdir``: version 1 ingested, materialized, an ETA model fitted on
    it; version 2 learned and compared against it (stability and the model's change);
    version 1 compressed with a sweep of settings measured on the model. Returns the
    reports and paths."""
    import os

    from palette.embeddings import compare, compress
    from palette.spark import active_session
    from palette.store import FeatureStore
    spark = active_session()
    sim = simulate(restaurants, customers, orders=orders, seed=seed)
    store = FeatureStore(os.path.join(workdir, "store"))
    online = f"sqlite:///{os.path.abspath(os.path.join(workdir, 'online.db'))}"
    ingest_version(spark, store, sim, 1)
    train = orders_frame(spark, sim, held_out=False)
    model_dir = os.path.join(workdir, "eta_emb_v1")
    pipeline(store.root).fit(train).write().overwrite().save(model_dir)
    store.record_model(model_dir)
    store.materialize(online_store=online, spark=spark)
    held = orders_frame(spark, sim, held_out=True).drop("held_out").toArrow().to_pylist()
    ingest_version(spark, store, sim, 2)
    stability = compare(spark, store, "restaurant:dish_emb", 1, 2, requests=held, online_store=online,
                        label="delivery_minutes")
    n = len(sim.keys[1])
    sweep = [(k, q) for k in (n, n // 4, n // 16) for q in ("float32", "float16", "int8")][1:]
    compression = compress(spark, store, "restaurant:dish_emb@v1", n // 4, by="n_orders", quantize="int8",
                           sweep=sweep, model=model_dir, requests=held, online_store=online,
                           label="delivery_minutes")
    return {"sim": sim, "store": store, "online": online, "model": model_dir, "held_out": held,
            "stability": stability, "compression": compression}


__all__ = ["simulate", "run", "pipeline", "ingest_version", "orders_frame", "group", "Simulation"]
