"""The Uber Eats ETA example of the VLDB 2021 tutorial, as data and pipelines to run.

Restaurants with a daily mean preparation time (``batch_fg``, a batch group), a location
(``location_fg``: the latest ``lat``/``long`` of the location events, a stream group) and a
kitchen load (``realtime_fg``: ``n_meal``, orders of the last 30 minutes, sliding by a
minute, counted from the order events as they stream); regions (geohash cells, precision
5) with ``n_busy`` (``service_fg``: orders in the region in the last 15 minutes, from the
same stream). The stream groups read Delta tables of events under ``events`` (default:
``<store root>/events``).

With ``kitchen`` (``declare(store, kitchen=...)``, ``stages(..., kitchen=True)``,
``kitchen_pipeline``) the restaurant's live kitchen queue is an RPC feature
(``kitchen_rpc``: ``queue_minutes``, fetched per request from the kitchen service,
``palette.examples.kitchen``) — over HTTP (``kitchen="http://host:port"``) or through its
Python client (``kitchen="python"``); ``simulate(..., kitchen=True)`` makes it part of the
label.

:func:`generate` makes the state of the world around one instant (for tests and serving
benchmarks); :func:`simulate` (``palette.examples.eta_data``) weeks of it with a label.
Ages stay clear (by 30 minutes) of their group's max age, so which values count at
``as_of`` does not depend on seconds. Some keys only have values past max age, some have
none.

>>> from palette.examples import eta                                   # doctest: +SKIP
>>> store = FeatureStore("/tmp/eta"); eta.declare(store)                # doctest: +SKIP
>>> eta.generate(spark, store, restaurants=1000, as_of=datetime.utcnow())  # doctest: +SKIP
>>> Pipeline(stages=eta.stages(store.root) + [...]).fit(orders)         # doctest: +SKIP
"""
from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone

from palette import (Aggregation, DSLEstimator, DSLTransformer, Entity, FeatureGroup, Fetcher, PaletteTransformer,
                     StreamSource, nFill, nVal, regionId)
from palette.dsl import geohash
from palette.errors import InvalidArgument
from palette.examples.eta_data import BUSY_WINDOW_S, HOP_S, MEAL_WINDOW_S

MAX_AGE = {"location_fg": timedelta(days=3), "batch_fg": timedelta(days=7)}
FEATURES = ["prep_time_f", "n_meal_f", "order_size_f", "n_busy_f"]
KITCHEN_FEATURES = [*FEATURES, "queue_f"]
QUEUE_REF = "@palette:restaurant:kitchen_rpc:queue_minutes:r_id"
ORDER_EVENTS = {"r_id": "str", "region_id": "str", "order_ts": "ts", "order_size": "num"}
LOCATION_EVENTS = {"r_id": "str", "event_ts": "ts", "lat": "num", "long": "num"}
_MARGIN = timedelta(minutes=30)


def kitchen_group(kitchen: str) -> FeatureGroup:
    """The kitchen's live queue, an RPC group: from the kitchen service at URL ``kitchen``
    (its batch endpoint for many keys), or through its Python client (``"python"``); both
    answer as of a past time too, for the training history (``palette fetch-rpc``)."""
    fields = {"queue_minutes": "$.queue.minutes", "queue_orders": "$.queue.orders"}
    policy = {"fields": fields, "timeout": "100ms", "retries": 1, "as_of": True}
    if kitchen == "python":
        fetcher = Fetcher(function="palette.examples.kitchen:queue", **policy)
    else:
        base = kitchen.rstrip("/")
        fetcher = Fetcher(url=f"{base}/restaurants/{{r_id}}/queue?at={{as_of}}",
                          batch_url=f"{base}/restaurants/queue:batch", **policy)
    return FeatureGroup("restaurant", "kitchen_rpc", {"queue_minutes": "num", "queue_orders": "num"}, kind="rpc",
                        fetcher=fetcher, description="minutes of orders queued in the kitchen now, from the kitchen "
                                                     "service at request time")


def declare(store, events: str | None = None, kitchen: str | None = None) -> None:
    """Register the example's entities and feature groups; the stream groups read the
    Delta event tables ``events/orders`` and ``events/locations``; with ``kitchen`` (a URL
    or ``"python"``), the RPC group ``kitchen_rpc`` too (``kitchen_group``)."""
    events = events or os.path.join(str(store.root), "events")
    orders = StreamSource("delta", ORDER_EVENTS, "order_ts", path=os.path.join(events, "orders"))
    locations = StreamSource("delta", LOCATION_EVENTS, "event_ts", path=os.path.join(events, "locations"))
    store.register(
        Entity("restaurant", {"r_id": "str"}, description="a restaurant on the platform"),
        Entity("region", {"region_id": "str"}, description="a geohash cell (precision 5)"),
        FeatureGroup("restaurant", "realtime_fg", kind="stream", source=orders, hop=f"{HOP_S // 60}m",
                     aggregations=[Aggregation("n_meal", "count", over=f"{MEAL_WINDOW_S // 60}m")],
                     description="the kitchen's load: meals ordered in the last 30 minutes, streamed"),
        FeatureGroup("restaurant", "location_fg", {"lat": "num", "long": "num"}, kind="stream", source=locations,
                     max_age="3d", description="where the restaurant is: its latest location event"),
        FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"}, max_age="7d",
                     description="daily mean preparation time"),
        FeatureGroup("region", "service_fg", kind="stream", source=orders, hop=f"{HOP_S // 60}m",
                     aggregations=[Aggregation("n_busy", "count", over=f"{BUSY_WINDOW_S // 60}m")],
                     description="how busy the region's couriers are: orders in the last 15 minutes, streamed"),
        *([kitchen_group(kitchen)] if kitchen else []))


def _age(rng: random.Random, group: str, expired: bool = False) -> timedelta:
    limit = MAX_AGE[group]
    return limit + _MARGIN + limit * rng.random() if expired else (limit - _MARGIN) * rng.random()


def restaurant_events(restaurants: int, as_of: datetime, seed: int = 11) -> tuple[list, list, list]:
    """(order events, location events, batch_fg rows) around ``as_of``. Restaurant
    ``r{i}``: no location when i % 10 == 9, only locations past max age when i % 10 == 8;
    no orders when i % 7 == 6, none in the last 30 minutes when i % 7 == 5; no prep time
    when i % 9 == 8, only old ones when i % 9 == 7; about 15% of prep_time values null."""
    rng = random.Random(seed)
    orders, locations, batch = [], [], []
    for i in range(restaurants):
        r_id = f"r{i}"
        lat, lng = round(37.6 + rng.random() * 0.4, 5), round(-122.6 + rng.random() * 0.4, 5)
        if i % 10 != 9:
            expired = i % 10 == 8
            for j in range(rng.randint(1, 3)):
                locations.append((r_id, as_of - _age(rng, "location_fg", expired) - timedelta(seconds=j), lat, lng))
        if i % 7 != 6:
            region = region_of(lat, lng)
            for _ in range(rng.randint(1, 6)):
                age = timedelta(minutes=31 + rng.random() * 120) if i % 7 == 5 else \
                    timedelta(seconds=1 + rng.random() * (MEAL_WINDOW_S - 60))
                orders.append((r_id, region, as_of - age, float(rng.randint(1, 6))))
        if i % 9 != 8:
            for j in range(rng.randint(1, 3)):
                prep = None if rng.random() < 0.15 else 5 + rng.random() * 25
                batch.append((r_id, as_of - _age(rng, "batch_fg", i % 9 == 7) - timedelta(hours=j), prep))
    return orders, locations, batch


def generate(spark, store, restaurants: int, as_of: datetime, seed: int = 11) -> dict:
    """The state of the world around ``as_of`` (naive UTC): the events appended to the
    event tables and the stream groups backfilled from them, the batch rows ingested;
    returns the row counts. Idempotent: a rerun for the same instant, restaurants and seed
    changes nothing."""
    from palette import streaming
    orders, locations, batch = restaurant_events(restaurants, as_of, seed)
    version = int(as_of.replace(tzinfo=timezone.utc).timestamp())       # a rerun for the same instant appends nothing
    app = f"palette-eta-generate-{restaurants}-{seed}"
    append_events(spark.createDataFrame(orders, "r_id string, region_id string, order_ts timestamp, order_size double"),
                  store.group("restaurant:realtime_fg").source, f"{app}-orders", version)
    append_events(spark.createDataFrame(locations, "r_id string, event_ts timestamp, lat double, long double"),
                  store.group("restaurant:location_fg").source, f"{app}-locations", version)
    store.ingest(spark.createDataFrame(batch, "r_id string, event_ts timestamp, prep_time double"),
                 "restaurant:batch_fg")
    for gid in STREAM_GROUPS:
        streaming.backfill(gid, store=store, spark=spark)
    return {"order_events": len(orders), "location_fg": len(locations), "batch_fg": len(batch)}


def region_of(lat: float, long: float) -> str | None:
    """The region (geohash cell, precision 5) of a location, as the pipeline's ``regionId``
    computes it."""
    return geohash.encode(lat, long, 5)


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


def stages(store_root: str, spelling: str = "palette_transformer", timestamp_col: str | None = "order_ts",
           kitchen: bool = False) -> list:
    """The tutorial's feature stages. ``palette_transformer``: lookups by PaletteTransformer,
    then the DSL; ``dsl_only``: the DSL stages alone, looking up what they read. Both end
    with the columns ``FEATURES`` (``KITCHEN_FEATURES`` with ``kitchen``: the kitchen queue,
    an RPC feature fetched with the restaurant's stored features, -1 when unknown)."""
    lookup = {"timestampCol": timestamp_col, "storeRoot": store_root}
    queue = {"queue_minutes": QUEUE_REF} if kitchen else {}
    region = regionId(nVal("restaurant:location_fg:lat:r_id"), nVal("restaurant:location_fg:long:r_id"), 5)
    impute = {"prep_time_f": nFill(nVal("restaurant:batch_fg:prep_time:r_id"), -1),
              "n_meal_f": nFill(nVal("restaurant:realtime_fg:n_meal:r_id"), -1),
              "order_size_f": nVal("basis:order_size"),
              "n_busy_f": nFill(nVal("region:service_fg:n_busy:region_id"), -1),
              **({"queue_f": nFill(nVal("restaurant:kitchen_rpc:queue_minutes:r_id"), -1)} if kitchen else {})}
    if spelling == "palette_transformer":
        return [
            PaletteTransformer({"n_meal": "@palette:restaurant:realtime_fg:n_meal:r_id",
                                "prep_time": "@palette:restaurant:batch_fg:prep_time:r_id",
                                "lat": "@palette:restaurant:location_fg:lat:r_id",
                                "long": "@palette:restaurant:location_fg:long:r_id", **queue}, **lookup),
            DSLEstimator(lambdas={"region_id": region}, **lookup),
            PaletteTransformer({"n_busy": "@palette:region:service_fg:n_busy:region_id"}, **lookup),
            DSLEstimator(lambdas=impute, **lookup)]
    if spelling == "dsl_only":
        return [
            DSLEstimator(lambdas={"region_id": region, "lat": nVal("restaurant:location_fg:lat:r_id"),
                                  "long": nVal("restaurant:location_fg:long:r_id"),
                                  "n_meal": nVal("restaurant:realtime_fg:n_meal:r_id"),
                                  "prep_time": nVal("restaurant:batch_fg:prep_time:r_id")}, **lookup),
            DSLEstimator(lambdas={"n_busy": nVal("region:service_fg:n_busy:region_id"), **impute}, **lookup)]
    raise InvalidArgument(f"unknown spelling {spelling!r}: use 'palette_transformer' or 'dsl_only'")


def pipeline(store_root: str | None = None, label: str = "delivery_minutes", max_iter: int = 50, max_depth: int = 5,
             seed: int = 1, kitchen: bool = False):
    """The tutorial's whole pipeline, unfitted: the feature stages, a VectorAssembler and a
    GBTRegressor of ``label`` (the simulation's ``delivery_minutes``). What ``palette job
    train --pipeline palette.examples.eta:pipeline`` fits."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor
    return Pipeline(stages=stages(store_root, kitchen=kitchen) + [
        VectorAssembler(inputCols=KITCHEN_FEATURES if kitchen else FEATURES, outputCol="features"),
        GBTRegressor(labelCol=label, maxIter=max_iter, maxDepth=max_depth, seed=seed)])


def kitchen_pipeline(store_root: str | None = None, label: str = "delivery_minutes", **kwargs):
    """``pipeline`` with the kitchen queue, an RPC feature (``palette job train --pipeline
    palette.examples.eta:kitchen_pipeline``)."""
    return pipeline(store_root, label, kitchen=True, **kwargs)


from palette.examples.eta_data import (KITCHEN_GROUP, STREAM_GROUPS, Simulation, append_events,  # noqa: E402
                                       ingest, publish, simulate, streams)          # (the data, beside the pipeline)

__all__ = ["declare", "generate", "region_of", "restaurant_events", "requests", "stages", "pipeline", "kitchen_pipeline",
           "kitchen_group", "simulate", "ingest", "publish", "Simulation", "STREAM_GROUPS", "FEATURES", "KITCHEN_FEATURES",
           "KITCHEN_GROUP", "MAX_AGE", "streams", "append_events"]
