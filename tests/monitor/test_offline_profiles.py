"""Offline profiles: a group's Delta table profiled by event-time window in Spark, into
palette_profiles; reruns profile only the windows whose rows changed."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from palette import Entity, FeatureGroup, FeatureStore
from palette.errors import InvalidArgument
from palette.monitor.offline import profile_groups
from palette.monitor.profile import Profile
from palette.monitor.table import profiles_path

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
G = "restaurant:stats_fg"


def _rows(rng, hours, start_hour=0, n_per_hour=500, city_shift=0.0):
    out = []
    for h in range(start_hour, start_hour + hours):
        n = n_per_hour
        cities = rng.choice(["sf", "la"], n)
        prep = rng.normal(10, 2, n) + np.where(cities == "la", city_shift, 0.0)
        prep[rng.random(n) < 0.02] = np.nan
        out.append(pd.DataFrame({"r_id": [f"r{i}" for i in range(n)], "prep": prep, "city": cities,
                                 "open": rng.random(n) < 0.9,
                                 "event_ts": [T0 + timedelta(hours=h, seconds=int(s)) for s in rng.integers(0, 3600, n)]}))
    df = pd.concat(out, ignore_index=True)
    df.loc[df.index[::50], "city"] = None
    return df


@pytest.fixture
def stats_store(tmp_path):
    s = FeatureStore(tmp_path / "store")
    s.register(Entity("restaurant", {"r_id": "str"}),
               FeatureGroup("restaurant", "stats_fg", {"prep": "num", "city": "str", "open": "bool"},
                            slices=("city",)))
    return s


def _profiles(spark, store, where="slice = ''"):
    return spark.read.format("delta").load(profiles_path(store.root)).where(where).toPandas()


def test_windows_are_profiled_then_only_changed_windows_are_profiled_again(spark_session, stats_store):
    rng = np.random.default_rng(0)
    first = _rows(rng, 6)
    schema = "r_id string, prep double, city string, open boolean, event_ts timestamp"
    stats_store.ingest(spark_session.createDataFrame(first, schema), G)
    [run] = profile_groups(spark_session, stats_store, [G], window="1h")
    assert (run.windows, run.method) == (6, "full")
    p = _profiles(spark_session, stats_store)
    assert set(p.feature) == {"prep", "city", "open", "event_ts"} and len(p) == 24
    # the profile of hour 2's prep equals a profile of those rows built directly
    hour2 = first[(first.event_ts >= T0 + timedelta(hours=2)) & (first.event_ts < T0 + timedelta(hours=3))]
    row = p[(p.feature == "prep") & (p.window_start == pd.Timestamp(T0 + timedelta(hours=2)).tz_localize(None))]
    [sketch] = row.sketch
    got, want = Profile.from_bytes(bytes(sketch)), Profile.of(hour2.prep.to_numpy())
    assert (got.count, got.nans, got.min, got.max) == (want.count, want.nans, want.min, want.max)
    assert got.mean == pytest.approx(want.mean, rel=1e-12) and row.null_rate.iloc[0] == pytest.approx(
        want.nans / want.count)
    city = p[(p.feature == "city")].iloc[0]
    assert city.kind == "cat" and city.nulls == 10 and round(city.distinct) == 2
    # slices: per city, besides overall
    sliced = _profiles(spark_session, stats_store, "slice != ''")
    assert set(sliced.slice) == {"city=sf", "city=la", "city=null"}

    assert profile_groups(spark_session, stats_store, [G], window="1h")[0].method == "up to date"
    later = _rows(rng, 2, start_hour=5)                  # hour 5 gets more rows, hour 6 is new
    stats_store.ingest(spark_session.createDataFrame(later, schema), G)
    [run] = profile_groups(spark_session, stats_store, [G], window="1h")
    assert (run.windows, run.method) == (2, "change data feed")
    p = _profiles(spark_session, stats_store)
    assert len(p) == 28 and len(p[p.computed_at == p.computed_at.max()]) == 8   # hours 5 and 6 rewritten
    hour5 = p[(p.feature == "prep") & (p.window_start == pd.Timestamp(T0 + timedelta(hours=5)).tz_localize(None))]
    assert hour5.rows.iloc[0] == 1000


def test_a_slice_column_the_table_lacks_is_refused(spark_session, tmp_path):
    s = FeatureStore(tmp_path / "store")
    s.register(Entity("restaurant", {"r_id": "str"}),
               FeatureGroup("restaurant", "stats_fg", {"prep": "num"}, slices=("region",)))
    s.ingest(spark_session.createDataFrame([("r1", 1.0, T0)], "r_id string, prep double, event_ts timestamp"), G)
    with pytest.raises(InvalidArgument, match="slices by region, which its table does not have"):
        profile_groups(spark_session, s, [G])


def test_a_shift_in_one_city_and_a_stale_feed_are_reported(spark_session, stats_store, tmp_path):
    from palette.monitor.groups import group_report
    now = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)     # daily windows align
    rng = np.random.default_rng(5)
    frames = []
    for day in range(8):                                 # seven reference days, then a day where LA shifts
        start = now - timedelta(days=8 - day)
        df = _rows(rng, 1, n_per_hour=4000, city_shift=1.0 if day == 7 else 0.0)
        df["event_ts"] = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 86400, len(df))]
        frames.append(df)
    schema = "r_id string, prep double, city string, open boolean, event_ts timestamp"
    stats_store.ingest(spark_session.createDataFrame(pd.concat(frames, ignore_index=True), schema), G)
    profile_groups(spark_session, stats_store, [G], window="1d")
    report = group_report(spark_session, stats_store, G, last=timedelta(days=1), reference=timedelta(days=7),
                          now=now, max_staleness=timedelta(hours=6))
    alerts = {(t.feature, t.test) for t in report.alerts}
    assert ("prep [city=la]", "ks") in alerts and ("prep [city=sf]", "ks") not in alerts, str(report)
    assert report.ok is False and "freshness" not in " ".join(str(m) for m in report.breaches)
    stale = group_report(spark_session, stats_store, G, last=timedelta(days=1), reference=timedelta(days=7),
                         now=now + timedelta(days=2), max_staleness=timedelta(hours=6))
    [fresh] = [m for m in stale.quality if m.name.startswith("freshness")]
    assert fresh.status == "fail" and fresh.value > 86400
    assert "no profiled rows in the last 1d" in str(stale)
    profile_groups(spark_session, stats_store, [G], window="12h")          # a second width, side by side
    with pytest.raises(InvalidArgument, match=r"several window widths \(12h, 1d\): choose one"):
        group_report(spark_session, stats_store, G, last=timedelta(days=1), reference=timedelta(days=7), now=now)
    again = group_report(spark_session, stats_store, G, last=timedelta(days=1), reference=timedelta(days=7),
                         now=now, window=timedelta(days=1))
    assert {(t.feature, t.test) for t in again.alerts} == alerts
    from palette.cli import main
    out = tmp_path / "r.json"
    hours = int((datetime.now(timezone.utc) - now).total_seconds() // 3600) + 24
    assert main(["monitor", "report", G, "--store", str(stats_store.root), "--last", f"{hours}h", "--reference",
                 "7d", "--window", "1d", "--json", str(out)]) == 1
    import json
    assert any(t["alert"] and t["feature"] == "prep [city=la]" for t in json.loads(out.read_text())["tests"])


def test_served_profiles_reach_the_table_once_per_window_and_again_when_a_replica_adds_one(spark_session,
                                                                                          stats_store, tmp_path):
    import os
    import socket
    import time as clock

    from palette.monitor.offline import ingest_served
    from palette.monitor.served import write_window
    logs = tmp_path / "logs" / "_profiles"
    start = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc).timestamp()
    for minute in range(2):
        write_window(logs, "eta", "v1", start + 60 * minute, start + 60 * (minute + 1), 10,
                     {"order_size": Profile.of(np.arange(10.0)), "r_id": Profile.of(["a"] * 10, "cat")})
    assert ingest_served(spark_session, stats_store, str(tmp_path / "logs")) == {"eta": 4}
    assert ingest_served(spark_session, stats_store, str(tmp_path / "logs")) == {"eta": 0}     # nothing new
    clock.sleep(0.01)
    other = Path(write_window(tmp_path / "other", "eta", "v1", start, start + 60, 5,      # another replica's file
                              {"order_size": Profile.of(np.arange(5.0))}))
    other.rename(logs / "eta" / other.name.replace(f"-{socket.gethostname()}-{os.getpid()}", "-otherhost-7"))
    assert ingest_served(spark_session, stats_store, str(tmp_path / "logs")) == {"eta": 2}     # that window again
    rows = _profiles(spark_session, stats_store, "source = 'served'")
    assert len(rows) == 4 and set(rows.subject) == {"eta"}
    first = rows[(rows.feature == "order_size") & (rows.window_start == pd.Timestamp("2026-12-07 10:00:00"))]
    assert first.rows.iloc[0] == 15                      # both processes' files of the window, merged
