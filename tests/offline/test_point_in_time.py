"""Point-in-time correctness of feature-store lookups, against a brute-force oracle.

For each training row and feature group: among the group's feature rows with the row's key
and event time <= the row's time, the latest; null if there is none, if it is older than
the group's max age, or if the row's key or time is null. Without a timestamp column: the
latest row of the key (max age not applied). The oracle below is plain Python over the
histories as the test wrote them (batch 1, then late batch 2 replacing rows with the same
key and time) and shares no code with palette.
"""
import os
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.ml import Pipeline

from palette import DSLTransformer, Entity, FeatureGroup, FeatureStore, nFill, nVal, sVal
from palette.transformers.palette_stage import PaletteTransformer

BASE = datetime(2024, 3, 1, 8, 0)
US = timedelta(microseconds=1)
AGES = {None: None, "30m": timedelta(minutes=30), "1h": timedelta(hours=1), "90m": timedelta(minutes=90),
        "2h": timedelta(hours=2)}

RATING = "@palette:restaurant:info:rating:r_id"
CITY = "@palette:restaurant:info:city:r_id"
N_ORDERS = "@palette:restaurant:stats:n_orders:r_id"
TEMP = "@palette:city:weather:temp:c_id"          # keyed by a column computed from CITY

INFO_SCHEMA = "r_id string, event_ts timestamp, city string, rating double"
STATS_SCHEMA = "r_id string, event_ts timestamp, n_orders double"
WEATHER_SCHEMA = "c_id string, event_ts timestamp, temp double"
ROWS_SCHEMA = "row_id int, r_id string, order_ts timestamp"


# -- the oracle ----------------------------------------------------------------------------------

def as_of(history: dict, key, ts, max_age: timedelta | None, point_in_time: bool):
    """The values of the feature row that a training row (key, ts) should get, or None.
    ``history`` is {(key, event_ts): values}."""
    if key is None or (point_in_time and ts is None):
        return None
    rows = [(t, v) for (k, t), v in history.items() if k == key and (not point_in_time or t <= ts)]
    if not rows:
        return None
    t, values = max(rows, key=lambda r: r[0])
    if point_in_time and max_age is not None and ts - t > max_age:
        return None
    return values


def oracle(rows, info, stats, weather, ages, point_in_time):
    """{row_id: (rating, n_orders, c_id, temp, rating_or_minus_1)}"""
    out = {}
    for row_id, r_id, ts in rows:
        i = as_of(info, r_id, ts, ages["info"], point_in_time) or (None, None)
        city, rating = i
        (n_orders,) = as_of(stats, r_id, ts, ages["stats"], point_in_time) or (None,)
        (temp,) = as_of(weather, city, ts, ages["weather"], point_in_time) or (None,)
        out[row_id] = (rating, n_orders, city, temp, -1.0 if rating is None else rating)
    return out


def test_oracle_on_the_documented_example():
    """The oracle agrees with docs/feature-store.md's worked example (max age 2 days)."""
    d = lambda day, h=0: datetime(2024, 1, day, h)  # noqa: E731
    history = {("r1", d(1)): 10.0, ("r1", d(3)): 12.0, ("r2", d(2)): 20.0}
    age = timedelta(days=2)
    got = [as_of(history, k, t, age, True) for k, t in
           [("r1", datetime(2023, 12, 31)), ("r1", d(1)), ("r1", d(2, 12)), ("r1", d(9)), ("r2", d(3)),
            ("r3", d(3)), (None, d(3))]]
    assert got == [None, 10.0, 10.0, None, 20.0, None, None]
    assert as_of(history, "r1", None, age, False) == 12.0


# -- random scenarios ------------------------------------------------------------------------------

def feature_time(i):      # feature rows: whole hours 0..5 after BASE
    return BASE + timedelta(hours=i)


def row_time(i):          # training rows: half hours 0..13 after BASE (ties with every feature time)
    return BASE + timedelta(minutes=30 * i)


@st.composite
def history(draw, keys, values):
    """(batch1, batch2): batch2 corrects some batch1 rows and adds rows, often older ones."""
    slot = st.tuples(st.sampled_from(keys), st.integers(0, 5).map(feature_time))
    batch1 = draw(st.dictionaries(slot, values, min_size=1, max_size=16))
    corrected = draw(st.lists(st.sampled_from(sorted(batch1)), unique=True, max_size=5))
    batch2 = {k: draw(values) for k in corrected}
    older = st.tuples(st.sampled_from(keys), st.integers(0, 2).map(feature_time))
    batch2.update(draw(st.dictionaries(older, values, max_size=5)))
    return batch1, batch2


num = st.one_of(st.none(), st.integers(-5, 40).map(float))
info_values = st.tuples(st.sampled_from(["c1", "c2", "c3", "c4", "c9", None]), num)  # (city, rating); c9: no weather
training_rows = st.lists(
    st.tuples(st.sampled_from(["r1", "r2", "r3", "r4", "r5", "r9", None]),        # r9: no features
              st.one_of(st.integers(0, 13).map(row_time), st.none())),
    min_size=1, max_size=30)
RESTAURANTS, CITIES = ["r1", "r2", "r3", "r4", "r5"], ["c1", "c2", "c3", "c4"]


def write(spark, store, group_id, schema, batch):
    rows = [(k, t, *v) for (k, t), v in sorted(batch.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
    return store.ingest(spark.createDataFrame(rows, schema), group_id)["version"]


def register_groups(store, ages):
    """The three groups of the random scenarios, with the drawn max ages."""
    store.register(
        Entity("restaurant", {"r_id": "str"}), Entity("city", {"c_id": "str"}),
        FeatureGroup("restaurant", "info", {"city": "str", "rating": "num"}, max_age=ages["info"]),
        FeatureGroup("restaurant", "stats", {"n_orders": "num"}, max_age=ages["stats"]),
        FeatureGroup("city", "weather", {"temp": "num"}, max_age=ages["weather"]))


def lookup_pipeline(ts_col, root):
    lookup = dict(timestampCol=ts_col, storeRoot=root)
    return Pipeline(stages=[
        PaletteTransformer({"rating": RATING, "n_orders": N_ORDERS}, **lookup),
        DSLTransformer(lambdas={"c_id": sVal(CITY)}, **lookup),        # the DSL stage looks CITY up
        PaletteTransformer({"temp": TEMP}, **lookup),                   # keyed by the computed c_id
        DSLTransformer(lambdas={"rating_or_neg": nFill(nVal(RATING), -1)}),  # reads stage 1's column
    ])


def looked_up(model, df, numbered):
    """{row_id: (rating, n_orders, c_id, temp, rating_or_neg)} of ``model.transform(df)``,
    asserting that every input row comes out once and unchanged."""
    got = {}
    for r in model.transform(df).collect():
        assert r["row_id"] not in got, "a training row came out twice"
        assert (r["r_id"], r["order_ts"]) == numbered[r["row_id"]][1:]
        got[r["row_id"]] = (r["rating"], r["n_orders"], r["c_id"], r["temp"], r["rating_or_neg"])
    assert len(got) == len(numbered), "a training row was dropped"
    return got


# Every example writes three Delta tables (five MERGEs): few examples, each with a rich
# history (up to 5 keys x 6 times per group, corrections, late older rows, 30 training rows).
# PALETTE_PIT_EXAMPLES=100 runs a deeper search.
@settings(max_examples=int(os.environ.get("PALETTE_PIT_EXAMPLES", 4)), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(info=history(RESTAURANTS, info_values),
       stats=history(RESTAURANTS, num.map(lambda v: (v,))).map(lambda b: ({**b[0], **b[1]}, {})),  # one batch
       weather=history(CITIES, num.map(lambda v: (v,))),
       ages=st.fixed_dictionaries({g: st.sampled_from(list(AGES)) for g in ("info", "stats", "weather")}),
       rows=training_rows)
def test_lookups_match_the_oracle(spark_session, tmp_path_factory, info, stats, weather, ages, rows):
    spark = spark_session
    store = FeatureStore(tmp_path_factory.mktemp("pit"))
    register_groups(store, ages)
    first = {}
    for gid, schema, (batch1, batch2) in [("restaurant:info", INFO_SCHEMA, info),
                                          ("restaurant:stats", STATS_SCHEMA, stats),
                                          ("city:weather", WEATHER_SCHEMA, weather)]:
        first[gid] = write(spark, store, gid, schema, batch1)
        if batch2:
            write(spark, store, gid, schema, batch2)
    final = {name: {**b1, **b2} for name, (b1, b2) in
             {"info": info, "stats": stats, "weather": weather}.items()}
    ages_td = {g: AGES[a] for g, a in ages.items()}
    numbered = [(i, r_id, ts) for i, (r_id, ts) in enumerate(rows)]
    df = spark.createDataFrame(numbered, ROWS_SCHEMA)

    for ts_col in ("order_ts", None):
        got = looked_up(lookup_pipeline(ts_col, store.root).fit(df), df, numbered)
        expected = oracle(numbered, final["info"], final["stats"], final["weather"], ages_td, ts_col is not None)
        assert got == expected, f"timestampCol={ts_col}"

    # Pinned to the versions after batch 1, the lookups see batch 1 only.
    pinned = PaletteTransformer({"rating": RATING, "city": CITY, "n_orders": N_ORDERS}, timestampCol="order_ts",
                                storeRoot=store.root, deltaVersions=first)
    got = {r["row_id"]: (r["rating"], r["n_orders"], r["city"]) for r in pinned.transform(df).collect()}
    expected = oracle(numbered, info[0], stats[0], weather[0], ages_td, True)
    assert got == {k: (v[0], v[1], v[2]) for k, v in expected.items()}


# -- many scenarios in one set of tables -----------------------------------------------------------

def random_history(rnd, keys, value):
    """As ``history`` draws it: batch 1, and batch 2 correcting some of its rows and adding
    rows, often older ones."""
    batch1 = {(rnd.choice(keys), feature_time(rnd.randrange(6))): value() for _ in range(rnd.randint(1, 16))}
    batch2 = {k: value() for k in rnd.sample(sorted(batch1), min(len(batch1), rnd.randint(0, 5)))}
    batch2.update({(rnd.choice(keys), feature_time(rnd.randrange(3))): value() for _ in range(rnd.randint(0, 5))})
    return batch1, batch2


def random_scenario(rnd, j):
    """One scenario of the test above with every key (and city value) prefixed by ``s{j}:``,
    so that many scenarios share tables without meeting: lookups never cross keys."""
    def name(v):
        return None if v is None else f"s{j}:{v}"

    def number():
        return None if rnd.random() < 0.15 else float(rnd.randint(-5, 40))

    def prefix(batches, value=lambda v: v):
        return tuple({(name(k), t): value(v) for (k, t), v in b.items()} for b in batches)

    info = prefix(random_history(rnd, RESTAURANTS, lambda: (rnd.choice(["c1", "c2", "c3", "c4", "c9", None]),
                                                            number())), lambda v: (name(v[0]), v[1]))
    stats = prefix(random_history(rnd, RESTAURANTS, lambda: (number(),)))
    weather = prefix(random_history(rnd, CITIES, lambda: (number(),)))
    rows = [(name(rnd.choice(["r1", "r2", "r3", "r4", "r5", "r9", None])),
             None if rnd.random() < 0.1 else row_time(rnd.randrange(14))) for _ in range(rnd.randint(1, 30))]
    return info, stats, weather, rows


SCENARIOS = 80       # per example: 80 independent scenarios in one set of tables, one transform


@settings(max_examples=int(os.environ.get("PALETTE_PIT_EXAMPLES", 2)), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1),
       ages=st.fixed_dictionaries({g: st.sampled_from(list(AGES)) for g in ("info", "stats", "weather")}))
def test_many_scenarios_at_once_match_the_oracle(spark_session, tmp_path_factory, seed, ages):
    """The random scenarios of the test above, SCENARIOS of them per example sharing three
    tables (keys prefixed per scenario), so that every example checks hundreds of rows and
    histories with one set of MERGEs and one transform per mode."""
    import random
    rnd = random.Random(seed)
    scenarios = [random_scenario(rnd, j) for j in range(SCENARIOS)]
    spark = spark_session
    store = FeatureStore(tmp_path_factory.mktemp("pit_many"))
    register_groups(store, ages)
    final = {}
    for g, (gid, schema) in enumerate([("restaurant:info", INFO_SCHEMA), ("restaurant:stats", STATS_SCHEMA),
                                       ("city:weather", WEATHER_SCHEMA)]):
        batch1 = {k: v for sc in scenarios for k, v in sc[g][0].items()}
        batch2 = {k: v for sc in scenarios for k, v in sc[g][1].items()}
        write(spark, store, gid, schema, batch1)
        if batch2:
            write(spark, store, gid, schema, batch2)
        final[gid] = {**batch1, **batch2}
    numbered = [(i, r_id, ts) for i, (r_id, ts) in enumerate(r for sc in scenarios for r in sc[3])]
    df = spark.createDataFrame(numbered, ROWS_SCHEMA)
    ages_td = {g: AGES[a] for g, a in ages.items()}
    for ts_col in ("order_ts", None):
        got = looked_up(lookup_pipeline(ts_col, store.root).fit(df), df, numbered)
        expected = oracle(numbered, final["restaurant:info"], final["restaurant:stats"], final["city:weather"],
                          ages_td, ts_col is not None)
        assert got == expected, f"timestampCol={ts_col}"
    found = sum(v[0] is not None for v in expected.values())
    assert found > len(numbered) // 10          # lookups really found values, not nulls everywhere


# -- explicit edges ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def edges(spark_session, tmp_path_factory):
    store = FeatureStore(tmp_path_factory.mktemp("edges"))
    store.register(Entity("restaurant", {"r_id": "str"}),
                   FeatureGroup("restaurant", "limited", {"x": "num"}, max_age="1h"),
                   FeatureGroup("restaurant", "forever", {"y": "num"}))
    t = BASE
    store.ingest(spark_session.createDataFrame(
        [("r1", t, 1.0), ("r1", t + timedelta(hours=2), 2.0), ("r2", t + US, 3.0)],
        "r_id string, event_ts timestamp, x double"), "restaurant:limited")
    store.ingest(spark_session.createDataFrame(
        [("r1", t - timedelta(days=3650), 7.0), ("r3", t, 5.0), ("r3", t + timedelta(hours=1), None)],
        "r_id string, event_ts timestamp, y double"), "restaurant:forever")
    return store


EDGE_ROWS = {   # row_id: (r_id, order_ts, expected x, expected y)
    1: ("r1", BASE, 1.0, None),                                 # feature row exactly at the row's time: used
    2: ("r1", BASE - US, None, None),                           # the only x rows are in the future
    3: ("r1", BASE + timedelta(hours=1), 1.0, None),            # exactly max age old: still valid
    4: ("r1", BASE + timedelta(hours=1) + US, None, None),      # one microsecond older: null
    5: ("r1", BASE + timedelta(hours=2) - US, None, None),      # the 2h row is still 1 us in the future
    6: ("r1", BASE + timedelta(hours=2), 2.0, None),
    7: ("r2", BASE, None, None),                                # r2's row is 1 us after the order
    8: ("r2", BASE + US, 3.0, None),
    9: ("r3", BASE + timedelta(minutes=90), None, None),        # latest y row holds null: no fall back to 5.0
    10: ("r3", BASE + timedelta(minutes=59), None, 5.0),
    11: ("r1", BASE + timedelta(days=1), None, None),           # x's latest r1 row is 22h old: over 1h
}


def test_edges_point_in_time(spark_session, edges):
    rows = [(i, k, t) for i, (k, t, _, _) in EDGE_ROWS.items()]
    out = PaletteTransformer({"x": "@palette:restaurant:limited:x:r_id", "y": "@palette:restaurant:forever:y:r_id"},
                             timestampCol="order_ts", storeRoot=edges.root) \
        .transform(spark_session.createDataFrame(rows, ROWS_SCHEMA)).collect()
    got = {r["row_id"]: (r["x"], r["y"]) for r in out}
    # A group without max age keeps a 10-year-old value valid.
    expected = {i: (x, 7.0 if k == "r1" else y) for i, (k, _, x, y) in EDGE_ROWS.items()}
    assert len(out) == len(rows)
    assert got == expected


def test_edges_latest_values(spark_session, edges):
    rows = [(1, "r1", None), (2, "r2", BASE - timedelta(days=1)), (3, "r3", None), (4, "r4", BASE), (5, None, BASE)]
    out = PaletteTransformer({"x": "@palette:restaurant:limited:x:r_id", "y": "@palette:restaurant:forever:y:r_id"},
                             storeRoot=edges.root).transform(spark_session.createDataFrame(rows, ROWS_SCHEMA))
    # No timestamp column: the latest row of each key, whatever the row's own time, no max age.
    assert {r["row_id"]: (r["x"], r["y"]) for r in out.collect()} == \
        {1: (2.0, 7.0), 2: (3.0, None), 3: (None, None), 4: (None, None), 5: (None, None)}
