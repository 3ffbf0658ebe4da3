"""The Uber Eats ETA example of the VLDB 2021 tutorial, as data and pipelines to run.

Restaurants with a location, a kitchen load (``n_meal``) and a daily mean preparation
time; regions (geohash cells, precision 5) with a count of busy couriers (``n_busy``).
Every value has an event time before ``as_of``; ages stay clear (by 30 minutes) of their
group's max age, so which values count at ``as_of`` does not depend on seconds. Some
keys only have values past max age, some have none, some values are null.

>>> from palette.examples import eta                                   # doctest: +SKIP
>>> store = FeatureStore("/tmp/eta"); eta.declare(store)                # doctest: +SKIP
>>> eta.generate(spark, store, restaurants=1000, as_of=datetime.utcnow())  # doctest: +SKIP
>>> Pipeline(stages=eta.stages(store.root) + [...]).fit(orders)         # doctest: +SKIP
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from palette import (DSLEstimator, DSLTransformer, Entity, FeatureGroup, PaletteTransformer, nFill, nVal,
                     regionId)
from palette.errors import InvalidArgument

MAX_AGE = {"realtime_fg": timedelta(hours=2), "batch_fg": timedelta(days=7), "service_fg": timedelta(hours=1)}
FEATURES = ["prep_time_f", "n_meal_f", "order_size_f", "n_busy_f"]
_MARGIN = timedelta(minutes=30)


def declare(store) -> None:
    """Register the example's entities and feature groups."""
    store.register(
        Entity("restaurant", {"r_id": "str"}, description="a restaurant on the platform"),
        Entity("region", {"region_id": "str"}, description="a geohash cell (precision 5)"),
        FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num", "lat": "num", "long": "num"},
                     kind="realtime", max_age="2h", description="kitchen load and location, streamed"),
        FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}, max_age="7d",
                     description="daily mean preparation time"),
        FeatureGroup("region", "service_fg", {"n_busy": "num"}, kind="realtime", max_age="1h",
                     description="couriers busy in the region"))


def _age(rng: random.Random, group: str, expired: bool = False) -> timedelta:
    limit = MAX_AGE[group]
    return limit + _MARGIN + limit * rng.random() if expired else (limit - _MARGIN) * rng.random()


def restaurant_rows(restaurants: int, as_of: datetime, seed: int = 11) -> tuple[list, list]:
    """(realtime_fg rows, batch_fg rows). Restaurant ``r{i}``: no realtime row when i % 10
    == 9, only rows past max age when i % 10 == 8; no prep time when i % 7 == 6, only old
    ones when i % 7 == 5; about 10% of n_meal and 15% of prep_time values null."""
    rng = random.Random(seed)
    realtime, batch = [], []
    for i in range(restaurants):
        r_id = f"r{i}"
        lat, lng = 37.6 + rng.random() * 0.4, -122.6 + rng.random() * 0.4
        if i % 10 != 9:
            expired = i % 10 == 8
            for j in range(rng.randint(1, 4)):
                n_meal = None if rng.random() < 0.1 else float(rng.randint(0, 30))
                realtime.append((r_id, as_of - _age(rng, "realtime_fg", expired) - timedelta(seconds=j),
                                 n_meal, lat, lng))
        if i % 7 != 6:
            for j in range(rng.randint(1, 3)):
                prep = None if rng.random() < 0.15 else 5 + rng.random() * 25
                batch.append((r_id, as_of - _age(rng, "batch_fg", i % 7 == 5) - timedelta(hours=j), prep))
    return realtime, batch


def generate(spark, store, restaurants: int, as_of: datetime, seed: int = 11) -> dict:
    """Ingest the example's feature histories (naive UTC ``as_of``); returns the row counts."""
    realtime, batch = restaurant_rows(restaurants, as_of, seed)
    rng = random.Random(seed + 1)
    region = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("long"), 5)})
    locations = spark.createDataFrame([(r[3], r[4]) for r in realtime], "lat double, long double")
    cells = sorted(r.region_id for r in region.transform(locations).select("region_id").distinct().collect())
    busy = []
    for k, cell in enumerate(cells):
        if k % 6 == 5:
            continue                                 # some regions have no busyness data
        for j in range(rng.randint(1, 3)):
            busy.append((cell, as_of - _age(rng, "service_fg", k % 6 == 4) - timedelta(minutes=j),
                         float(rng.randint(0, 12))))
    store.ingest(spark.createDataFrame(realtime, "r_id string, event_ts timestamp, n_meal double, lat double, "
                                                 "long double"), "restaurant:realtime_fg")
    store.ingest(spark.createDataFrame(batch, "r_id string, event_ts timestamp, prep_time double"),
                 "restaurant:batch_fg")
    store.ingest(spark.createDataFrame(busy, "region_id string, event_ts timestamp, n_busy double"),
                 "region:service_fg")
    return {"realtime_fg": len(realtime), "batch_fg": len(batch), "service_fg": len(busy)}


def requests(restaurants: int, n: int, seed: int = 5, unknown: float = 0.05, null: float = 0.02) -> list[tuple]:
    """(order_id, r_id, order_size) of ``n`` orders: some of unknown restaurants, some
    without one."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pick = rng.random()
        r_id = None if pick < null else (f"unknown{i}" if pick < null + unknown else f"r{rng.randrange(restaurants)}")
        out.append((i, r_id, rng.randint(1, 6)))
    return out


def stages(store_root: str, spelling: str = "palette_transformer", timestamp_col: str | None = "order_ts") -> list:
    """The tutorial's feature stages. ``palette_transformer``: lookups by PaletteTransformer,
    then the DSL; ``dsl_only``: the DSL stages alone, looking up what they read. Both end
    with the columns ``FEATURES``."""
    lookup = {"timestampCol": timestamp_col, "storeRoot": store_root}
    region = regionId(nVal("restaurant:realtime_fg:lat:r_id"), nVal("restaurant:realtime_fg:long:r_id"), 5)
    impute = {"prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
              "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
              "order_size_f": nVal("basis:order_size"),
              "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1)}
    if spelling == "palette_transformer":
        return [
            PaletteTransformer({"n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
                                "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
                                "lat": "@palette:restaurant:realtime_fg:lat:r_id",
                                "long": "@palette:restaurant:realtime_fg:long:r_id"}, **lookup),
            DSLEstimator(lambdas={"region_id": region}, **lookup),
            PaletteTransformer({"n_busy": "@palette:region:service_fg:n_busy:region_id"}, **lookup),
            DSLEstimator(lambdas=impute, **lookup)]
    if spelling == "dsl_only":
        return [
            DSLEstimator(lambdas={"region_id": region, "lat": nVal("restaurant:realtime_fg:lat:r_id"),
                                  "long": nVal("restaurant:realtime_fg:long:r_id"),
                                  "n_meal": nVal("restaurant:realtime_fg:n_meal:r_id"),
                                  "prep_time": nVal("restaurant:batch_fg:prep_time:r_id")}, **lookup),
            DSLEstimator(lambdas={"n_busy": nVal("region:service_fg:n_busy:region_id"), **impute}, **lookup)]
    raise InvalidArgument(f"unknown spelling {spelling!r}: use 'palette_transformer' or 'dsl_only'")


def pipeline(store_root: str | None = None, label: str = "delivery_minutes", max_iter: int = 50, max_depth: int = 5,
             seed: int = 1):
    """The tutorial's whole pipeline, unfitted: the feature stages, a VectorAssembler and a
    GBTRegressor of ``label`` (the simulation's ``delivery_minutes``). What ``palette job
    train --pipeline palette.examples.eta:pipeline`` fits."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor
    return Pipeline(stages=stages(store_root) + [
        VectorAssembler(inputCols=FEATURES, outputCol="features"),
        GBTRegressor(labelCol=label, maxIter=max_iter, maxDepth=max_depth, seed=seed)])


from palette.examples.eta_data import Simulation, ingest, simulate  # noqa: E402  (the data, beside the pipeline)

__all__ = ["declare", "generate", "restaurant_rows", "requests", "stages", "pipeline", "simulate", "ingest",
           "Simulation", "FEATURES", "MAX_AGE"]
