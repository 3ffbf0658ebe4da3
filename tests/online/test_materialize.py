"""Materialization from Delta into the online stores: full and incremental runs, late
data, corrections and deletes, tables without a change data feed, rebuilds, bad input —
and a job killed at several points, finished by its rerun."""
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from delta.tables import DeltaTable

from palette import (Entity, FeatureGroup, FeatureStore, MaterializeError, NotRegistered, OnlineSchemaMismatch,
                     OnlineStoreUnavailable)
from palette.online import Record, encode_key, open_store
from palette.online.codec import micros

NOW = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
SCHEMA = "r_id string, event_ts timestamp, prep double, cuisine string"
G = "restaurant:batch_fg"


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


@pytest.fixture
def store(tmp_path, spark_session):
    s = FeatureStore(tmp_path / "store")
    s.register(Entity("restaurant", {"r_id": "str"}),
               FeatureGroup("restaurant", "batch_fg", {"prep": "num", "cuisine": "str"}, max_age="30d"))
    return s


def history(n_keys=200):
    rows = []
    for i in range(n_keys):
        for h in range(i % 3 + 1):
            rows.append((f"r{i}", at(10 + 5 * h), float(i * 10 + h), None if i % 11 == 0 else f"c{h}"))
    return rows


def ingest(spark, store, rows):
    return store.ingest(spark.createDataFrame(rows, SCHEMA), G)


def offline_latest(spark, store) -> dict:
    """What the online store must hold: the latest row per key at the table's version."""
    from palette import offline
    g = store.group(G)
    latest = offline.latest_rows(store.read(G, spark), store.entity(g.entity), g).collect()
    return {r.r_id: (micros(r.event_ts), r.prep, r.cuisine) for r in latest}


def online_view(url, keys) -> dict:
    s = open_store(url, clock=lambda: NOW.replace(tzinfo=timezone.utc).timestamp())
    layout = s.layout(G)
    (found,) = s.read([(layout, [encode_key((k,), ("str",)) for k in keys])])
    codec = layout.codec()
    out = {k: (f[0], *codec.decode(f[1])) for k, f in zip(keys, found) if f is not None}
    s.close()
    return out


def assert_in_sync(spark, store, url, extra_keys=()):
    want = offline_latest(spark, store)
    got = online_view(url, sorted(set(want) | set(extra_keys)))
    assert got == want
    assert open_store(url).count(G) == len(want)


@pytest.fixture(params=["sqlite", "redis"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/online.db"
    return request.getfixturevalue("redis_url") + f"?timeout_ms=2000&prefix=m{time.monotonic_ns()}"


def test_first_run_is_full_then_incremental_with_late_rows_corrections_and_deletes(spark_session, store, url):
    v1 = ingest(spark_session, store, history())["version"]
    first = store.materialize(online_store=url, spark=spark_session)[G]
    assert (first["mode"], first["rows"], first["version"]) == ("full", 200, v1)
    assert_in_sync(spark_session, store, url)
    assert open_store(url).watermark(G)["version"] == v1
    again = store.materialize(online_store=url, spark=spark_session)[G]
    assert (again["mode"], again["rows"]) == ("up to date", 0)

    # New rows for 3 keys, a late row (an old event time) for a new key and for an old
    # one (not its latest), and a correction of r5's latest row at the same event time.
    late = [("r1", at(1), 111.0, "new"), ("r2", at(2), 222.0, "new"), ("r3", at(3), 333.0, None),
            ("late_key", at(300), 7.0, "late"), ("r4", at(400), -4.0, "older than r4's latest"),
            ("r5", at(10), 55.5, "corrected")]
    v2 = ingest(spark_session, store, late)["version"]
    second = store.materialize(online_store=url, spark=spark_session)[G]
    assert (second["mode"], second["rows"], second["version"]) == ("change data feed", 6, v2)
    assert_in_sync(spark_session, store, url)
    assert online_view(url, ["late_key", "r5"]) == {"late_key": (micros(at(300)), 7.0, "late"),
                                                     "r5": (micros(at(10)), 55.5, "corrected")}

    # Deletes: r1's newest row (r1 falls back to its previous one) and every row of r2.
    table = DeltaTable.forPath(spark_session, store.table_path(G))
    table.delete(f"r_id = 'r1' AND event_ts = '{at(1):%Y-%m-%d %H:%M:%S}'")
    table.delete("r_id = 'r2'")
    third = store.materialize(online_store=url, spark=spark_session)[G]
    assert third["rows"] == 2
    assert online_view(url, ["r1", "r2"]) == {"r1": (micros(at(10)), 10.0, "c0")}
    assert_in_sync(spark_session, store, url, extra_keys=["r2"])


def test_an_increment_of_inserts_only_is_read_off_the_change_feed(spark_session, store, url):
    """Ingests that only add rows (new keys, newer rows, a late row older than its key's
    latest) are materialized from the change data feed alone, and land as the table's
    latest view; a correction in a later ingest falls back to reading the changed keys."""
    ingest(spark_session, store, history())
    store.materialize(online_store=url, spark=spark_session)
    ingest(spark_session, store, [("r1", at(1), 1.5, "newer"), ("fresh", at(2), 2.5, None),
                                  ("r4", at(400), -4.0, "older than r4's latest")])
    ingest(spark_session, store, [("r1", at(0.5), 3.5, "newer still"), ("fresh2", at(3), None, "x")])
    result = store.materialize(online_store=url, spark=spark_session)[G]
    assert (result["mode"], result["rows"]) == ("change data feed, inserts only", 4)
    assert_in_sync(spark_session, store, url)
    assert online_view(url, ["r1"])["r1"][1:] == (3.5, "newer still")
    ingest(spark_session, store, [("r1", at(0.5), 4.5, "corrected")])          # the same key and time: a MERGE update
    assert store.materialize(online_store=url, spark=spark_session)[G]["mode"] == "change data feed"
    assert_in_sync(spark_session, store, url)


def test_table_without_change_data_feed_is_diffed(spark_session, store, tmp_path):
    url = f"sqlite:///{tmp_path}/online.db"
    ingest(spark_session, store, history(50))
    spark_session.sql(f"ALTER TABLE delta.`{store.table_path(G)}` SET TBLPROPERTIES "
                      "(delta.enableChangeDataFeed = false)")
    store.materialize(online_store=url, spark=spark_session)
    ingest(spark_session, store, [("r1", at(1), 1.5, "x"), ("new", at(2), 2.5, None)])
    DeltaTable.forPath(spark_session, store.table_path(G)).delete("r_id = 'r7'")
    result = store.materialize(online_store=url, spark=spark_session)[G]
    assert (result["mode"], result["rows"]) == ("version diff", 3)
    assert_in_sync(spark_session, store, url, extra_keys=["r7"])


def test_full_rebuild_removes_what_the_table_no_longer_holds_and_keeps_newer_values(spark_session, store, tmp_path):
    url = f"sqlite:///{tmp_path}/online.db"
    ingest(spark_session, store, history(30))
    store.materialize(online_store=url, spark=spark_session)
    online = open_store(url)
    layout = online.layout(G)
    codec = layout.codec()
    stream_ts = micros(at(0.5))
    online.write(layout, [Record("ghost", micros(at(50)), codec.encode((1.0, "not in Delta")), micros(at(50)), 0),
                          Record("r3", stream_ts, codec.encode((3.0, "from a stream")), stream_ts, 0)])
    result = store.materialize(online_store=url, full=True, spark=spark_session)[G]
    assert (result["mode"], result["rows"]) == ("full", 30)
    assert online_view(url, ["ghost", "r3"]) == {"r3": (stream_ts, 3.0, "from a stream")}
    assert online.count(G) == 30


def test_recreated_table_is_rebuilt(spark_session, store, tmp_path):
    import shutil
    url = f"sqlite:///{tmp_path}/online.db"
    ingest(spark_session, store, history(20))
    store.materialize(online_store=url, spark=spark_session)
    shutil.rmtree(store.table_path(G))
    ingest(spark_session, store, [("only", at(1), 1.0, "one")])
    result = store.materialize(online_store=url, spark=spark_session)[G]
    assert result["mode"] == "full"
    assert_in_sync(spark_session, store, url, extra_keys=["r1"])


def test_bad_input_fails_before_anything_is_written(spark_session, store, tmp_path):
    url = f"sqlite:///{tmp_path}/online.db"
    ingest(spark_session, store, history(10))
    with pytest.raises(NotRegistered, match="unknown feature group 'restaurant:batch_f'.*batch_fg"):
        store.materialize([G, "restaurant:batch_f"], online_store=url, spark=spark_session)
    assert not os.path.exists(f"{tmp_path}/online.db")
    with pytest.raises(OnlineStoreUnavailable, match="redis://127.0.0.1:1/0"):
        store.materialize(online_store="redis://127.0.0.1:1/0?timeout_ms=100&write_timeout_ms=100",
                          spark=spark_session)
    store.register(FeatureGroup("restaurant", "empty_fg", {"x": "num"}))
    with pytest.raises(MaterializeError, match="restaurant:empty_fg has no data yet.*ingest"):
        store.materialize(["restaurant:empty_fg"], online_store=url, spark=spark_session)
    # The online store holds the group with another type: refused, naming it, before any group is written.
    other = open_store(f"sqlite:///{tmp_path}/other.db")
    other.setup(Entity("restaurant", {"r_id": "str"}), FeatureGroup("restaurant", "empty_fg", {"x": "str"}))
    with pytest.raises(OnlineSchemaMismatch, match="restaurant:empty_fg.*feature 'x' type str -> num"):
        store.materialize([G, "restaurant:empty_fg"], online_store=f"sqlite:///{tmp_path}/other.db",
                          spark=spark_session)
    assert other.layout(G) is None and other.watermark(G) is None


# -- a job killed at several points ---------------------------------------------------------

def run_job(root, url, crash_at=None, wait=True, batch_rows=25):
    env = {**os.environ, "PALETTE_CRASH_AT": crash_at or "", "PYSPARK_PYTHON": sys.executable}
    cmd = [sys.executable, "-m", "palette.jobs.materialize", "--online-store", url, "--store", str(root),
           "--batch-rows", str(batch_rows)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


@pytest.mark.slow
def test_killed_runs_lose_nothing_and_reruns_finish(spark_session, store, tmp_path):
    url = f"sqlite:///{tmp_path}/online.db"
    ingest(spark_session, store, history(400))
    version = store.version(G, spark_session)

    # 1. Killed while executors write (after their first batch of 25 rows).
    rc, out = run_job(store.root, url, crash_at="materialize_batch")
    assert rc == -signal.SIGKILL, out
    online = open_store(url)
    assert 0 < online.count(G) < 400 and online.watermark(G) is None
    assert store.materialize(online_store=url, spark=spark_session)[G]["mode"] == "full"     # the rerun
    assert_in_sync(spark_session, store, url)
    assert online.watermark(G)["version"] == version

    # 2. Killed after every write, before the watermark moved: the rerun redoes the increment.
    ingest(spark_session, store, [(f"r{i}", at(0.5), -float(i), "changed") for i in range(0, 400, 7)])
    DeltaTable.forPath(spark_session, store.table_path(G)).delete("r_id = 'r398'")
    rc, out = run_job(store.root, url, crash_at="materialize_before_watermark")
    assert rc == -signal.SIGKILL, out
    assert online.watermark(G)["version"] == version
    assert_in_sync(spark_session, store, url, extra_keys=["r398"])      # the writes themselves were done
    assert store.materialize(online_store=url, spark=spark_session)[G]["mode"] == "change data feed"
    assert online.watermark(G)["version"] == store.version(G, spark_session)
    assert_in_sync(spark_session, store, url, extra_keys=["r398"])

    # 3. Killed at an arbitrary moment of a full rebuild, as soon as it has written something.
    open_store(url).drop(G)
    proc = run_job(store.root, url, wait=False, batch_rows=5)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(f"{tmp_path}/online.db") and open_store(url).layout(G) and open_store(url).count(G) > 0:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store.materialize(online_store=url, spark=spark_session)
    assert_in_sync(spark_session, store, url, extra_keys=["r398"])


def test_cli_reports_failure_with_a_non_zero_exit(store, tmp_path, capsys):
    from palette.cli import main
    assert main(["materialize", "--online-store", f"sqlite:///{tmp_path}/o.db", "--store", str(store.root),
                 "--group", "restaurant:nope"]) == 1
    assert main(["materialize", "--online-store", "ftp://x", "--store", str(store.root)]) == 1
