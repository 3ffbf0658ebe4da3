"""Served profiles in the serving process's own terms: bounded buffers, folded per window,
one file per model, window and process, merged by the reader."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from palette.monitor.served import ServedProfiler, read_served, write_window


class _Tuple(tuple):
    fallbacks = None


def _read(column, group, features, rpc=False):
    return SimpleNamespace(column=column, group_id=group, read=SimpleNamespace(features=features),
                           rpc=object() if rpc else None)


def _scorer():
    reads = [_read("__r0", "restaurant:batch_fg", ["prep_time"]),
             _read("__r1", "restaurant:kitchen_rpc", ["queue_minutes"], rpc=True)]
    return SimpleNamespace(fetch_points={0: reads})


def test_a_window_holds_what_the_model_was_fed_with_ages_and_fallbacks(tmp_path):
    p = ServedProfiler("eta", _scorer(), window_seconds=60)
    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 60
    for i in range(1000):
        at = t0 + i * 0.05
        prep = None if i % 10 == 0 else float(i % 7)
        fetched_rpc = _Tuple((2.5, int((at - 1) * 1e6)))
        if i % 4 == 0:
            fetched_rpc = _Tuple((0.0, int(at * 1e6)))
            fetched_rpc.fallbacks = ["timeout"]
        rows = [{"r_id": f"r{i % 13}", "prep_time": prep, "queue_minutes": 2.5, "features": np.zeros(3),
                 "prediction": 30.0 + i % 5}]
        got = {"__r0": None if prep is None else (prep, int((at - 600) * 1e6)), "__r1": fetched_rpc}
        p.record(rows, [got], at)
    p.fold()
    assert p.finished(t0 + 59) == []                                   # the window has not ended
    [(start, end, requests, profiles)] = p.finished(t0 + 60)
    assert (start, end, requests) == (t0, t0 + 60, 1000)
    assert "features" not in profiles                                   # vectors are not profiled
    assert profiles["prep_time"].null_rate == 0.1 and profiles["r_id"].kind == "cat"
    age = profiles["@restaurant:batch_fg:age_s"]
    assert (age.nulls, age.min, age.max) == (100, 600.0, 600.0)
    assert dict(profiles["@restaurant:kitchen_rpc:queue_minutes:fallback"].top()) == {"fetched": 750, "timeout": 250}
    assert profiles["prediction"].mean == pytest.approx(32.0)


def test_windows_from_two_processes_merge_and_the_buffer_is_bounded(tmp_path):
    p = ServedProfiler("eta", SimpleNamespace(fetch_points={}), window_seconds=60, max_pending=10)
    for i in range(25):
        p.record([{"x": float(i)}], [], 120.0 + i)
    assert p.dropped == 15
    p.fold()
    [(start, end, n, profiles)] = p.finished(200.0)
    write_window(tmp_path, "eta", "v1", start, end, n, profiles)
    other = tmp_path / "eta" / "19700101T000200Z-19700101T000300Z-otherhost-7.json"   # another replica's file
    doc = json.loads(next((tmp_path / "eta").glob("*.json")).read_text())
    other.write_text(json.dumps({**doc, "requests": 10}))
    [w] = read_served(tmp_path, "eta")
    assert w["requests"] == 20 and w["profiles"]["x"].count == 20 and w["profiles"]["x"].max == 9.0
