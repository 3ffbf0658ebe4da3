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


def test_show_says_how_a_group_is_monitored(store, capsys):
    from palette import Feature
    store.register(FeatureGroup("restaurant", "stats_fg", [Feature("prep", "num", drift={"ks": 0.05}),
                                                           Feature("city", "str")], slices=("city",)))
    assert cli(["features", "show", "restaurant:stats_fg", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert "monitored per value of: city" in out and "ks 0.05" in out


def test_show_a_stream_group(store, capsys):
    from palette import Aggregation, StreamSource
    store.register(FeatureGroup("restaurant", "orders_fg", kind="stream", hop="1m", lateness="2m",
                                source=StreamSource("kafka", {"r_id": "str", "ts": "ts", "size": "num"}, "ts",
                                                    topic="orders", servers="broker:9092"),
                                aggregations=[Aggregation("n_orders", "count", over="30m"),
                                              Aggregation("avg_size", "mean", "size", over="1h")]))
    assert cli(["features", "show", "restaurant:orders_fg", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert "stream source: kafka topic orders on broker:9092; event time ts; lateness 2m; hop 1m" in out
    assert "count(*) over 30m" in out and "mean(size) over 1h" in out
    assert cli(["features", "search", "avg_size", "--store", store.root]) == 0
    assert "restaurant:orders_fg:avg_size" in capsys.readouterr().out


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


def test_version_list_and_entities(store, capsys):
    with pytest.raises(SystemExit) as e:
        cli(["--version"])
    from palette import __version__
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"palette {__version__}"
    assert cli(["features", "list", "--store", store.root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["group", "kind", "max_age", "features", "owner", "tags", "description"]
    assert [line.split()[:4] for line in lines[2:]] == [["restaurant:batch_fg", "batch", "30d", "2"],
                                                        ["restaurant:realtime_fg", "realtime", "-", "1"]]
    assert cli(["features", "list", "--entity", "courier", "--store", store.root]) == 1
    assert "no feature groups are registered for entity 'courier'" in capsys.readouterr().err
    assert cli(["entities", "list", "--store", store.root]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["restaurant", "r_id", "(str)", "2"]


@pytest.mark.parametrize("command", [["features", "search"], ["features", "list"], ["features", "show"],
                                     ["entities", "list"], ["serve"], ["predict"], ["ingest"], ["materialize"],
                                     ["train"], ["batch-score"], ["parity"], ["ingest-logs"], ["consistency"]])
def test_every_command_s_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli([*command, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    example = out.split("example:\n", 1)[1].strip().splitlines()[0]
    assert example.startswith(f"palette {command[0]}") or example.startswith(f"palette job {command[0]}"), example


def test_one_spelling_per_job_in_help(capsys):
    with pytest.raises(SystemExit):
        cli(["--help"])
    out = capsys.readouterr().out
    assert "batch-score" in out and "batch_score" not in out and "ingest_logs" not in out
    with pytest.raises(SystemExit):
        cli(["batch_score", "--help"])                      # the other spelling still runs, unlisted
    assert "palette batch-score" in capsys.readouterr().out


def test_predict_scores_a_file_without_a_jvm_as_the_scorer_does(eta, online_urls, tmp_path):
    import csv
    import json
    import math
    import pyarrow.parquet as pq
    from palette.transformers import load_scorer
    from processes import jvm_free_env
    model = eta["models"]["palette_transformer"][0]
    rows = [{"r_id": r["r_id"], "order_size": r["order_size"]} for r in eta["requests"][:200]]
    want = [r["prediction"] for r in load_scorer(model, online_store=online_urls["sqlite"]).scoreBatch(rows)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(tmp_path / "requests.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["r_id", "order_size"])
        w.writeheader()
        w.writerows(rows)
    env = jvm_free_env(tmp_path)
    palette = os.path.join(os.path.dirname(sys.executable), "palette")

    def run(*args):
        return subprocess.run([palette, "predict", model, "--online-store", online_urls["sqlite"], *args],
                              capture_output=True, text=True, env=env, timeout=120)

    out = run("--input", str(tmp_path / "requests.jsonl"))
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [{k: g[k] for k in ("r_id", "order_size")} for g in got] == rows
    assert all(math.isclose(g["prediction"], w, rel_tol=1e-12) for g, w in zip(got, want))
    out = run("--input", str(tmp_path / "requests.csv"), "--output", str(tmp_path / "scored.parquet"))
    assert out.returncode == 0, out.stderr
    scored = pq.read_table(tmp_path / "scored.parquet").to_pylist()
    assert all(math.isclose(g["prediction"], w, rel_tol=1e-12) for g, w in zip(scored, want))
    (tmp_path / "bad.jsonl").write_text('{"r_id": "r1", "order_size": 2}\n{"r_id": 5, "order_size": 2}\n')
    out = run("--input", str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "bad.csv"))
    assert out.returncode == 2 and "request 2, field 'r_id': must be a string" in out.stderr, out.stderr
    assert not (tmp_path / "bad.csv").exists()
