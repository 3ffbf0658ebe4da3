"""Profiles: exact counts and moments, merges equal to one profile of all the rows, compact bytes."""
import numpy as np
import pytest

from palette.errors import InvalidArgument, PaletteError
from palette.monitor.profile import Profile, merged


def test_minutes_merge_into_the_day_they_make():
    rng = np.random.default_rng(1)
    minutes = [rng.lognormal(1, 0.5, 700) for _ in range(1440)]
    minutes[5][:10] = np.nan
    day = Profile.of(np.concatenate(minutes))
    merged_day = merged(Profile.from_bytes(Profile.of(m).to_bytes()) for m in minutes)
    assert (merged_day.count, merged_day.nans, merged_day.min, merged_day.max) == (day.count, 10, day.min, day.max)
    assert merged_day.mean == pytest.approx(day.mean, rel=1e-12)
    assert merged_day.variance == pytest.approx(day.variance, rel=1e-9)
    values = np.sort(np.concatenate(minutes)[~np.isnan(np.concatenate(minutes))])
    for q in (0.01, 0.5, 0.99):                 # quantiles within the sketch's rank error of the true ones
        rank = np.searchsorted(values, merged_day.quantiles([q])[0]) / len(values)
        assert abs(rank - q) <= merged_day.rank_error


def test_a_numeric_profile_stays_under_6_kb_at_ten_million_values():
    p = Profile.of(np.random.default_rng(2).normal(size=10_000_000))
    assert len(p.to_bytes()) <= 6 * 1024
    assert p.rank_error < 0.006


def test_categories_count_nulls_and_merge():
    a = Profile.of(["a", "b", "a", None, True], "cat")
    b = Profile.of(np.array(["a", "c", None], dtype=object), "cat")
    ab = Profile.from_bytes(a.merge(b).to_bytes())
    assert (ab.count, ab.nulls, ab.top(1)) == (8, 2, [("a", 3)])
    assert dict(ab.top(10)) == {"a": 3, "b": 1, "true": 1, "c": 1}
    assert round(ab.distinct) == 4 and ab.summary()["null_rate"] == 0.25


def test_timestamps_profile_as_epoch_seconds():
    ts = np.array(["2026-12-01T00:00:00", "NaT", "2026-12-01T00:01:00"], dtype="datetime64[us]")
    p = Profile.of(ts)
    assert (p.nulls, p.max - p.min) == (1, 60.0)


def test_mismatched_merges_and_kinds_are_refused():
    with pytest.raises(InvalidArgument, match="cannot merge a cat profile into a num profile") as e:
        Profile.of([1.0]).merge(Profile.of(["a"], "cat"))
    assert isinstance(e.value, PaletteError)
    with pytest.raises(InvalidArgument, match="unknown profile kind 'vec'"):
        Profile("vec")
