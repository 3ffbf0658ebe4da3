"""One table of feature types (palette.feature_types): every place a value goes asks it, so
each type has every form, and each consumer knows every type."""
import math
from datetime import datetime, timezone

import pytest

from palette.errors import RegistryError
from palette.feature_types import FEATURE_TYPES, KEYS, TYPES, feature_type, field_type
from palette.online import RecordCodec
from palette.registry import Feature

SAMPLES = {"num": [0.0, -0.0, 1.5, -1e308, math.inf], "str": ["", "é", "x" * 300], "bool": [True, False],
           "ts": [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), datetime(1970, 1, 1, tzinfo=timezone.utc)]}


def test_every_type_has_a_sample_and_every_form():
    assert set(SAMPLES) == set(TYPES)
    for name, t in TYPES.items():
        assert t.spark and t.json and t.mlflow and t.dsl and t.describe, name
        assert t.arrow_type() is not None
        assert all(t.holds(v) for v in SAMPLES[name]), name


@pytest.mark.parametrize("name", FEATURE_TYPES)
def test_every_type_round_trips_the_online_codec_with_nulls(name):
    codec = RecordCodec([name, name])
    for v in SAMPLES[name]:
        assert codec.decode(codec.encode((v, None))) == (v, None)


def test_the_registry_takes_exactly_the_table_s_types():
    for name in FEATURE_TYPES:
        assert Feature("x", name).type == name
    with pytest.raises(RegistryError, match="use one of"):
        Feature("x", "vector")
    with pytest.raises(RegistryError, match="unknown feature type 'vector'"):
        feature_type("vector")


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
    from palette.offline import FEATURE_SPARK_TYPES, KEY_SPARK_TYPES
    assert {n: t.simpleString() for n, t in FEATURE_SPARK_TYPES.items()} == {n: t.spark for n, t in TYPES.items()}
    assert {n: t.simpleString() for n, t in KEY_SPARK_TYPES.items()} == {n: t.spark for n, t in KEYS.items()}
