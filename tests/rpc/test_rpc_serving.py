"""RPC features on the serving path (no JVM): scoreInstance / scoreBatch and a real
`palette serve` process, with the online store and a real HTTP service on loopback."""
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from palette import FAIL, Entity, FeatureGroup, Fetcher
from palette.errors import RpcUnavailable
from palette.online import open_store
from palette.online.writes import write_rows
from palette.testing import kitchen_mode, kitchen_stats, save_lookup_stage, start_service, stop
from palette.transformers.runtime import load_scorer

from kitchen_values import recent

RESTAURANT = Entity("restaurant", {"r_id": "str"})
BATCH = FeatureGroup("restaurant", "batch_fg", {"prep_time": "num"})
FIELDS = {"queue_minutes": "$.queue.minutes", "queue_orders": "$.queue.orders"}


def kitchen_group(url, name="kitchen_rpc", **policy):
    policy.setdefault("timeout", "500ms")
    return FeatureGroup("restaurant", name, {"queue_minutes": "num", "queue_orders": "num"}, kind="rpc",
                        fetcher=Fetcher(url=f"{url}/restaurants/{{r_id}}/queue", fields=FIELDS,
                                        batch_url=f"{url}/restaurants/queue:batch", **policy))


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('rpc')}/online.db"
    with open_store(url) as store:
        now = datetime.now(timezone.utc)
        write_rows(store, RESTAURANT, BATCH, [{"r_id": f"r{i}", "event_ts": now, "prep_time": float(i)}
                                              for i in range(200)])
    return url


def model(tmp_path, groups, features=None):
    features = features or {"prep": "@palette:restaurant:batch_fg:prep_time:r_id",
                            **{f"q_{g.name}": f"@palette:restaurant:{g.name}:queue_minutes:r_id" for g in groups}}
    return save_lookup_stage(tmp_path / "model", features, [RESTAURANT], [BATCH, *groups])


def minutes(r_id):
    return recent(r_id)


def test_score_instance_reads_the_store_and_the_service_in_one_fetch_point(kitchen, online, tmp_path):
    scorer = load_scorer(model(tmp_path, [kitchen_group(kitchen)]), online_store=online)
    try:
        assert scorer.round_trips == 1
        out = scorer.scoreInstance({"r_id": "r7"})
        assert out["prep"] == 7.0 and out["q_kitchen_rpc"] == minutes("r7")
        assert scorer.scoreInstance({"r_id": "unknown-3"})["q_kitchen_rpc"] is None
        assert scorer.scoreInstance({"r_id": None})["q_kitchen_rpc"] is None
    finally:
        scorer.close()


def test_rpc_groups_of_one_level_are_called_at_once(kitchen, online, tmp_path):
    """Three RPC groups and the store at one fetch point: the service sees the three calls
    in flight together (so a request waits about one call, not three)."""
    kitchen_mode(kitchen, "fast", delay_ms=300)
    groups = [kitchen_group(kitchen, f"kitchen_rpc{i}") for i in range(3)]
    scorer = load_scorer(model(tmp_path, groups), online_store=online)
    try:
        out = scorer.scoreInstance({"r_id": "r5"})
        assert [out[f"q_kitchen_rpc{i}"] for i in range(3)] == [minutes("r5")] * 3
        assert kitchen_stats(kitchen)["max_inflight"] == 3
    finally:
        scorer.close()


def test_score_batch_makes_one_batch_call_for_its_distinct_keys(kitchen, online, tmp_path):
    scorer = load_scorer(model(tmp_path, [kitchen_group(kitchen)]), online_store=online)
    try:
        rows = [{"r_id": f"r{i % 100}"} for i in range(300)]
        out = scorer.scoreBatch(rows)
        assert [o["q_kitchen_rpc"] for o in out] == [minutes(r["r_id"]) for r in rows]
        assert [o["prep"] for o in out] == [float(i % 100) for i in range(300)]
        assert kitchen_stats(kitchen)["batch_requests"] == 1
    finally:
        scorer.close()


def test_a_model_of_rpc_features_only_needs_no_online_store(kitchen, tmp_path):
    g = kitchen_group(kitchen)
    path = save_lookup_stage(tmp_path / "m", {"q": "restaurant:kitchen_rpc:queue_orders:r_id"}, [RESTAURANT], [g])
    scorer = load_scorer(path)
    try:
        assert scorer.online_store is None
        assert scorer.scoreInstance({"r_id": "r2"})["q"] == recent("r2", "orders")
    finally:
        scorer.close()


def test_fail_fallback_fails_score_instance_naming_the_group(kitchen, online, tmp_path):
    kitchen_mode(kitchen, "failing")
    scorer = load_scorer(model(tmp_path, [kitchen_group(kitchen, fallback={"queue_minutes": FAIL})]),
                         online_store=online)
    try:
        with pytest.raises(RpcUnavailable, match="restaurant:kitchen_rpc"):
            scorer.scoreInstance({"r_id": "r1"})
    finally:
        scorer.close()


# -- palette serve ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(kitchen_service, online, tmp_path_factory):
    root = tmp_path_factory.mktemp("rpc_serve")
    soft = model(root / "soft", [kitchen_group(kitchen_service, fallback={"queue_minutes": -1.0},
                                               breaker_failures=4, breaker_reset="1s")])
    hard = save_lookup_stage(root / "hard" / "model", {"q": "restaurant:kitchen_hard:queue_minutes:r_id"}, [RESTAURANT],
                             [kitchen_group(kitchen_service, "kitchen_hard", fallback={"queue_minutes": FAIL})])
    logs = root / "logs"
    proc, url = start_service(["--model", f"soft={soft}", "--model", f"hard={hard}", "--online-store", online,
                               "--log-dir", str(logs)], str(root / "serve.log"))
    yield url, proc, logs
    stop(proc)


def predict(url, name, instances, status=200):
    req = urllib.request.Request(f"{url}/v1/models/{name}:predict", json.dumps({"instances": instances}).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == status
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        assert e.code == status, e.read()
        return json.loads(e.read())


def metric(url, name, **labels):
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0 if want else None


def test_serve_answers_with_fetched_values_then_fallbacks_then_503_for_fail(kitchen, service):
    url, _, _ = service
    got = predict(url, "soft", [{"r_id": "r3"}, {"r_id": "r4"}])["predictions"]
    assert [p["q_kitchen_rpc"] for p in got] == [minutes("r3"), minutes("r4")]
    assert [p["prep"] for p in got] == [3.0, 4.0]

    kitchen_mode(kitchen, "slow", slow_ms=4000)
    t0 = time.monotonic()
    got = predict(url, "soft", [{"r_id": "r3"}])["predictions"]
    assert got[0]["q_kitchen_rpc"] == -1.0 and got[0]["prep"] == 3.0       # the fallback, the store's value
    assert time.monotonic() - t0 < 3.0
    assert metric(url, "palette_rpc_fallback_total", group="restaurant:kitchen_rpc", reason="timeout") >= 1

    kitchen_mode(kitchen, "failing")
    for _ in range(5):
        predict(url, "soft", [{"r_id": "r3"}])
    assert metric(url, "palette_rpc_breaker_state", group="restaurant:kitchen_rpc") == 2.0       # open
    assert metric(url, "palette_rpc_fallback_total", group="restaurant:kitchen_rpc", reason="breaker_open") >= 1
    assert metric(url, "palette_rpc_seconds_count", group="restaurant:kitchen_rpc", outcome="error") >= 1

    body = predict(url, "hard", [{"r_id": "r3"}], status=503)
    assert body["error"]["code"] == "rpc_unavailable"
    assert body["error"]["details"] == [{"group": "restaurant:kitchen_hard", "reason": "error"}]
    assert "restaurant:kitchen_hard" in body["error"]["message"]

    kitchen_mode(kitchen, "fast")
    time.sleep(1.1)
    got = predict(url, "soft", [{"r_id": "r3"}])["predictions"]
    assert got[0]["q_kitchen_rpc"] == minutes("r3")
    assert metric(url, "palette_rpc_breaker_state", group="restaurant:kitchen_rpc") == 0.0       # closed again
    assert predict(url, "hard", [{"r_id": "r3"}])["predictions"][0] == minutes("r3")


def test_the_feature_log_records_fetched_values_and_fallbacks(kitchen, service):
    url, proc, logs = service
    kitchen_mode(kitchen, "fast")
    predict(url, "soft", [{"r_id": "r8"}])
    kitchen_mode(kitchen, "malformed")
    predict(url, "soft", [{"r_id": "r9"}])
    kitchen_mode(kitchen, "fast")
    stop(proc)                                   # the log is written on the way out
    rows = pq.read_table(logs).to_pylist()
    entries = {(r["keys"], f["column"]): f for r in rows if r["model"] == "soft" for f in r["features"]}
    fetched = entries[('{"r_id":"r8"}', "q_kitchen_rpc")]
    assert fetched["num"] == minutes("r8") and fetched["fallback"] is None and fetched["group"] == "restaurant:kitchen_rpc"
    assert fetched["event_time"] is not None
    fell = entries[('{"r_id":"r9"}', "q_kitchen_rpc")]
    assert fell["num"] == -1.0 and fell["fallback"] == "malformed"
    assert entries[('{"r_id":"r9"}', "prep")]["fallback"] is None


def test_an_rpc_lookup_keyed_by_a_computed_column_is_fetched_after_the_stage_computing_it(kitchen, online, tmp_path):
    """A DSL stage computes the key; the RPC group is fetched at the next dependency level."""
    root = tmp_path / "pipeline"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "part-00000").write_text(json.dumps({
        "class": "pyspark.ml.pipeline.PipelineModel", "uid": "pipe", "paramMap": {"stageUids": ["key", "look"]}}))
    stage = root / "stages" / "00_key" / "metadata"
    stage.mkdir(parents=True)
    (stage / "part-00000").write_text(json.dumps({
        "class": "palette.transformers.dsl_stage.DSLTransformer", "uid": "key", "paletteFormatVersion": 1,
        "paramMap": {"lambdas": {"r_id": 'sVal("basis:restaurant")'}}}))
    save_lookup_stage(root / "stages" / "01_look", {"q": "restaurant:kitchen_rpc:queue_minutes:r_id",
                                                    "prep": "restaurant:batch_fg:prep_time:r_id"},
                      [RESTAURANT], [BATCH, kitchen_group(kitchen)], uid="look")
    scorer = load_scorer(root, online_store=online)
    try:
        assert list(scorer.fetch_points) == [1] and scorer.round_trips == 1
        out = scorer.scoreInstance({"restaurant": "r9"})
        assert out["q"] == minutes("r9") and out["prep"] == 9.0
        assert [o["q"] for o in scorer.scoreBatch([{"restaurant": "r1"}, {"restaurant": "r2"}])] == \
            [minutes("r1"), minutes("r2")]
    finally:
        scorer.close()


def test_every_mode_of_the_service_gives_its_result_a_metric_and_a_log_entry(kitchen, online, tmp_path):
    group = kitchen_group(kitchen, fallback={"queue_minutes": -1.0}, breaker_failures=100)
    path = model(tmp_path, [group])
    proc, url = start_service(["--model", f"m={path}", "--online-store", online, "--log-dir", str(tmp_path / "logs")],
                              str(tmp_path / "serve.log"))
    modes = [("fast", "r11", None), ("slow", "r12", "timeout"), ("failing", "r13", "error"),
             ("flapping", "r14", None), ("flapping", "r15", None), ("malformed", "r16", "malformed"),
             ("missing", "r17", "missing")]
    try:
        answers = {}
        for mode, key, _ in modes:
            kitchen_mode(kitchen, mode, slow_ms=4000)
            t0 = time.monotonic()
            answers[key] = predict(url, "m", [{"r_id": key}])["predictions"][0]
            assert time.monotonic() - t0 < 3.0, f"{mode}: the request outlived the 500 ms timeout"
        kitchen_mode(kitchen, "fast")
        for reason in ("timeout", "error", "malformed", "missing"):
            assert metric(url, "palette_rpc_fallback_total", group="restaurant:kitchen_rpc", reason=reason) >= 1
        assert metric(url, "palette_rpc_seconds_count", group="restaurant:kitchen_rpc", outcome="ok") >= 2
    finally:
        stop(proc)
    for mode, key, reason in modes:
        if reason is not None:
            assert answers[key]["q_kitchen_rpc"] == -1.0, mode
        assert answers[key]["prep"] == float(key[1:])               # the store's value whatever the service did
    flapped = [answers[k]["q_kitchen_rpc"] for k in ("r14", "r15")]
    assert sorted(v == -1.0 for v in flapped) == [False, True]      # one answered, one a 500
    logged = {json.loads(r["keys"])["r_id"]: f for r in pq.read_table(tmp_path / "logs").to_pylist()
              for f in r["features"] if f["column"] == "q_kitchen_rpc"}
    for mode, key, reason in modes:
        if mode != "flapping":
            assert logged[key]["fallback"] == reason, mode
    assert sorted(str(logged[k]["fallback"]) for k in ("r14", "r15")) == ["None", "error"]


def test_a_reload_keeps_fetchers_in_use_and_retires_the_others(kitchen, online, tmp_path):
    from palette.serve.config import ServeConfig
    from palette.serve.models import ModelSet
    first = model(tmp_path / "a", [kitchen_group(kitchen)])
    config = ServeConfig.from_sources(["--model", f"m={first}", "--online-store", online])
    models = ModelSet(config, open_store(online))
    models.start()
    try:
        (client,) = models.rpc_clients.values()
        assert models.reload()["ok"] and list(models.rpc_clients.values()) == [client]      # the same, kept
        changed = model(tmp_path / "b", [kitchen_group(kitchen, timeout="250ms")])          # a new definition
        models.config = ServeConfig.from_sources(["--model", f"m={changed}", "--online-store", online])
        models.fetcher_grace = 0.0
        assert models.reload()["ok"]
        (new,) = models.rpc_clients.values()
        assert new is not client and new.timeout == 0.25
        time.sleep(0.2)
        assert client._pool._shutdown                                      # the old one, closed
        assert models.get("m").scorer.scoreInstance({"r_id": "r3"})["q_kitchen_rpc"] == minutes("r3")
    finally:
        models.close()
