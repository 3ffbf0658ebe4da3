"""Served-feature logging: the serving process logs a key-sampled fraction of requests with
the exact values its lookups read (and their event times), never blocking a request; the
logs go into Delta idempotently and become a training set with the values the model saw."""
import json
import threading
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from palette.logs import FeatureLog, LogConfigError, Sampler, ingest_logs, training_set
from palette.online import open_store

from test_serve import Service, http


def _record(i, model="m"):
    return {"request_id": f"q{i}", "request_time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "model": model,
            "version": "v1", "keys": "{}", "features": [], "request": "{}", "prediction": str(i)}


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path, monkeypatch):
    gate = threading.Event()
    log = FeatureLog(tmp_path / "logs", queue_size=5, roll_rows=1)
    real = log._write
    monkeypatch.setattr(log, "_write", lambda rows: (gate.wait(30), real(rows)))
    accepted = [log.submit(_record(i)) for i in range(50)]            # the writer is stuck on the first
    assert accepted.count(False) == log.dropped >= 44
    gate.set()
    log.close()
    files = sorted((tmp_path / "logs" / "date=2026-01-02" / "model=m").iterdir())
    assert files and all(f.name.startswith("part-") and f.suffix == ".parquet" for f in files)   # no .tmp left
    ids = [r for f in files for r in pq.read_table(f).column("request_id").to_pylist()]
    assert len(ids) == accepted.count(True) == log.written and ids[0] == "q0"


def test_key_sampling_keeps_every_request_of_a_sampled_key():
    s = Sampler(0.3, "key", ["r_id"])
    kept = {k for k in (f"r{i}" for i in range(5000)) if s.keep({"r_id": k, "order_size": 1})}
    assert 1300 < len(kept) < 1700
    assert all(s.keep({"r_id": k, "order_size": 9}) for k in kept)
    with pytest.raises(LogConfigError, match="between 0 and 1"):
        Sampler(1.5)
    with pytest.raises(LogConfigError, match="'key' or 'request'"):
        Sampler(0.5, "user")


@pytest.fixture(scope="module")
def served_logs(eta, online_urls, tmp_path_factory):
    """Requests through a real service logging half the keys; the logs and what was answered."""
    tmp = tmp_path_factory.mktemp("logged")
    logs = tmp / "logs"
    service = Service(tmp, ["--model", f"eta={eta['models']['palette_transformer'][0]}", "--online-store",
                            online_urls["sqlite"], "--workers", "2", "--log-dir", str(logs), "--log-sample", "0.5"])
    answered = {}
    try:
        rows = [r for r in eta["requests"][:400] if r["r_id"] is not None]
        for r in rows[:150]:                                           # one instance per request
            inst = {"r_id": r["r_id"], "order_size": r["order_size"], "order_id": r["order_id"]}
            status, out = http("POST", service.url + "/v1/models/eta:predict?features=true", {"instances": [inst]})
            assert status == 200, out
            answered[r["order_id"]] = (inst, out["predictions"][0], out["features"][0])
        batch = [{"r_id": r["r_id"], "order_size": r["order_size"], "order_id": r["order_id"]} for r in rows[150:]]
        status, out = http("POST", service.url + "/v1/models/eta:predict?features=true", {"instances": batch})
        assert status == 200, out
        for inst, p, f in zip(batch, out["predictions"], out["features"]):
            answered[inst["order_id"]] = (inst, p, f)
    finally:
        assert service.stop() == 0, service.output()                  # SIGTERM: the queue is written first
    return logs, answered


def test_the_service_logs_what_its_lookups_read(served_logs, online_urls):
    logs, answered = served_logs
    files = list(logs.rglob("*.parquet"))
    assert files and all(f.parent.name == "model=eta" and f.parent.parent.name.startswith("date=") for f in files)
    records = [r for f in files for r in pq.read_table(f).to_pylist()]
    by_order = {json.loads(r["request"])["order_id"]: r for r in records}
    sampler = Sampler(0.5, "key", ["r_id"])
    want = {o for o, (inst, _, _) in answered.items() if sampler.keep(inst)}
    assert set(by_order) == want and 0.3 < len(want) / len(answered) < 0.7
    store = open_store(online_urls["sqlite"])
    features_seen = 0
    for order, r in by_order.items():
        inst, prediction, computed = answered[order]
        assert json.loads(r["prediction"]) == prediction and json.loads(r["keys"]) == {"r_id": inst["r_id"]}
        assert r["version"] and r["request_id"]
        assert json.loads(r["inputs"])["features"] == computed["features"]          # what the GBT read
        for f in r["features"]:
            assert f[f["type"]] == computed[f["column"]], (order, f)  # the value the model used
            if f["event_time"] is not None:
                layout = store.layout(f["group"])
                ts, _ = store.read([(layout, [f["key"]])])[0][0]
                assert int(f["event_time"].timestamp() * 1_000_000) == ts
                features_seen += 1
        assert {f["column"] for f in r["features"]} == {"n_meal", "prep_time", "lat", "long", "n_busy"}
    assert features_seen > 200


def test_the_service_profiles_what_each_model_was_fed(served_logs):
    from palette.monitor.profile import merge_into
    from palette.monitor.served import read_served
    logs, answered = served_logs
    windows = read_served(logs / "_profiles", "eta")          # both workers' files, merged per window
    assert windows and sum(w["requests"] for w in windows) == 151     # 150 single requests and one batch
    merged = windows[0]["profiles"]
    for w in windows[1:]:
        merge_into(merged, w["profiles"])
    assert merged["prediction"].count == len(answered) and merged["prediction"].nulls == 0
    predictions = [p for _, p, _ in answered.values()]
    assert merged["prediction"].mean == pytest.approx(sum(predictions) / len(predictions), rel=1e-9)
    assert merged["r_id"].kind == "cat" and merged["order_size"].count == len(answered)
    ages = merged["@restaurant:batch_fg:age_s"]
    assert ages.count == len(answered) and ages.n > 0 and ages.min > 0


def test_logs_go_to_delta_once_and_make_a_training_set(spark_session, served_logs, tmp_path):
    logs, answered = served_logs
    table = str(tmp_path / "served")
    first = ingest_logs(spark_session, str(logs), table)
    assert first["added"] == first["read"] > 0
    assert ingest_logs(spark_session, str(logs), table) == {"read": first["read"], "added": 0}
    labels = spark_session.createDataFrame([(o, float(o % 13)) for o in answered], "order_id int, minutes double")
    train = training_set(spark_session, table, labels, on="order_id", request_fields=["r_id"])
    rows = {r.order_id: r for r in train.collect()}
    assert len(rows) == first["read"]
    for order, r in rows.items():
        inst, prediction, computed = answered[order]
        assert r.minutes == float(order % 13) and r.r_id == inst["r_id"]
        assert json.loads(r.prediction) == prediction
        for c in ("n_meal", "prep_time", "lat", "long", "n_busy"):
            assert r[c] == computed[c], (order, c)
    assert "n_busy__event_time" in train.columns


def test_consistency_reports_injected_staleness_and_missing_keys_exactly(spark_session, tmp_path, caplog):
    from datetime import timedelta

    from palette import Entity, FeatureGroup, FeatureStore
    from palette.cli import main
    from palette.logs import check_consistency

    store = FeatureStore(tmp_path / "store")
    store.register(Entity("restaurant", {"r_id": "str"}), FeatureGroup("restaurant", "fg", {"prep": "num"}, max_age="7d"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    t0 = now - timedelta(hours=2)
    store.ingest(spark_session.createDataFrame([(f"r{i}", float(i), t0.replace(tzinfo=None)) for i in range(90)],
                                               "r_id string, prep double, event_ts timestamp"), "restaurant:fg")
    log = FeatureLog(tmp_path / "logs")
    for i in range(100):
        value, served_at = float(i), t0
        if i < 10:                                 # stale: an older value was served
            value, served_at = i - 0.5, t0 - timedelta(days=1)
        elif i < 15 or i >= 93:                    # nothing served (r93..r99 are not offline either: a match)
            value, served_at = None, None
        elif i >= 90:                              # served a value offline does not have
            value = 1.0
        feature = {"column": "prep", "group": "restaurant:fg", "feature": "prep", "key": f"r{i}", "type": "num",
                   "num": value, "str": None, "bool": None, "ts": None, "event_time": served_at}
        log.submit({**_record(i, "eta"), "request_time": now - timedelta(hours=1), "features": [feature]})
    log.close()
    report = check_consistency(spark_session, str(tmp_path / "logs"), store_root=str(store.root))
    [row] = report.rows
    assert (row["model"], row["group"], row["feature"], row["rows"]) == ("eta", "restaurant:fg", "prep", 100)
    assert (row["match_rate"], row["mismatch_rate"], row["missing_online_rate"], row["missing_offline_rate"]) == \
        (0.82, 0.10, 0.05, 0.03)
    assert row["max_abs_diff"] == 0.5 and row["mean_abs_diff"] == 0.5
    assert row["age_p50_s"] == 3600 and row["age_max_s"] == 3600 + 86400
    assert report.check(min_match_rate=0.9) and not report.ok and "match_rate 0.82" in str(report.breaches[0])
    table = str(tmp_path / "consistency")
    args = ["consistency", "--logs", str(tmp_path / "logs"), "--store", str(store.root), "--table", table]
    assert main(args + ["--min-match-rate", "0.8", "--html", str(tmp_path / "c.html")]) == 0
    assert main(args + ["--min-match-rate", "0.9"]) == 1
    assert "consistency below the thresholds" in caplog.text
    assert spark_session.read.format("delta").load(table).count() == 1       # a rerun replaces its own row
    assert "0.82" in (tmp_path / "c.html").read_text()
