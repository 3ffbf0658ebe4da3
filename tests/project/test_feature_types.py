"""One table of feature types (palette.feature_types): every place a value goes asks it, so
each type has every form, and each consumer knows every type."""
import math
from datetime import datetime, timezone

import pytest

from palette.errors import RegistryError
from palette.feature_types import FEATURE_TYPES, KEYS, TYPES, feature_type, field_type
from palette.online import RecordCodec
from palette.registry import Feature

import numpy as np

SAMPLES = {"num": [0.0, -0.0, 1.5, -1e308, math.inf], "str": ["", "é", "x" * 300], "bool": [True, False],
           "ts": [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), datetime(1970, 1, 1, tzinfo=timezone.utc)],
           "vector(3)": [np.array([0.5, -0.0, 3e38], np.float32), np.array([1e-45, 0.0, -1.0], np.float32)],
           "vector(3, float64)": [np.array([1e308, -0.0, 5e-324])],
           "vector(3, float16)": [np.array([0.5, -0.0, 65504.0])],
           "vector(3, int8)": [np.array([127.0, -127.0, 0.0]) * np.float32(0.25)]}
NAMES = tuple(SAMPLES)


def test_every_type_has_a_sample_and_every_form():
    assert set(TYPES) <= set(SAMPLES)
    assert [n for n in FEATURE_TYPES if n not in SAMPLES] == ["vector(d)"]
    for name in NAMES:
        t = TYPES[name]
        assert t.spark and t.json and t.mlflow and t.dsl and t.describe, name
        assert t.arrow_type() is not None
        assert all(t.holds(v) for v in SAMPLES[name]), name


@pytest.mark.parametrize("name", NAMES)
def test_every_type_round_trips_the_online_codec_with_nulls(name):
    codec = RecordCodec([name, name, "num"])
    for v in SAMPLES[name]:
        got = codec.decode(codec.encode((v, None, 1.0)))
        if TYPES[name].dim:                                  # bit for bit, as float64 arrays
            assert got[0].dtype == np.float64 and got[0].tobytes() == np.asarray(v, np.float64).tobytes(), got
            assert got[1:] == (None, 1.0)
        else:
            assert got == (v, None, 1.0)


def test_the_registry_takes_exactly_the_table_s_types():
    for name in NAMES:
        assert Feature("x", name).type == name
    assert Feature("x", "vector(3,int8)").type == "vector(3, int8)"          # one spelling
    with pytest.raises(RegistryError, match="needs its dimension"):
        Feature("x", "vector")
    for bad in ("vector(0)", "vector(3, int4)", "vector(-1)", "vector(70000)"):
        with pytest.raises(RegistryError, match="use one of|dimension"):
            Feature("x", bad)
    with pytest.raises(RegistryError, match="unknown feature type 'vector'"):
        feature_type("vector")


def test_vector_checks_and_forms():
    t = field_type("vector(3)")
    assert t.accepts([1, 2, 3]) and t.accepts(np.zeros(3, np.float32)) and t.accepts((1.0, 2.0, 3.0))
    for bad in ([1, 2], [1, 2, "3"], [1, 2, float("nan")], [1, 2, math.inf], "abc", 3, np.zeros((3, 1)),
                [True, 1, 2], None and [1]):
        assert not t.accepts(bad), bad
    assert t.from_json([1, 2, 3]).dtype == np.float32 and list(t.from_text("[1, 2, 3.5]")) == [1, 2, 3.5]
    with pytest.raises(ValueError, match="not 3 finite numbers"):
        t.from_json([1, 2])
    with pytest.raises(ValueError, match="JSON array"):
        t.from_text("1,2,3")
    assert (t.spark, t.slot, t.online_bytes) == ("array<float>", "vector", 12)
    assert TYPES["vector(128, int8)"].online_bytes == 132 and TYPES["vector(128, float16)"].online_bytes == 256


def test_request_checks_and_text_forms():
    assert field_type("num").accepts(3) and not field_type("num").accepts(True) and not field_type("num").accepts("3")
    assert field_type("int").accepts(3) and not field_type("int").accepts(3.0)
    assert field_type("ts").accepts("2026-01-01T00:00:00Z") and field_type("any") is None
    assert field_type("num").from_text("2.5") == 2.5 and field_type("int").from_text("7") == 7
    assert field_type("bool").from_text("TRUE") is True and field_type("bool").from_text("0") is False
    with pytest.raises(ValueError):
        field_type("bool").from_text("maybe")


def test_consumers_cover_every_type():
    from palette.logs.writer import FEATURE
    from palette.mlflow.lineage import MLFLOW_TYPES
    slots = {FEATURE.field(i).name for i in range(FEATURE.num_fields)}
    assert set(TYPES) <= slots
    assert set(MLFLOW_TYPES) == set(TYPES) | set(KEYS)


def test_the_offline_store_maps_every_type_to_spark():          # pyspark's types, no JVM
    from palette.offline import spark_type
    for name in (*TYPES, *KEYS, "vector(3)", "vector(3, float64)", "vector(3, int8)"):
        assert spark_type(name).simpleString() == (TYPES.get(name) or KEYS[name]).spark


def test_quantized_vector_columns_encode_as_their_rows_do():
    rng = np.random.default_rng(1)
    for storage in ("int8", "float16"):
        codec = RecordCodec([f"vector(16, {storage})", "num"])
        vectors = [rng.normal(size=16).astype(np.float32) * 10.0 ** rng.integers(-30, 30) for _ in range(50)]
        vectors[3] = None
        vectors[7] = np.zeros(16)
        columns = codec.encode_columns([vectors, [1.0] * 50])
        assert [codec.encode(r) for r in zip(*columns)] == [codec.encode(r) for r in zip(vectors, [1.0] * 50)]
