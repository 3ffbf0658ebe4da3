"""The feature registry: declaring entities and feature groups, compatibility rules, errors
that name the closest registered names, the Delta table, concurrent writers, the migration
from registry.json, and search.

No Spark here: the registry's Delta table is read and written with delta-rs."""
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from palette.registry import (Entity, Feature, FeatureGroup, NotRegistered, Registry, RegistryError,
                              parse_age)
from palette.store import FeatureStore


def restaurant():
    return Entity("restaurant", join_keys={"r_id": "str"}, description="a restaurant")


def batch_fg(**overrides):
    spec = dict(entity="restaurant", name="batch_fg",
                features={"prep_time": "num", "cuisine": "str", "open": "bool"},
                timestamp_col="event_ts", max_age="30d", tags=("eta",))
    spec.update(overrides)
    return FeatureGroup(**spec)


@pytest.fixture
def store(tmp_path):
    s = FeatureStore(tmp_path / "store")
    s.register(restaurant(), batch_fg())
    return s


def file_bytes(store):
    """The registry's table version and content: a no-op registration commits nothing."""
    return Registry(store.root).table.load()[0], Registry(store.root).export()


# -- registering -------------------------------------------------------------------------

def test_register_then_read_back(store):
    ent = store.entity("restaurant")
    assert ent == restaurant()
    g = store.group("restaurant:batch_fg")
    assert g.id == "restaurant:batch_fg"
    assert [(f.name, f.type) for f in g.features] == [("prep_time", "num"), ("cuisine", "str"), ("open", "bool")]
    assert g.max_age == timedelta(days=30)
    assert g.timestamp_col == "event_ts"
    assert g.tags == ("eta",)
    # A fresh Registry object on the same root sees the same thing (it is in the file).
    again = Registry(store.root)
    assert again.group("restaurant:batch_fg") == g
    assert again.entities() == {"restaurant": restaurant()}


def test_registering_same_definition_again_is_a_noop(store):
    before = file_bytes(store)
    store.register(restaurant(), batch_fg())
    store.register(batch_fg())
    store.register(restaurant())
    assert file_bytes(store) == before


def test_adding_a_feature_is_allowed(store):
    store.register(batch_fg(features={"prep_time": "num", "cuisine": "str", "open": "bool",
                                      "n_tables": "num"}))
    g = store.group("restaurant:batch_fg")
    assert [f.name for f in g.features] == ["prep_time", "cuisine", "open", "n_tables"]
    assert g.feature("n_tables").type == "num"


@pytest.mark.parametrize("change, expected", [
    (dict(features={"prep_time": "str", "cuisine": "str", "open": "bool"}), "'prep_time' type num -> str"),
    (dict(features={"prep_time": "num", "open": "bool"}), "'cuisine' removed"),
    (dict(timestamp_col="ts"), "timestamp column 'event_ts' -> 'ts'"),
], ids=["type-change", "removed-feature", "timestamp-col-change"])
def test_incompatible_group_change_is_refused_naming_it(store, change, expected):
    before = file_bytes(store)
    with pytest.raises(RegistryError) as err:
        store.register(batch_fg(**change))
    assert "restaurant:batch_fg" in str(err.value)
    assert expected in str(err.value)
    assert file_bytes(store) == before
    assert store.group("restaurant:batch_fg") == batch_fg()


def test_several_incompatible_changes_are_all_named(store):
    with pytest.raises(RegistryError) as err:
        store.register(batch_fg(features={"prep_time": "bool"}, timestamp_col="ts"))
    msg = str(err.value)
    for part in ("'prep_time' type num -> bool", "'cuisine' removed", "'open' removed", "'event_ts' -> 'ts'"):
        assert part in msg


@pytest.mark.parametrize("keys", [{"rid": "str"}, {"r_id": "int"}, {"r_id": "str", "city": "str"}])
def test_entity_join_key_change_is_refused(store, keys):
    before = file_bytes(store)
    with pytest.raises(RegistryError) as err:
        store.register(Entity("restaurant", join_keys=keys))
    msg = str(err.value)
    assert "'restaurant'" in msg and "'r_id': 'str'" in msg and str(keys) in msg
    assert file_bytes(store) == before


def test_a_refused_call_registers_nothing_from_that_call(store):
    """One register() call is all or nothing: a new entity in the same call is not kept."""
    before = file_bytes(store)
    with pytest.raises(RegistryError):
        store.register(Entity("courier", {"c_id": "str"}), batch_fg(features={"prep_time": "str"}))
    assert file_bytes(store) == before
    with pytest.raises(NotRegistered):
        store.entity("courier")


def test_group_of_unregistered_entity_is_refused_with_suggestion(tmp_path):
    s = FeatureStore(tmp_path)
    s.register(restaurant())
    with pytest.raises(NotRegistered) as err:
        s.register(FeatureGroup("restaurnt", "g", {"x": "num"}))
    assert "did you mean 'restaurant'" in str(err.value)
    assert s.registry.groups() == {}


def test_entity_and_group_in_one_call_in_any_order(tmp_path):
    s = FeatureStore(tmp_path)
    s.register(batch_fg(), restaurant())          # the group first: entities are registered first
    assert s.group("restaurant:batch_fg") == batch_fg()


# -- unknown names --------------------------------------------------------------------------

def test_unknown_entity_suggests_closest(store):
    with pytest.raises(NotRegistered) as err:
        store.entity("restaurnt")
    assert "unknown entity 'restaurnt'" in str(err.value)
    assert "did you mean 'restaurant'" in str(err.value)
    assert isinstance(err.value, KeyError)


def test_unknown_entity_with_nothing_close_lists_registered(store):
    with pytest.raises(NotRegistered) as err:
        store.entity("zzzz")
    assert "registered: restaurant" in str(err.value)


def test_unknown_entity_on_empty_registry(tmp_path):
    with pytest.raises(NotRegistered) as err:
        FeatureStore(tmp_path).entity("restaurant")
    assert "nothing is registered yet" in str(err.value)


def test_unknown_group_suggests_closest(store):
    with pytest.raises(NotRegistered) as err:
        store.group("restaurant:batch_f")
    assert "did you mean 'restaurant:batch_fg'" in str(err.value)


def test_unknown_entity_inside_group_id_suggests_entity(store):
    with pytest.raises(NotRegistered) as err:
        store.group("restauran:batch_fg")
    assert "unknown entity 'restauran'" in str(err.value)
    assert "did you mean 'restaurant'" in str(err.value)


def test_unknown_feature_suggests_closest(store):
    with pytest.raises(NotRegistered) as err:
        store.resolve("@palette:restaurant:batch_fg:prep_tme:r_id")
    assert "no feature 'prep_tme'" in str(err.value)
    assert "did you mean 'prep_time'" in str(err.value)


def test_resolve_known_ref(store):
    entity, group, ref = store.resolve("@palette:restaurant:batch_fg:prep_time:order_r_id")
    assert entity.name == "restaurant" and group.id == "restaurant:batch_fg"
    assert (ref.feature, ref.join_key) == ("prep_time", "order_r_id")
    # The '@palette:' prefix is optional.
    assert store.resolve("restaurant:batch_fg:prep_time:r_id")[2].feature == "prep_time"


def test_resolve_refuses_non_palette_ref_and_a_wrong_number_of_key_columns(store):
    with pytest.raises(ValueError, match="not a palette reference"):
        store.resolve("@basis:prep_time")
    store.register(Entity("pair", {"b": "int", "a": "str"}), FeatureGroup("pair", "pg", {"x": "num"}))
    with pytest.raises(ValueError) as err:
        store.resolve("@palette:pair:pg:x:a")
    assert str(err.value) == (
        "'@palette:pair:pg:x:a' names 1 join key column(s) (a), but entity 'pair' is keyed by 2 (b,a): name "
        "one input column per key, in that order, e.g. 'pair:pg:x:b,a'")
    entity, group, ref = store.resolve("@palette:pair:pg:x:col_b, col_a")
    assert ref.join_keys == ("col_b", "col_a") and str(ref) == "pair:pg:x:col_b,col_a"


def test_composite_key_order_survives_the_registry_file(store, tmp_path):
    """The file is written with sorted keys; a composite key keeps its declared order."""
    store.register(Entity("pair", {"z_id": "str", "a_id": "int"}))
    assert list(FeatureStore(store.root).entity("pair").join_keys.items()) == [("z_id", "str"), ("a_id", "int")]
    with pytest.raises(RegistryError, match="refusing to change"):
        store.register(Entity("pair", {"a_id": "int", "z_id": "str"}))


# -- max_age ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)), ("2w", timedelta(days=14)), (None, None),
    (timedelta(hours=3), timedelta(hours=3)),
])
def test_max_age_parsing(text, expected):
    assert parse_age(text) == expected
    assert FeatureGroup("restaurant", "g", {"x": "num"}, max_age=text).max_age == expected


@pytest.mark.parametrize("bad", ["3 days", "30", "d30", "1.5h", "-1d", "30D", "30 d", "", "30y"])
def test_bad_max_age_is_an_error(bad):
    with pytest.raises(RegistryError) as err:
        FeatureGroup("restaurant", "g", {"x": "num"}, max_age=bad)
    assert repr(bad) in str(err.value) and "'30d'" in str(err.value)


def test_max_age_survives_the_table(tmp_path):
    s = FeatureStore(tmp_path)
    s.register(restaurant(), batch_fg(max_age="12h"), batch_fg(name="nolimit", max_age=None))
    data = json.loads(s.registry.export())
    assert data["feature_groups"]["restaurant:batch_fg"]["max_age_seconds"] == 12 * 3600
    assert data["feature_groups"]["restaurant:nolimit"]["max_age_seconds"] is None
    assert Registry(tmp_path).group("restaurant:batch_fg").max_age == timedelta(hours=12)
    assert Registry(tmp_path).group("restaurant:nolimit").max_age is None


# -- the table ----------------------------------------------------------------------------

def test_registry_is_a_delta_table_with_one_row_per_definition(tmp_path):
    from deltalake import DeltaTable
    s = FeatureStore(tmp_path)
    s.register(Entity("zebra", {"z_id": "str"}), restaurant(),
               FeatureGroup("zebra", "stripes", {"n": "num", "color": "str"}, description="stripes"),
               batch_fg())
    s.register(batch_fg(description="changed"))                     # one more commit, same rows
    table = DeltaTable(str(tmp_path / "_registry"))
    rows = sorted((r["kind"], r["id"]) for r in table.to_pyarrow_table().to_pylist())
    assert rows == [("entity", "restaurant"), ("entity", "zebra"), ("feature_group", "restaurant:batch_fg"),
                    ("feature_group", "zebra:stripes")]
    assert table.version() == 1
    assert [h["operation"] for h in table.history()] == ["MERGE", "WRITE"]      # versions by Delta's log
    # Time travel shows the definition as it was.
    old = DeltaTable(str(tmp_path / "_registry"), version=0).to_pyarrow_table().to_pylist()
    assert "changed" not in next(r["definition"] for r in old if r["id"] == "restaurant:batch_fg")


def test_export_is_sorted_indented_json(tmp_path):
    s = FeatureStore(tmp_path)
    s.register(Entity("zebra", {"z_id": "str"}), restaurant(),
               FeatureGroup("zebra", "stripes", {"n": "num", "color": "str"}, description="stripes"),
               batch_fg())
    text = s.registry.export()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert list(data["entities"]) == ["restaurant", "zebra"]
    assert list(data["feature_groups"]) == ["restaurant:batch_fg", "zebra:stripes"]
    assert data["entities"]["restaurant"]["join_keys"] == [["r_id", "str"]]     # pairs: a key's order matters
    # Features keep their declared order (a list), each with name and type.
    assert [(f["name"], f["type"]) for f in data["feature_groups"]["zebra:stripes"]["features"]] == \
        [("n", "num"), ("color", "str")]


def _legacy_file(tmp_path):
    (tmp_path / "registry.json").write_text(json.dumps({"format": 1, "usage": {"m1": ["restaurant:batch_fg:x"]},
        "feature_groups": {"restaurant:batch_fg": batch_fg().to_json()},
        "entities": {"restaurant": {"name": "restaurant", "join_keys": {"r_id": "str"}, "description": "a restaurant"}}}))


def test_a_registry_json_is_read_only_after_migrating_it(tmp_path):
    """Files of an older palette (join keys as an object, too) are migrated by a command, never silently."""
    _legacy_file(tmp_path)
    with pytest.raises(RegistryError, match="palette registry migrate --store " + str(tmp_path)):
        FeatureStore(tmp_path).entity("restaurant")
    assert (tmp_path / "registry.json").exists()                      # untouched
    out = subprocess.run([sys.executable, "-m", "palette.cli", "registry", "migrate", "--store", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "moved 3 definitions" in out.stdout
    assert not (tmp_path / "registry.json").exists() and (tmp_path / "registry.json.migrated").exists()
    s = FeatureStore(tmp_path)
    assert s.entity("restaurant").join_keys == {"r_id": "str"}
    assert s.group("restaurant:batch_fg") == batch_fg()
    assert s.registry.usage() == {"m1": ["restaurant:batch_fg:x"]}
    s.register(restaurant(), batch_fg())            # the same definitions: accepted, nothing committed
    assert Registry(tmp_path).table.load()[0] == 0
    again = subprocess.run([sys.executable, "-m", "palette.cli", "registry", "migrate", "--store", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already migrated" in again.stderr


def test_registry_reads_without_spark(store):
    """Reading and searching the registry works in a process where pyspark cannot be imported."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["pyspark"] = None          # any `import pyspark` now raises ImportError
        from palette import FeatureStore
        s = FeatureStore({str(store.root)!r})
        print(s.group("restaurant:batch_fg").max_age.days)
        print([r.id for r in s.search("prep")])
        print("pyspark" in sys.modules and sys.modules["pyspark"] is not None)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["30", "['restaurant:batch_fg:prep_time']", "False"]


@pytest.fixture(params=["local", "s3"])
def shared_root(request, tmp_path, monkeypatch):
    """A registry root several processes share: a local folder, or a prefix in a bucket of a
    real S3-compatible server (commits there are conditional PUTs: If-None-Match)."""
    if request.param == "local":
        return str(tmp_path), {}
    s3 = request.getfixturevalue("s3")
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    return s3.uri(f"registry-{request.node.originalname}"), s3.env()


def _register_many(root, env, worker, n_groups, start):
    os.environ.update(env)
    start.wait()
    reg = Registry(root)
    for i in range(n_groups):
        reg.register(Entity(f"e{worker}", {"k": "str"}),
                     FeatureGroup(f"e{worker}", f"g{worker}_{i}", {f"f{i}": "num"}))


def test_concurrent_registrations_from_processes_all_land(shared_root):
    root, env = shared_root
    workers, per_worker = 4, 5
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_register_many, args=(root, env, w, per_worker, start))
             for w in range(workers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    reg = Registry(root)
    assert set(reg.entities()) == {f"e{w}" for w in range(workers)}
    assert set(reg.groups()) == {f"e{w}:g{w}_{i}" for w in range(workers) for i in range(per_worker)}
    assert Registry(root).table.load()[0] >= 1                 # one table, every registration in it


def _register_type(root, env, feature_type, start, results):
    os.environ.update(env)
    start.wait()
    try:
        Registry(root).register(restaurant(), batch_fg(features={"prep_time": feature_type}))
        results.put((feature_type, "ok"))
    except RegistryError as e:
        results.put((feature_type, str(e)))


def test_concurrent_different_definitions_of_one_group_one_wins_the_other_is_told(shared_root):
    """Delta's optimistic concurrency: the second writer's commit is refused, its registration is
    checked again against the winner's and refused like any incompatible change, never lost."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    root, env = shared_root
    procs = [ctx.Process(target=_register_type, args=(root, env, t, start, results)) for t in ("num", "str")]
    for p in procs:
        p.start()
    start.set()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    winner = Registry(root).group("restaurant:batch_fg").feature("prep_time").type
    loser = "str" if winner == "num" else "num"
    assert outcomes[winner] == "ok"
    assert f"'prep_time' type {winner} -> {loser}" in outcomes[loser] and "registered differently" in outcomes[loser]


# -- search -----------------------------------------------------------------------------------

@pytest.fixture
def catalog(tmp_path):
    s = FeatureStore(tmp_path)
    s.register(
        restaurant(), Entity("courier", {"c_id": "int"}),
        FeatureGroup("restaurant", "batch_fg",
                     [Feature("prep_time", "num", "minutes to prepare", tags=("core",)),
                      Feature("prep_std", "num"), Feature("cuisine", "str")],
                     tags=("eta",), max_age="30d"),
        FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num", "busy": "bool"}, kind="realtime"),
        FeatureGroup("courier", "courier_fg", {"speed": "num", "vehicle": "str"}, tags=("couriers",)),
    )
    return s


def ids(rows):
    return [r.id for r in rows]


def test_search_everything_sorted(catalog):
    assert ids(catalog.search()) == [
        "courier:courier_fg:speed", "courier:courier_fg:vehicle",
        "restaurant:batch_fg:cuisine", "restaurant:batch_fg:prep_std", "restaurant:batch_fg:prep_time",
        "restaurant:realtime_fg:busy", "restaurant:realtime_fg:n_meal"]


def test_search_by_substring(catalog):
    assert ids(catalog.search("prep")) == ["restaurant:batch_fg:prep_std", "restaurant:batch_fg:prep_time"]
    assert ids(catalog.search("MEAL")) == ["restaurant:realtime_fg:n_meal"]


def test_search_by_closeness_when_no_substring_matches(catalog):
    assert ids(catalog.search("prep_tmie")) == ["restaurant:batch_fg:prep_std", "restaurant:batch_fg:prep_time"]
    assert ids(catalog.search("vehicel")) == ["courier:courier_fg:vehicle"]
    assert catalog.search("qqqqqq") == []


def test_search_by_entity_type_tag(catalog):
    assert ids(catalog.search(entity="courier")) == ["courier:courier_fg:speed", "courier:courier_fg:vehicle"]
    assert ids(catalog.search(type="str")) == ["courier:courier_fg:vehicle", "restaurant:batch_fg:cuisine"]
    assert ids(catalog.search(type="bool")) == ["restaurant:realtime_fg:busy"]
    # Group tags apply to all its features; feature tags to the feature.
    assert ids(catalog.search(tag="eta")) == ["restaurant:batch_fg:cuisine", "restaurant:batch_fg:prep_std",
                                             "restaurant:batch_fg:prep_time"]
    assert ids(catalog.search(tag="core")) == ["restaurant:batch_fg:prep_time"]
    assert ids(catalog.search("p", entity="restaurant", type="num")) == [
        "restaurant:batch_fg:prep_std", "restaurant:batch_fg:prep_time"]
    assert catalog.search(entity="nobody") == []


def test_search_result_fields(catalog):
    (row,) = catalog.search("prep_time")
    assert (row.entity, row.group, row.feature, row.type, row.kind) == \
        ("restaurant", "batch_fg", "prep_time", "num", "batch")
    assert row.description == "minutes to prepare"
    assert set(row.tags) == {"eta", "core"}
    assert row.max_age == "30d"
    (rt,) = catalog.search("n_meal")
    assert rt.kind == "realtime" and rt.max_age == ""


def test_search_by_model_via_record_usage(catalog):
    catalog.record_usage("/models/eta_v1", ["restaurant:batch_fg:prep_time:r_id",
                                            "@palette:courier:courier_fg:speed:c_id"])
    catalog.record_usage("/models/eta_v2", ["restaurant:batch_fg:prep_std:r_id"])
    assert ids(catalog.search(model="/models/eta_v1")) == ["courier:courier_fg:speed",
                                                          "restaurant:batch_fg:prep_time"]
    assert ids(catalog.search(model="eta_v2")) == ["restaurant:batch_fg:prep_std"]
    (row,) = catalog.search("prep_time")
    assert row.models == ("/models/eta_v1",)
    # prep_time's usage must not leak to a feature whose name is a prefix of another's.
    (std,) = catalog.search("prep_std")
    assert std.models == ("/models/eta_v2",)
    assert catalog.search(model="/models/nothing") == []


def test_record_usage_replaces_a_models_refs(catalog):
    catalog.record_usage("/m", ["restaurant:batch_fg:prep_time:r_id"])
    catalog.record_usage("/m", ["restaurant:batch_fg:cuisine:r_id", "restaurant:batch_fg:cuisine:r_id"])
    assert catalog.registry.usage() == {"/m": ["restaurant:batch_fg:cuisine:r_id"]}
    assert ids(catalog.search(model="/m")) == ["restaurant:batch_fg:cuisine"]


# -- validation of definitions ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", "", "a:b", "é"])
def test_bad_names_are_refused(name):
    with pytest.raises(RegistryError, match="name"):
        Entity(name, {"k": "str"})
    with pytest.raises(RegistryError, match="name"):
        FeatureGroup("restaurant", name, {"x": "num"})
    with pytest.raises(RegistryError, match="name"):
        Feature(name, "num")
    with pytest.raises(RegistryError, match="name"):
        Entity("e", {name: "str"})
    with pytest.raises(RegistryError, match="name"):
        FeatureGroup("restaurant", "g", {"x": "num"}, timestamp_col=name)


def test_bad_types_and_kinds_are_refused():
    with pytest.raises(RegistryError, match="'float'.*'num'"):
        Feature("x", "float")
    with pytest.raises(RegistryError, match="'float'"):
        FeatureGroup("restaurant", "g", {"x": "float"})
    with pytest.raises(RegistryError, match="'double'"):
        Entity("e", {"k": "double"})
    with pytest.raises(RegistryError, match="kind 'nightly'.*'batch'"):
        FeatureGroup("restaurant", "g", {"x": "num"}, kind="nightly")


def test_empty_and_duplicate_declarations_are_refused():
    with pytest.raises(RegistryError, match="at least one join key"):
        Entity("e", {})
    with pytest.raises(RegistryError, match="at least one feature"):
        FeatureGroup("restaurant", "g", {})
    with pytest.raises(RegistryError, match="x twice"):
        FeatureGroup("restaurant", "g", [Feature("x", "num"), Feature("x", "str")])


@pytest.mark.parametrize("group, clash", [
    (FeatureGroup("restaurant", "g", {"r_id": "str", "x": "num"}), "r_id"),
    (FeatureGroup("restaurant", "g", {"event_ts": "ts"}), "event_ts"),
    (FeatureGroup("restaurant", "g", {"x": "num"}, timestamp_col="r_id"), "r_id"),
], ids=["feature-is-key", "feature-is-timestamp", "timestamp-is-key"])
def test_collisions_with_key_or_timestamp_are_refused(tmp_path, group, clash):
    s = FeatureStore(tmp_path)
    s.register(restaurant())
    with pytest.raises(RegistryError) as err:
        s.register(group)
    assert clash in str(err.value) and "collide" in str(err.value)
    assert s.registry.groups() == {}


def test_register_refuses_other_objects(tmp_path):
    with pytest.raises(RegistryError, match="cannot register dict"):
        FeatureStore(tmp_path).register({"name": "x"})


def dish_emb(version, dim=4, **overrides):
    return FeatureGroup("restaurant", "dish_emb", {"emb": f"vector({dim})"}, kind="embedding", version=version,
                        **overrides)


def test_embedding_versions_are_registered_once_and_each_stored_apart(store):
    store.register(dish_emb(1))
    store.register(dish_emb(1))                                     # the same again: a no-op
    assert store.group("restaurant:dish_emb").id == "restaurant:dish_emb@v1"
    store.register(dish_emb(2, dim=8))                              # a new training may change the dimension
    assert store.group("restaurant:dish_emb").version == 2          # by name: the newest
    assert store.group("restaurant:dish_emb@v1").feature("emb").type == "vector(4)"
    assert store.table_path("restaurant:dish_emb@v1").endswith("tables/restaurant/dish_emb/v1")
    assert store.table_path("restaurant:dish_emb").endswith("tables/restaurant/dish_emb/v2")
    with pytest.raises(RegistryError, match="never overwritten: register the new training as version=3"):
        store.register(dish_emb(1, dim=5))
    store.register(FeatureGroup("restaurant", "other_emb", {"emb": "vector(4)"}, kind="embedding", version=5))
    with pytest.raises(RegistryError, match="already has version 5; register the new training as version=6"):
        store.register(FeatureGroup("restaurant", "other_emb", {"emb": "vector(4)"}, kind="embedding", version=4))
    # a stage resolving by name reads the version it carries, whatever is newer in the store
    from palette.lookup_plan import Definitions
    saved = Definitions.for_refs(["restaurant:dish_emb:emb:r_id"], store.resolve)
    store.register(dish_emb(3))
    pinned = Definitions.from_json(json.loads(json.dumps(saved.to_json())))
    assert pinned.resolve("restaurant:dish_emb:emb:r_id")[1].id == "restaurant:dish_emb@v2"
    assert store.resolve("restaurant:dish_emb:emb:r_id")[1].id == "restaurant:dish_emb@v3"


def test_embedding_groups_need_a_version_and_a_vector():
    with pytest.raises(RegistryError, match="needs version="):
        FeatureGroup("restaurant", "e", {"emb": "vector(4)"}, kind="embedding")
    with pytest.raises(RegistryError, match="needs version="):
        FeatureGroup("restaurant", "e", {"emb": "vector(4)"}, kind="embedding", version=0)
    with pytest.raises(RegistryError, match="holds no vector"):
        FeatureGroup("restaurant", "e", {"n": "num"}, kind="embedding", version=1)
    with pytest.raises(RegistryError, match="only an embedding group"):
        FeatureGroup("restaurant", "e", {"n": "num"}, version=1)
    with pytest.raises(RegistryError, match="unk= is for an embedding"):
        FeatureGroup("restaurant", "e", {"v": "vector(2)"}, unk={"v": [1, 2]})
    with pytest.raises(RegistryError, match="must be 2 finite numbers"):
        FeatureGroup("restaurant", "e", {"v": "vector(2)"}, kind="embedding", version=1, unk={"v": [1, "x"]})
    with pytest.raises(RegistryError, match="names no vector"):
        FeatureGroup("restaurant", "e", {"v": "vector(2)"}, kind="embedding", version=1, unk={"w": [1, 2]})
    from palette.rpc import Fetcher
    with pytest.raises(RegistryError, match="rpc groups cannot hold vectors yet"):
        FeatureGroup("restaurant", "e", {"v": "vector(2)"}, kind="rpc", fetcher=Fetcher(url="http://x/{r_id}"))
    assert FeatureGroup("restaurant", "b", {"v": "vector(2)"}).feature("v").type == "vector(2)"   # batch: fine
    g = FeatureGroup.from_json(dish_emb(7).to_json())
    assert (g.version, g.id, g.base_id) == (7, "restaurant:dish_emb@v7", "restaurant:dish_emb")
    assert "version" not in batch_fg().to_json()                    # other groups' JSON unchanged


def test_a_registry_on_object_storage_without_credentials_says_which_settings(monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RegistryError, match=r"cannot reach the registry table s3a://no-such-bucket/palette/_registry"
                                            r".*AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL"):
        FeatureStore("s3a://no-such-bucket/palette").entity("restaurant")


def test_many_registrations_keep_the_table_compact(tmp_path):
    """Each MERGE adds a file; past a few dozen they are compacted, so reads stay a few GETs."""
    from deltalake import DeltaTable

    from palette.registry_table import COMPACT_AT
    s = FeatureStore(tmp_path)
    s.register(restaurant())
    for i in range(COMPACT_AT + 8):
        s.register(FeatureGroup("restaurant", f"g{i}", {"x": "num"}))
    files = DeltaTable(str(tmp_path / "_registry")).file_uris()
    assert len(files) <= COMPACT_AT
    assert len(Registry(tmp_path).groups()) == COMPACT_AT + 8
    assert "OPTIMIZE" in [h["operation"] for h in DeltaTable(str(tmp_path / "_registry")).history()]


def test_registry_commands_exit_cleanly_every_time(store):
    """delta-rs's Arrow export made some processes abort at exit (134): the registry is read
    file by file instead."""
    for _ in range(4):
        out = subprocess.run([sys.executable, "-m", "palette.cli", "registry", "export", "--store", str(store.root)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["feature_groups"]["restaurant:batch_fg"]["max_age_seconds"] == 30 * 86400


def test_a_check_and_its_commit_see_one_version_across_threads(tmp_path):
    """Another thread reading through the same store between a registration's check and its
    commit must not let a stale definition overwrite one committed meanwhile elsewhere."""
    import threading
    s = FeatureStore(tmp_path)
    s.register(restaurant())
    other = Registry(tmp_path)                        # another writer (another process, in effect)
    stop = threading.Event()
    reader = threading.Thread(target=lambda: [s.registry.groups() for _ in iter(stop.is_set, True)])
    reader.start()
    try:
        outcomes = []
        for i in range(20):
            errors = []
            threads = [threading.Thread(target=lambda r=r, t=t: _try(r, t, i, errors))
                       for r, t in ((s.registry, "num"), (other, "str"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winner = Registry(tmp_path).group(f"restaurant:g{i}").feature("x").type
            outcomes.append((winner, sorted(errors)))
    finally:
        stop.set()
        reader.join()
    for winner, errors in outcomes:                    # exactly one definition landed; the other was told
        loser = "str" if winner == "num" else "num"
        assert errors == [loser], outcomes


def _try(registry, feature_type, i, errors):
    try:
        registry.register(FeatureGroup("restaurant", f"g{i}", {"x": feature_type}))
    except RegistryError:
        errors.append(feature_type)
