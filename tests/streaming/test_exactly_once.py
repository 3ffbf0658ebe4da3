"""Exactly once through kill -9: the streaming job killed after its tiles were written,
after the Delta commit, in the middle of the online write and after it (before Spark
commits the batch), restarted from its checkpoint each time — and every event counted
once in Delta and online, against the oracle and a backfill of the same events."""
import os
import subprocess
import sys

import pytest

from palette import Entity, FeatureStore
from palette import streaming
from stream_events import (G, HOP, assert_online_matches, assert_same_rows, events, group, micros, table_rows,
                           write_events)

KILLS = ["stream_tiles_written", "stream_delta_written", "materialize_batch", "stream_online_written"]


def run_stream(root, checkpoint, online, crash_at=None, metrics=None):
    env = {**os.environ, "PALETTE_CRASH_AT": crash_at or "", "PYSPARK_PYTHON": sys.executable}
    cmd = [sys.executable, "-m", "palette.jobs.stream", "--group", G, "--checkpoint", str(checkpoint),
           "--online-store", online, "--once", "--store", str(root)] + (["--metrics-file", str(metrics)] if metrics else [])
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True, timeout=300)
    return proc.returncode, proc.stdout


@pytest.mark.slow
def test_a_job_killed_at_every_step_counts_every_event_exactly_once(spark_session, tmp_path):
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    path = tmp_path / "events"
    stores = {name: FeatureStore(tmp_path / name) for name in ("streamed", "backfilled")}
    for s in stores.values():
        s.register(Entity("restaurant", {"r_id": "str"}), group(path))
    evs = sorted(events(seed=3, n=160), key=lambda e: e["ts"])
    online = f"sqlite:///{tmp_path}/online.db"
    checkpoint = tmp_path / "chk"
    size = len(evs) // len(KILLS) + 1
    for i, kill in enumerate(KILLS):
        write_events(spark_session, path, evs[i * size:(i + 1) * size])
        code, out = run_stream(tmp_path / "streamed", checkpoint, online, crash_at=kill)
        assert code == -9, f"the job was to be killed at {kill}:\n{out[-3000:]}"
        metrics = tmp_path / f"stream-{i}.prom"
        code, out = run_stream(tmp_path / "streamed", checkpoint, online, metrics=metrics)
        assert code == 0, out[-3000:]
        # The re-run batch's progress, its lag (the events are days old) as Prometheus text.
        text = metrics.read_text()
        lag = float(text.split(f'palette_stream_lag_seconds{{group="{G}"}} ')[1].split()[0])
        assert lag > 86400 and "# TYPE palette_stream_processed_rows_per_second gauge" in text, text
        assert "lag=" in out
    streaming.backfill(G, store=stores["backfilled"], spark=spark_session)
    assert_same_rows(table_rows(stores["streamed"], spark_session), table_rows(stores["backfilled"], spark_session))
    last = max(micros(e["ts"]) for e in evs)
    assert_online_matches(online, evs, [f"r{i}" for i in range(5)], last, last + 7 * HOP, HOP)


def test_restarting_with_a_changed_definition_is_refused(spark_session, tmp_path):
    from palette import JobError
    path = tmp_path / "events"
    write_events(spark_session, path, events(n=20))
    store = FeatureStore(tmp_path / "store")
    store.register(Entity("restaurant", {"r_id": "str"}), group(path))
    streaming.start(G, checkpoint=str(tmp_path / "chk"), store=store, spark=spark_session, once=True).awaitTermination()
    changed = FeatureStore(tmp_path / "store2")
    changed.register(Entity("restaurant", {"r_id": "str"}), group(path, lateness="1m"))
    with pytest.raises(JobError, match="lateness changed.*new checkpoint"):
        streaming.start(G, checkpoint=str(tmp_path / "chk"), store=changed, spark=spark_session, once=True)
