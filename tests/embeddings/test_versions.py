"""Which embedding version a stage reads, without Spark: the version it first resolved or
was saved with, a ref naming a version, the Delta versions pinned, and registrations that
would make a name ambiguous. (The stage's params need no JVM.)"""
import pytest

from palette import Entity, FeatureGroup, FeatureStore, PaletteTransformer
from palette.errors import RegistryError
from palette.feature_types import TYPES, feature_type
from palette.lookup_plan import Definitions
from palette.online import RecordCodec


def emb(version, features=None, **kw):
    return FeatureGroup("restaurant", "dish_emb", features or {"emb": "vector(4)", "n": "num"}, kind="embedding",
                        version=version, **kw)


@pytest.fixture
def store(tmp_path):
    s = FeatureStore(tmp_path / "store")
    s.register(Entity("restaurant", {"r_id": "str"}), emb(1))
    return s


def test_a_stage_keeps_the_version_it_first_read_and_refs_may_name_one(store):
    tx = PaletteTransformer({"e": "restaurant:dish_emb:emb:r_id", "n": "restaurant:dish_emb:n:r_id"},
                            storeRoot=store.root)
    assert sorted(tx.featureDefinitions().groups) == ["restaurant:dish_emb@v1"]
    store.register(emb(2, {"emb": "vector(4, int8)"}))           # a compressed version: the vector only
    resolve = tx._resolver()
    assert resolve("restaurant:dish_emb:n:r_id")[1].id == "restaurant:dish_emb@v1"   # pinned, checked against v1
    assert resolve("restaurant:dish_emb@v2:emb:r_id")[1].id == "restaurant:dish_emb@v2"
    fresh = PaletteTransformer({"old": "restaurant:dish_emb@v1:emb:r_id", "new": "restaurant:dish_emb:emb:r_id"},
                               storeRoot=store.root)
    defs = fresh.featureDefinitions()
    assert sorted(defs.groups) == ["restaurant:dish_emb@v1", "restaurant:dish_emb@v2"]
    saved = Definitions.from_json(defs.to_json())                  # what serving resolves from the saved stage
    assert saved.resolve("restaurant:dish_emb:emb:r_id")[1].id == "restaurant:dish_emb@v2"
    assert saved.resolve("restaurant:dish_emb@v1:emb:r_id")[1].id == "restaurant:dish_emb@v1"
    copied = tx.copy()
    copied._pins.clear()
    assert tx._pins                                                # a copy pins apart


def test_a_name_is_an_embedding_s_or_a_group_s_not_both(store):
    with pytest.raises(RegistryError, match="is an embedding group's name"):
        store.register(FeatureGroup("restaurant", "dish_emb", {"x": "num"}))
    store.register(FeatureGroup("restaurant", "plain", {"x": "num"}))
    with pytest.raises(RegistryError, match="needs a name of its own"):
        store.register(FeatureGroup("restaurant", "plain", {"v": "vector(2)"}, kind="embedding", version=1))
    with pytest.raises(RegistryError, match="for embedding versions written by `palette embeddings compress`"):
        FeatureGroup("restaurant", "b", {"v": "vector(2, int8)"})


def test_vector_values_must_fit_their_type():
    assert not TYPES["vector(2)"].holds([3.5e38, 0]) and TYPES["vector(2, float64)"].holds([3.5e38, 0])
    with pytest.raises(RegistryError, match="a dimension is between 1 and 65536"):
        feature_type("vector(0)")
    with pytest.raises(RegistryError, match="feature 'x': vector\\(70000\\): a dimension is between"):
        emb(1, {"x": "vector(70000)"})
    with pytest.raises(ValueError, match="holds 5 numbers, not 4"):
        RecordCodec(["vector(4)", "num"]).encode(([1, 2, 3, 4, 5], 1.0))
