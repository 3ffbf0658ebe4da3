"""The offline store (Delta tables, one per feature group) and PaletteTransformer on top of it:
validated idempotent ingest, late corrections, time travel, concurrent writers, lookups,
persistence, errors, and exact rebuilds of a training set from pinned Delta versions."""
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import types as T

from palette import DSLTransformer, Entity, FeatureGroup, FeatureStore, NotRegistered, nFill, nVal
from palette.errors import FeatureLookupError, IngestError
from palette.offline import conform
from palette.transformers.palette_stage import PaletteTransformer

G = "restaurant:batch_fg"
C = "courier:courier_fg"
FG_SCHEMA = "r_id string, event_ts timestamp, prep_time double, cuisine string"
ORDER_SCHEMA = "order_id int, r_id string, order_ts timestamp"
PREP = "@palette:restaurant:batch_fg:prep_time:r_id"
CUISINE = "@palette:restaurant:batch_fg:cuisine:r_id"


def day(d, hour=0):
    """2024-01-<d> <hour>:00."""
    return datetime(2024, 1, 1) + timedelta(days=d - 1, hours=hour)


def define(root) -> FeatureStore:
    s = FeatureStore(root)
    s.register(Entity("restaurant", {"r_id": "str"}),
               FeatureGroup("restaurant", "batch_fg", {"prep_time": "num", "cuisine": "str"}, max_age="2d"),
               Entity("courier", {"c_id": "int"}),
               FeatureGroup("courier", "courier_fg", {"speed": "num"}, timestamp_col="ts"))
    return s


@pytest.fixture
def store(tmp_path):
    return define(tmp_path / "store")


def table_exists(store, group_id):
    return (Path(store.table_path(group_id)) / "_delta_log").is_dir()


def contents(store, group_id, version=None):
    return sorted(tuple(r) for r in store.read(group_id, version=version).collect())


def by_id(df, *cols):
    """{order_id: (cols...)} for every output row; fails if an order_id comes out twice."""
    out = {}
    for r in df.collect():
        assert r["order_id"] not in out, f"order {r['order_id']} came out twice"
        out[r["order_id"]] = tuple(r[c] for c in cols)
    return out


FEATURES_V1 = [("r1", day(1), 10.0, "thai"), ("r1", day(3), 12.0, "thai"), ("r2", day(2), 20.0, None)]
ORDERS = [(1, "r1", day(1)), (2, "r1", day(2, 12)), (3, "r1", day(9)), (4, "r2", day(3)),
          (5, "r3", day(3)), (6, None, day(3)), (7, "r1", None), (8, "r1", datetime(2023, 12, 31))]
# Point in time, max age 2 days, worked out by hand from FEATURES_V1:
EXPECTED_PIT = {1: (10.0, "thai"), 2: (10.0, "thai"), 3: (None, None), 4: (20.0, None), 5: (None, None),
                6: (None, None), 7: (None, None), 8: (None, None)}
# Latest values (no timestampCol, no max age):
EXPECTED_LATEST = {1: (12.0, "thai"), 2: (12.0, "thai"), 3: (12.0, "thai"), 4: (20.0, None),
                   5: (None, None), 6: (None, None), 7: (12.0, "thai"), 8: (12.0, "thai")}


@pytest.fixture(scope="module")
def loaded(spark_session, tmp_path_factory):
    """A store whose batch_fg holds FEATURES_V1 (one ingest, Delta version 1). Tests do not ingest into it."""
    s = define(tmp_path_factory.mktemp("loaded") / "store")
    assert s.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)["version"] == 1
    return s


@pytest.fixture(scope="module")
def orders(spark_session):
    return spark_session.createDataFrame(ORDERS, ORDER_SCHEMA)


# -- ingest: validation ----------------------------------------------------------------------

BAD_INPUTS = {
    "missing-column": ([("r1", day(1), 1.0)], "r_id string, event_ts timestamp, prep_time double",
                       ["missing columns: cuisine"]),
    "extra-column": ([("r1", day(1), 1.0, "x", "red")], FG_SCHEMA + ", color string",
                     ["columns not in restaurant:batch_fg: color"]),
    "wrong-types": ([(1, "2024-01-01", "1.0", "x")],
                    "r_id int, event_ts string, prep_time string, cuisine string",
                    ["r_id is int, expected string", "event_ts is string, expected timestamp",
                     "prep_time is string, expected double"]),
    "null-key": ([("r1", day(1), 1.0, "x"), (None, day(1), 2.0, "y"), (None, day(2), 2.0, "y")], FG_SCHEMA,
                 ["2 rows with a null r_id"]),
    "null-timestamp": ([("r1", None, 1.0, "x"), ("r2", day(1), 2.0, "y")], FG_SCHEMA,
                       ["1 rows with a null event_ts"]),
    "duplicate-key-and-time": ([("r1", day(1), 1.0, "x"), ("r1", day(1), 2.0, "y"), ("r2", day(1), 1.0, "x")],
                               FG_SCHEMA, ["several rows share one (r_id, event_ts)", "r_id=r1",
                                           "event_ts=2024-01-01 00:00:00"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_invalid_first_ingest_raises_and_writes_nothing(spark_session, store, case):
    rows, schema, fragments = BAD_INPUTS[case]
    with pytest.raises(IngestError) as err:
        store.ingest(spark_session.createDataFrame(rows, schema), G)
    msg = str(err.value)
    assert "restaurant:batch_fg" in msg and "Nothing was written" in msg
    for fragment in fragments:
        assert fragment in msg
    assert not table_exists(store, G)


def test_invalid_ingest_into_existing_table_changes_nothing(spark_session, store):
    store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)
    version, before = store.version(G), contents(store, G)
    for case in ("null-key", "duplicate-key-and-time"):
        rows, schema, _ = BAD_INPUTS[case]
        with pytest.raises(IngestError):
            store.ingest(spark_session.createDataFrame(rows, schema), G)
    assert store.version(G) == version
    assert contents(store, G) == before


def test_ingest_reports_stores_and_reruns_idempotently(spark_session, store):
    # Columns in any order: the table keeps its own.
    df = spark_session.createDataFrame([(r[3], r[2], r[1], r[0]) for r in FEATURES_V1],
                                       "cuisine string, prep_time double, event_ts timestamp, r_id string")
    result = store.ingest(df, G)
    assert result == {"version": 1, "inserted": 3, "updated": 0, "source_rows": 3}
    table = store.read(G)
    assert table.columns == ["r_id", "event_ts", "prep_time", "cuisine"]
    assert contents(store, G) == sorted(FEATURES_V1)
    assert store.version(G) == 1
    assert store.table_path(G) == str(Path(store.root) / "tables" / "restaurant" / "batch_fg")
    # A rerun inserts and updates nothing, leaves the rows as they were and commits nothing.
    again = store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)
    assert again == {"version": 1, "inserted": 0, "updated": 0, "source_rows": 3}
    assert contents(store, G) == sorted(FEATURES_V1)
    assert store.version(G) == 1


def test_merge_writes_only_what_changed(spark_session, store):
    """Rows identical to the table never reach the MERGE, so Delta copies no unchanged row
    into a rewritten file (a matched row, even left alone, makes it rewrite the row's file)."""
    from delta.tables import DeltaTable

    store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)
    batch = [*FEATURES_V1[1:], ("r9", day(5), 1.0, "new")]          # two identical rows, one new
    result = store.ingest(spark_session.createDataFrame(batch, FG_SCHEMA), G)
    assert (result["version"], result["inserted"], result["updated"], result["source_rows"]) == (2, 1, 0, 3)
    metrics = DeltaTable.forPath(spark_session, store.table_path(G)).history(1).first()["operationMetrics"]
    assert (metrics["numTargetRowsCopied"], metrics["numTargetFilesRemoved"], metrics["numSourceRows"]) == \
        ("0", "0", "1")
    assert contents(store, G) == sorted([*FEATURES_V1, ("r9", day(5), 1.0, "new")])


def test_late_correction_replaces_the_row_it_corrects_and_time_travel_keeps_old_versions(spark_session, store):
    v1 = store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)["version"]
    late = [("r1", day(1), 11.0, "thai"),       # correction of (r1, day 1)
            ("r2", day(2), 20.0, None),         # identical: left alone
            ("r1", day(0), 9.0, "lao")]         # an older row arriving late
    result = store.ingest(spark_session.createDataFrame(late, FG_SCHEMA), G)
    v2 = result["version"]
    assert (result["inserted"], result["updated"]) == (1, 1)
    after_v2 = sorted([("r1", day(0), 9.0, "lao"), ("r1", day(1), 11.0, "thai"),
                       ("r1", day(3), 12.0, "thai"), ("r2", day(2), 20.0, None)])
    assert contents(store, G) == after_v2
    # A correction to null is a change too.
    result = store.ingest(spark_session.createDataFrame([("r1", day(3), None, "thai")], FG_SCHEMA), G)
    assert (result["inserted"], result["updated"]) == (0, 1)
    assert ("r1", day(3), None, "thai") in contents(store, G)
    assert store.read(G).count() == 4
    # Time travel: every earlier version reads as it was.
    assert v1 < v2 < result["version"] == store.version(G)
    assert contents(store, G, version=v1) == sorted(FEATURES_V1)
    assert contents(store, G, version=v2) == after_v2
    assert store.read(G, version=0).count() == 0          # the empty table created before the first MERGE


def test_integer_num_columns_are_stored_as_double(spark_session, store):
    df = spark_session.createDataFrame([("r1", day(1), 7, "c"), ("r2", day(1), -3, None)],
                                       "r_id string, event_ts timestamp, prep_time int, cuisine string")
    assert store.ingest(df, G)["inserted"] == 2
    table = store.read(G)
    assert table.schema["prep_time"].dataType == T.DoubleType()
    assert sorted((r["r_id"], r["prep_time"]) for r in table.collect()) == [("r1", 7.0), ("r2", -3.0)]
    assert all(isinstance(r["prep_time"], float) for r in table.collect())
    # Every numeric type is accepted for a num feature and conformed to double.
    entity, group = store.entity("restaurant"), store.group(G)
    for t in ["tinyint", "smallint", "bigint", "float", "decimal(10,2)"]:
        typed = df.selectExpr("r_id", "event_ts", f"cast(prep_time as {t}) as prep_time", "cuisine")
        conformed, rows = conform(typed, entity, group)
        assert rows == 2
        assert conformed.schema["prep_time"].dataType == T.DoubleType(), t
        assert sorted(r["prep_time"] for r in conformed.collect()) == [-3.0, 7.0], t


@pytest.mark.parametrize("key_type", ["int", "bigint"])
def test_int_keys(spark_session, store, key_type):
    df = spark_session.createDataFrame([(1, day(1), 5.0), (2, day(1), 6.0), (3_000_000_000 if key_type == "bigint"
                                                                            else 3, day(2), 7.0)],
                                       f"c_id {key_type}, ts timestamp, speed double")
    assert store.ingest(df, C)["inserted"] == 3
    assert store.read(C).schema["c_id"].dataType == T.LongType()
    third = 3_000_000_000 if key_type == "bigint" else 3
    orders = spark_session.createDataFrame([(1, 1, day(3)), (2, third, day(3)), (3, 9, day(3))],
                                           f"order_id int, c_id {key_type}, order_ts timestamp")
    out = PaletteTransformer({"speed": "@palette:courier:courier_fg:speed:c_id"}, timestampCol="order_ts",
                             storeRoot=store.root).transform(orders)
    assert by_id(out, "c_id", "speed") == {1: (1, 5.0), 2: (third, 7.0), 3: (9, None)}
    # The input's key column keeps its own type.
    assert out.schema["c_id"].dataType == (T.IntegerType() if key_type == "int" else T.LongType())


def test_string_key_for_int_entity_is_refused(spark_session, store):
    with pytest.raises(IngestError, match="c_id is string, expected bigint"):
        store.ingest(spark_session.createDataFrame([("1", day(1), 5.0)], "c_id string, ts timestamp, speed double"),
                     C)


def test_new_feature_adds_a_column_and_old_versions_keep_their_schema(spark_session, store):
    v1 = store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)["version"]
    store.register(FeatureGroup("restaurant", "batch_fg", {"prep_time": "num", "cuisine": "str",
                                                          "rating": "num"}, max_age="2d"))
    store.ingest(spark_session.createDataFrame([("r4", day(1), 4.0, "x", 4.5)], FG_SCHEMA + ", rating double"), G)
    table = store.read(G)
    assert table.columns == ["r_id", "event_ts", "prep_time", "cuisine", "rating"]
    assert sorted((r["r_id"], r["rating"]) for r in table.collect()) == \
        [("r1", None), ("r1", None), ("r2", None), ("r4", 4.5)]
    assert store.read(G, version=v1).columns == ["r_id", "event_ts", "prep_time", "cuisine"]


# -- concurrent ingests ------------------------------------------------------------------------

def _ingest_concurrently(spark, store, batches):
    """Ingest each batch from its own thread, all starting together; return results and errors."""
    start = threading.Barrier(len(batches))
    results, errors = [], []

    def run(rows):
        df = spark.createDataFrame(rows, FG_SCHEMA)
        start.wait()
        try:
            results.append(store.ingest(df, G))
        except Exception as e:              # noqa: BLE001 -- reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return results, errors


@pytest.mark.parametrize("overlap, new_table", [(False, False), (True, False), (True, True)],
                         ids=["disjoint", "overlapping", "overlapping-into-new-table"])
def test_concurrent_ingests_lose_and_duplicate_nothing(spark_session, store, overlap, new_table):
    base = [] if new_table else [("r0", day(1), 0.0, "base")]
    if base:
        store.ingest(spark_session.createDataFrame(base, FG_SCHEMA), G)
    a = [(f"r{i}", day(2), float(i), "a") for i in range(1, 6)]
    b = [(f"r{i}", day(2), float(i), "a") for i in range(4, 9)] if overlap else \
        [(f"r{i}", day(3), float(i), "b") for i in range(1, 6)]
    results, errors = _ingest_concurrently(spark_session, store, [a, b])
    assert not errors, [f"{type(e).__name__}: {str(e)[:1500]}" for e in errors]
    assert len(results) == 2
    expected = sorted(set(base + a + b))
    assert contents(store, G) == expected
    assert store.read(G).count() == len(expected)


# -- PaletteTransformer --------------------------------------------------------------------------

def test_transform_point_in_time_and_latest(loaded, orders):
    pit = PaletteTransformer({"prep_time": PREP, "cuisine": CUISINE}, timestampCol="order_ts",
                             storeRoot=loaded.root).transform(orders)
    assert by_id(pit, "prep_time", "cuisine") == EXPECTED_PIT
    assert pit.columns == ["order_id", "r_id", "order_ts", "prep_time", "cuisine"]
    latest = PaletteTransformer({"prep_time": PREP, "cuisine": CUISINE}, storeRoot=loaded.root).transform(orders)
    assert by_id(latest, "prep_time", "cuisine") == EXPECTED_LATEST


def test_both_constructor_spellings(loaded, orders):
    positional = PaletteTransformer({"prep": PREP}, timestampCol="order_ts", storeRoot=loaded.root)
    keyword = PaletteTransformer(features={"prep": PREP}, timestampCol="order_ts", storeRoot=loaded.root)
    assert positional.getFeatures() == keyword.getFeatures() == {"prep": "restaurant:batch_fg:prep_time:r_id"}
    expected = {k: (v[0],) for k, v in EXPECTED_PIT.items()}
    assert by_id(positional.transform(orders), "prep") == expected
    assert by_id(keyword.transform(orders), "prep") == expected
    later = PaletteTransformer().setParams(features={"prep": PREP}, timestampCol="order_ts", storeRoot=loaded.root)
    assert by_id(later.transform(orders), "prep") == expected


def test_store_root_from_environment(loaded, orders, monkeypatch):
    import palette.store
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.setenv("PALETTE_STORE_ROOT", loaded.root)
    tx = PaletteTransformer({"prep": PREP}, timestampCol="order_ts")
    assert tx.getStoreRoot() is None
    assert by_id(tx.transform(orders), "prep") == {k: (v[0],) for k, v in EXPECTED_PIT.items()}
    with pytest.raises(NotRegistered, match="did you mean 'prep_time'"):
        PaletteTransformer({"prep": "@palette:restaurant:batch_fg:prep_tim:r_id"})


def test_no_store_configured_fails_at_transform(orders, monkeypatch):
    import palette.store
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    monkeypatch.delenv("PALETTE_STORE_ROOT", raising=False)
    tx = PaletteTransformer({"prep": PREP}, timestampCol="order_ts")      # nothing to check against yet
    with pytest.raises(LookupError, match="no feature store is configured"):
        tx.transform(orders)


def test_output_columns_carry_ref_and_version(loaded, orders):
    out = PaletteTransformer({"prep": PREP, "c": CUISINE}, timestampCol="order_ts",
                             storeRoot=loaded.root).transform(orders)
    assert out.schema["prep"].metadata == {"palette": {"ref": "restaurant:batch_fg:prep_time:r_id", "version": 1}}
    assert out.schema["c"].metadata == {"palette": {"ref": "restaurant:batch_fg:cuisine:r_id", "version": 1}}
    assert out.schema["prep"].dataType == T.DoubleType() and out.schema["c"].dataType == T.StringType()
    assert out.schema["order_id"].metadata == {}


@pytest.mark.parametrize("ts_col", ["order_ts", None], ids=["point-in-time", "latest"])
def test_rows_are_never_dropped_or_duplicated(spark_session, loaded, ts_col):
    rows = ORDERS + ORDERS[:3] + [(6, None, day(3))] * 2 + [(7, "r1", None)]      # exact duplicate rows too
    df = spark_session.createDataFrame(rows, ORDER_SCHEMA)
    out = PaletteTransformer({"prep": PREP, "c": CUISINE}, timestampCol=ts_col,
                             storeRoot=loaded.root).transform(df).collect()
    expected = EXPECTED_PIT if ts_col else EXPECTED_LATEST
    assert Counter(tuple(r)[:3] for r in out) == Counter(rows)
    assert Counter(tuple(r) for r in out) == Counter(row + expected[row[0]] for row in rows)


def test_string_timestamp_column_is_cast(spark_session, loaded):
    df = spark_session.createDataFrame([(1, "r1", "2024-01-02 12:00:00"), (2, "r1", "2023-12-31")],
                                       "order_id int, r_id string, order_ts string")
    out = PaletteTransformer({"prep": PREP}, timestampCol="order_ts", storeRoot=loaded.root).transform(df)
    assert by_id(out, "prep") == {1: (10.0,), 2: (None,)}


# -- PaletteTransformer: errors -----------------------------------------------------------------

@pytest.mark.parametrize("ref, fragments", [
    ("@palette:restaurnt:batch_fg:prep_time:r_id", ["unknown entity 'restaurnt'", "did you mean 'restaurant'"]),
    ("@palette:restaurant:batch_f:prep_time:r_id", ["unknown feature group 'restaurant:batch_f'",
                                                    "did you mean 'restaurant:batch_fg'"]),
    ("@palette:restaurant:batch_fg:prep_tme:r_id", ["no feature 'prep_tme'", "did you mean 'prep_time'"]),
], ids=["entity", "group", "feature"])
def test_unknown_names_fail_at_construction(store, ref, fragments):
    for build in (lambda: PaletteTransformer({"x": ref}, storeRoot=store.root),
                  lambda: PaletteTransformer(features={"x": ref}, storeRoot=store.root, timestampCol="t")):
        with pytest.raises(NotRegistered) as err:
            build()
        for fragment in fragments:
            assert fragment in str(err.value)


def test_malformed_features_param(store):
    with pytest.raises(ValueError, match="not a palette reference"):
        PaletteTransformer({"x": "@basis:prep_time"}, storeRoot=store.root)
    with pytest.raises(ValueError, match="malformed reference"):
        PaletteTransformer({"x": "restaurant:batch_fg"}, storeRoot=store.root)
    with pytest.raises(TypeError, match="non-empty dict"):
        PaletteTransformer({}, storeRoot=store.root)


def test_missing_join_key_column(loaded, orders):
    tx = PaletteTransformer({"prep": "@palette:restaurant:batch_fg:prep_time:restaurant_id"},
                            timestampCol="order_ts", storeRoot=loaded.root)
    with pytest.raises(FeatureLookupError) as err:
        tx.transform(orders)
    msg = str(err.value)
    assert "'restaurant_id'" in msg and "not in the input" in msg
    assert "order_id, r_id, order_ts" in msg


def test_join_key_of_wrong_type(spark_session, loaded):
    df = spark_session.createDataFrame([(1, 1.0, day(1))], "order_id int, r_id double, order_ts timestamp")
    with pytest.raises(FeatureLookupError) as err:
        PaletteTransformer({"prep": PREP}, timestampCol="order_ts", storeRoot=loaded.root).transform(df)
    msg = str(err.value)
    assert "'r_id' is double" in msg and "'restaurant'" in msg and "is string" in msg


# -- composite keys, ties ---------------------------------------------------------------------

ITEMS = [(1, "a", day(1), 2.0), (1, "a", day(3), 3.0), (1, "b", day(1), 7.0), (2, "a", day(2), 5.0)]


@pytest.fixture
def items(spark_session, store):
    """Entity order_item keyed by (order_id int, item_id str), in that order; one group."""
    store.register(Entity("order_item", {"order_id": "int", "item_id": "str"}),
                   FeatureGroup("order_item", "qty_fg", {"qty": "num"}))
    store.ingest(spark_session.createDataFrame(ITEMS, "order_id long, item_id string, event_ts timestamp, "
                                               "qty double"), "order_item:qty_fg")
    return store


def test_lookup_by_a_composite_key(spark_session, items):
    rows = spark_session.createDataFrame(
        [(10, 1, "a", day(2)), (11, 1, "a", day(4)), (12, 1, "b", day(4)), (13, 2, "b", day(4)),
         (14, 2, "a", day(1)), (15, None, "a", day(4)), (16, 1, None, day(4))],
        "order_id int, oid int, iid string, order_ts timestamp")
    ref = "@palette:order_item:qty_fg:qty:oid,iid"                 # input columns in the entity's key order
    pit = PaletteTransformer({"qty": ref}, timestampCol="order_ts", storeRoot=items.root).transform(rows)
    assert by_id(pit, "qty") == {10: (2.0,), 11: (3.0,), 12: (7.0,), 13: (None,), 14: (None,), 15: (None,),
                                 16: (None,)}
    latest = PaletteTransformer({"qty": ref}, storeRoot=items.root).transform(rows)
    assert by_id(latest, "qty") == {10: (3.0,), 11: (3.0,), 12: (7.0,), 13: (None,), 14: (5.0,), 15: (None,),
                                    16: (None,)}
    # The same through a DSL stage that does its own lookup.
    dsl = DSLTransformer(lambdas={"q": nFill(nVal(ref), -1)}, timestampCol="order_ts", storeRoot=items.root)
    assert by_id(dsl.transform(rows), "q") == {10: (2.0,), 11: (3.0,), 12: (7.0,), 13: (-1.0,), 14: (-1.0,),
                                               15: (-1.0,), 16: (-1.0,)}
    # Columns swapped: the types say so, naming both.
    with pytest.raises(FeatureLookupError, match="'iid' is string, but entity 'order_item' key 'order_id' is bigint"):
        PaletteTransformer({"qty": "@palette:order_item:qty_fg:qty:iid,oid"}, timestampCol="order_ts",
                           storeRoot=items.root).transform(rows)
    with pytest.raises(ValueError, match="keyed by 2 .order_id,item_id."):
        PaletteTransformer({"qty": "@palette:order_item:qty_fg:qty:oid"}, storeRoot=items.root)


def test_rows_sharing_key_and_time_resolve_to_the_greatest_values(spark_session, store, orders):
    """Ingest keeps (key, event time) unique; a table written otherwise may not. Then the
    row with the greatest values (compared in the group's feature order, nulls first:
    cuisine before prep_time) wins, in whatever order the table holds the rows; no input
    row is duplicated."""
    winner, losers = ("r2", day(2), None, "zulu"), [("r2", day(2), 25.0, "thai"), ("r2", day(2), 99.0, None)]
    for i, rows in enumerate(([winner, *losers], [*losers, winner])):
        group = FeatureGroup("restaurant", f"dup_fg{i}", {"prep_time": "num", "cuisine": "str"})
        store.register(group)
        store.ingest(spark_session.createDataFrame(FEATURES_V1[:2], FG_SCHEMA), group.id)
        spark_session.createDataFrame(rows, FG_SCHEMA).coalesce(1).write.format("delta").mode("append") \
            .save(store.table_path(group.id))
        refs = {"prep": f"@palette:restaurant:dup_fg{i}:prep_time:r_id", "c": f"@palette:restaurant:dup_fg{i}:cuisine:r_id"}
        for ts in ("order_ts", None):
            out = PaletteTransformer(refs, timestampCol=ts, storeRoot=store.root).transform(orders)
            assert by_id(out, "prep", "c")[4] == (None, "zulu"), (rows, ts)


def test_group_without_data(store, orders):
    tx = PaletteTransformer({"prep": PREP}, timestampCol="order_ts", storeRoot=store.root)
    with pytest.raises(FeatureLookupError) as err:
        tx.transform(orders)
    assert "restaurant:batch_fg has no data yet" in str(err.value) and "ingest" in str(err.value)


def test_missing_timestamp_column(loaded, orders):
    tx = PaletteTransformer({"prep": PREP}, timestampCol="ordered_at", storeRoot=loaded.root)
    with pytest.raises(FeatureLookupError) as err:
        tx.transform(orders)
    assert "timestamp column 'ordered_at' is not in the input" in str(err.value)
    assert "order_id, r_id, order_ts" in str(err.value)


# -- persistence and exact rebuilds --------------------------------------------------------------

def test_pipeline_round_trip(loaded, orders, tmp_path):
    tx = PaletteTransformer({"prep": PREP, "cuisine": CUISINE}, timestampCol="order_ts", storeRoot=loaded.root)
    model = Pipeline(stages=[tx]).fit(orders)
    before = sorted(tuple(r) for r in model.transform(orders).collect())
    path = str(tmp_path / "eta_model")
    model.write().overwrite().save(path)
    loaded_model = PipelineModel.load(path)
    (stage,) = loaded_model.stages
    assert isinstance(stage, PaletteTransformer)
    assert stage.getFeatures() == {"prep": "restaurant:batch_fg:prep_time:r_id",
                                   "cuisine": "restaurant:batch_fg:cuisine:r_id"}
    assert (stage.getTimestampCol(), stage.getStoreRoot()) == ("order_ts", loaded.root)
    after = loaded_model.transform(orders)
    assert sorted(tuple(r) for r in after.collect()) == before
    assert by_id(after, "prep", "cuisine") == EXPECTED_PIT
    # Saving writes nothing to the registry; record_model reads the refs off the saved model.
    assert loaded.search(model=path) == []
    assert loaded.record_model(path) == ["restaurant:batch_fg:cuisine:r_id", "restaurant:batch_fg:prep_time:r_id"]
    assert [r.id for r in loaded.search(model=path)] == ["restaurant:batch_fg:cuisine",
                                                         "restaurant:batch_fg:prep_time"]


def test_single_stage_round_trip(loaded, orders, tmp_path):
    tx = PaletteTransformer({"prep": PREP}, storeRoot=loaded.root, deltaVersions={G: 1})
    tx.write().overwrite().save(str(tmp_path / "tx"))
    back = PaletteTransformer.load(str(tmp_path / "tx"))
    assert back.getFeatures() == tx.getFeatures() and back.getDeltaVersions() == {G: 1}
    assert back.getTimestampCol() is None
    assert by_id(back.transform(orders), "prep") == {k: (v[0],) for k, v in EXPECTED_LATEST.items()}


def test_pinned_versions_rebuild_an_older_training_set(spark_session, store, orders, tmp_path):
    v1 = store.ingest(spark_session.createDataFrame(FEATURES_V1, FG_SCHEMA), G)["version"]
    tx = PaletteTransformer({"prep": PREP, "cuisine": CUISINE}, timestampCol="order_ts", storeRoot=store.root)
    assert tx.pinVersions() is tx
    assert tx.getDeltaVersions() == {G: v1}
    model = Pipeline(stages=[tx]).fit(orders)
    model.write().overwrite().save(str(tmp_path / "m"))
    training = by_id(tx.transform(orders), "prep", "cuisine")
    assert training == EXPECTED_PIT

    # A later ingest corrects r1's day-1 value and adds a newer r2 row.
    v2 = store.ingest(spark_session.createDataFrame([("r1", day(1), 11.0, "lao"), ("r2", day(3), 21.0, "x")],
                                                    FG_SCHEMA), G)["version"]
    assert v2 > v1
    fresh = PaletteTransformer({"prep": PREP, "cuisine": CUISINE}, timestampCol="order_ts", storeRoot=store.root)
    now = fresh.transform(orders)
    assert by_id(now, "prep", "cuisine") == {**EXPECTED_PIT, 1: (11.0, "lao"), 2: (11.0, "lao"), 4: (21.0, "x")}
    assert now.schema["prep"].metadata["palette"]["version"] == v2

    pinned = tx.transform(orders)
    assert by_id(pinned, "prep", "cuisine") == training
    assert pinned.schema["prep"].metadata["palette"]["version"] == v1
    explicit = PaletteTransformer({"prep": PREP, "cuisine": CUISINE}, timestampCol="order_ts",
                                  storeRoot=store.root, deltaVersions={G: v1})
    assert by_id(explicit.transform(orders), "prep", "cuisine") == training
    assert by_id(PipelineModel.load(str(tmp_path / "m")).transform(orders), "prep", "cuisine") == training


def test_a_dsl_reader_of_the_wrong_type_is_refused_on_both_paths(loaded, orders, tmp_path):
    """``sVal`` of a ``num`` feature (or ``nVal`` of a ``str`` one) fails, naming the right
    reader: in ``transform`` and when the runtime loads the saved stage."""
    from palette import DSLTransformer, FeatureLookupError
    from palette.transformers import load_scorer
    wrong = DSLTransformer(lambdas={"p": f'sVal("{PREP}")', "c": f'sVal("{CUISINE}")'}, storeRoot=loaded.root)
    with pytest.raises(FeatureLookupError, match=r'reads prep_time of restaurant:batch_fg, a num feature, as str: '
                                                 r'read it with nVal'):
        wrong.transform(orders)
    wrong.write().save(str(tmp_path / "wrong"))
    with pytest.raises(FeatureLookupError, match="read it with nVal"):
        load_scorer(tmp_path / "wrong", online_store=f"sqlite:///{tmp_path}/none.db")
    right = DSLTransformer(lambdas={"p": f'nVal("{PREP}")', "c": f'sVal("{CUISINE}")'}, storeRoot=loaded.root)
    assert right.transform(orders).count() == orders.count()
