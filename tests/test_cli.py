"""The palette CLI and the ingest job, as a scheduler and a user at a terminal see them."""
import logging
import os
import subprocess
import sys
from datetime import datetime

import pytest

from palette import Entity, FeatureGroup, FeatureStore
from palette.cli import main as cli
from palette.jobs import ingest


@pytest.fixture()
def store(tmp_path):
    s = FeatureStore(str(tmp_path / "store"))
    s.register(Entity("restaurant", {"r_id": "str"}),
               FeatureGroup("restaurant", "batch_fg", {"prep_time": "num", "cuisine": "str"}, max_age="30d",
                            tags=("eta",), description="kitchen stats"),
               FeatureGroup("restaurant", "realtime_fg", {"n_meal": "num"}, kind="realtime"))
    return s


def test_search_prints_an_aligned_table(store, capsys):
    assert cli(["features", "search", "prep", "--store", store.root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["feature", "type", "kind", "max_age", "tags", "models", "description"]
    assert lines[2].split()[:5] == ["restaurant:batch_fg:prep_time", "num", "batch", "30d", "eta"]
    # every column starts at the same offset on every line
    assert lines[0].index("type") == lines[2].index("num")


def test_search_by_type_and_closest_name(store, capsys):
    assert cli(["features", "search", "--type", "num", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert "prep_time" in out and "n_meal" in out and "cuisine" not in out
    assert cli(["features", "search", "prep_tiem", "--store", store.root]) == 0
    assert "restaurant:batch_fg:prep_time" in capsys.readouterr().out


def test_show_and_unknown_group(store, capsys):
    assert cli(["features", "show", "restaurant:batch_fg", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert "max age 30d" in out and "join keys: r_id (str)" in out and "cuisine" in out
    assert cli(["features", "show", "restaurant:batch", "--store", store.root]) == 2
    assert "did you mean 'restaurant:batch_fg'" in capsys.readouterr().err


def test_installed_console_script(store):
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "palette"), "features", "search",
                           "n_meal"], capture_output=True, text=True, env={**os.environ, "PALETTE_STORE_ROOT": store.root})
    assert proc.returncode == 0 and "restaurant:realtime_fg:n_meal" in proc.stdout


def test_ingest_job_is_idempotent_and_logs(store, spark_session, tmp_path, caplog):
    src = str(tmp_path / "src")
    spark_session.createDataFrame([("r1", datetime(2024, 1, 1), 10.0, "thai"), ("r2", datetime(2024, 1, 2), 3.0, None)],
                                  "r_id string, event_ts timestamp, prep_time double, cuisine string") \
        .write.parquet(src)
    caplog.set_level(logging.INFO, logger="palette.jobs.ingest")
    first = ingest.run("restaurant:batch_fg", src, "parquet", store.root, spark=spark_session)
    again = ingest.run("restaurant:batch_fg", src, "parquet", store.root, spark=spark_session)
    assert (first["inserted"], again["inserted"], again["updated"]) == (2, 0, 0)
    assert store.read("restaurant:batch_fg", spark_session).count() == 2
    assert "ingest done group=restaurant:batch_fg" in caplog.text and "inserted=2" in caplog.text


def test_ingest_job_fails_with_nonzero_exit_and_a_reason(store, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "palette.jobs.ingest", "--group", "restaurant:nope",
                           "--source", str(tmp_path), "--store", store.root], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "ingest failed group=restaurant:nope" in proc.stderr and "did you mean" in proc.stderr


def test_ingest_csv_checks_header_against_the_group(store, spark_session, tmp_path):
    src = tmp_path / "prep.csv"
    src.write_text("r_id,event_ts,prep_time,cuisine\nr1,2024-01-01 00:00:00,10,thai\n")
    result = ingest.run("restaurant:batch_fg", str(src), "csv", store.root, spark=spark_session)
    assert result["inserted"] == 1
    row = store.read("restaurant:batch_fg", spark_session).first()
    assert (row["prep_time"], row["cuisine"]) == (10.0, "thai")
