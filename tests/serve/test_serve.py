"""The serving process, for real: `python -m palette.serve` in a subprocess on a free
loopback port — where importing pyspark raises and java is not on PATH — against real
SQLite files and a real Redis, answering real HTTP requests."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from palette.testing import free_port, start_redis, stop
from processes import Service, Traffic, http
from palette.transformers import load_scorer

@pytest.fixture(scope="module")
def sqlite_service(eta, online_urls, tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("serve"), ["--model", f"eta={eta['models']['palette_transformer'][0]}",
                                                     "--online-store", online_urls["sqlite"], "--workers", "2"])
    yield s
    assert s.stop() == 0, s.output()


def requests_of(eta, n):
    return [{"r_id": r["r_id"], "order_size": r["order_size"]} for r in eta["requests"][:n]]


def test_predictions_are_the_in_process_scorer_s(eta, online_urls, sqlite_service):
    scorer = load_scorer(eta["models"]["palette_transformer"][0], online_store=online_urls["sqlite"])
    instances = requests_of(eta, 300)
    status, out = http("POST", sqlite_service.url + "/v1/models/eta:predict", {"instances": instances})
    assert status == 200, out
    want = [scorer.scoreInstance(i)["prediction"] for i in instances]
    assert len(out["predictions"]) == 300
    assert all(math.isclose(a, b, rel_tol=1e-15) for a, b in zip(out["predictions"], want))
    for inst, w in list(zip(instances, want))[:20]:                     # one instance per request
        status, one = http("POST", sqlite_service.url + "/v1/models/eta:predict", {"instances": [inst]})
        assert status == 200 and math.isclose(one["predictions"][0], w, rel_tol=1e-15)
    status, dbg = http("POST", sqlite_service.url + "/v1/models/eta:predict?features=true", {"instances": instances[:2]})
    assert status == 200 and set(dbg["features"][0]) >= {"n_meal", "region_id", "n_busy_f", "features", "prediction"}
    assert dbg["features"][1]["prediction"] == dbg["predictions"][1]


def test_mlflow_invocations_formats(eta, sqlite_service):
    instances = requests_of(eta, 5)
    _, want = http("POST", sqlite_service.url + "/v1/models/eta:predict", {"instances": instances})
    cols = ["r_id", "order_size"]
    bodies = [{"dataframe_split": {"columns": cols, "data": [[i[c] for c in cols] for i in instances]}},
              {"dataframe_records": instances}, {"instances": instances},
              {"inputs": {c: [i[c] for i in instances] for c in cols}}]
    for body in bodies:
        assert http("POST", sqlite_service.url + "/invocations", body) == (200, want), body
    csv = "r_id,order_size\n" + "\n".join(f"{i['r_id'] or ''},{i['order_size']}" for i in instances)
    assert http("POST", sqlite_service.url + "/invocations", csv.encode(), "text/csv") == (200, want)


def test_bad_requests_get_4xx_naming_what_is_wrong(sqlite_service):
    url = sqlite_service.url
    cases = [
        (("POST", url + "/v1/models/eta:predict", b"{not json"), 400, "malformed_json"),
        (("POST", url + "/v1/models/eta:predict", b'{"instances": []}'), 400, "no_instances"),
        (("POST", url + "/v1/models/eta:predict", b'{"rows": []}'), 400, "bad_request"),
        (("POST", url + "/v1/models/nope:predict", b'{"instances": [{}]}'), 404, "unknown_model"),
        (("POST", url + "/v1/models/eta:predict", b"x" * (2 << 20)), 413, "body_too_large"),
        (("POST", url + "/invocations", b'{"dataframe_split": {"columns": ["r_id"], "data": [[1, 2]]}}'), 400,
         "bad_request"),
    ]
    for (method, u, body), status, code in cases:
        got_status, got = http(method, u, body)
        assert (got_status, got["error"]["code"]) == (status, code), (u, body[:40], got)
    status, got = http("POST", url + "/v1/models/eta:predict", b'{"instances": [{"r_id": "r1"}]}', "text/plain")
    assert status == 415 and "application/json" in got["error"]["message"]
    status, got = http("POST", url + "/v1/models/eta:predict",
                       {"instances": [{"r_id": "r1", "order_size": 2}, {"r_id": 7, "order_size": "two"}, {"r_id": "r2"},
                                      "not an object"]})
    assert status == 400 and got["error"]["code"] == "invalid_instances"
    assert {(d["instance"], d.get("field")) for d in got["error"]["details"]} == \
        {(1, "r_id"), (1, "order_size"), (2, "order_size"), (3, None)}
    assert "Traceback" not in json.dumps(got)
    assert http("GET", url + "/healthz") == (200, {"status": "alive"})          # nothing died


def test_every_route_errs_in_one_json_shape_and_invocations_in_mlflow_s_too(sqlite_service):
    url = sqlite_service.url
    status, got = http("GET", url + "/no/such/route")
    assert status == 404 and got["error"]["code"] == "not_found" and "/v1/models" in got["error"]["message"]
    status, got = http("DELETE", url + "/v1/models")
    assert status == 405 and got["error"]["code"] == "method_not_allowed"
    status, got = http("POST", url + "/invocations", b"{not json")
    assert status == 400 and got["error_code"] == "BAD_REQUEST" and got["message"] == got["error"]["message"]
    status, got = http("GET", url + "/invocations")
    assert status == 405 and got["error_code"] == "BAD_REQUEST"
    status, got = http("POST", url + "/v1/models/eta:predict", b"{not json")
    assert "error_code" not in got                                   # KServe's route keeps palette's shape


def test_a_null_the_model_cannot_score_names_the_caller_s_field(sqlite_service):
    status, got = http("POST", sqlite_service.url + "/v1/models/eta:predict",
                       {"instances": [{"r_id": "r1", "order_size": 2}, {"r_id": "r1", "order_size": None}]})
    assert status == 400, got
    (detail,) = got["error"]["details"]
    assert detail["instance"] == 1 and detail["null_fields"] == ["order_size"]
    assert detail["problem"] == "the model cannot score this instance with order_size null: send " \
                                "order_size (a number)", detail              # no advice meant for the model's author


def test_unknown_model_names_share_one_metric_series(sqlite_service):
    url = sqlite_service.url
    for i in range(5):
        assert http("POST", url + f"/v1/models/nope{i}:predict", {"instances": [{}]})[0] == 404
    text = http("GET", url + "/metrics")[1]
    assert "nope" not in text
    assert _metric(url, 'palette_requests_total{endpoint="predict",model="unknown",status="404"}') >= 5


def test_oversized_bodies_get_a_413_not_a_connection_reset(sqlite_service):
    """The server reads on past the limit (bounded) before answering, so a client still
    sending gets its 413; answering mid-upload made the kernel reset the connection."""
    url = sqlite_service.url + "/v1/models/eta:predict"
    for _ in range(5):
        status, got = http("POST", url, b"x" * (3 << 20))
        assert (status, got["error"]["code"]) == (413, "body_too_large")
    chunked = (b"x" * (64 << 10) for _ in range(40))                   # 2.5 MiB, no Content-Length
    req = urllib.request.Request(url, data=chunked, method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 413 and json.loads(e.value.read())["error"]["code"] == "body_too_large"


def test_health_models_and_metrics(eta, sqlite_service):
    url = sqlite_service.url
    assert http("GET", url + "/readyz")[0] == 200
    status, models = http("GET", url + "/v1/models")
    (m,) = models["models"]
    assert m["name"] == "eta" and m["inputs"] == [{"name": "r_id", "type": "str"}, {"name": "order_size", "type": "num"}]
    assert m["outputs"] == ["prediction"] and m["stages"][-1] == "GBTRegressionModel" and m["online_round_trips"] == 2
    assert m["source"]["version"] is None and any("n_meal" in r for r in m["lineage"]["feature_refs"])
    before = _metric(url, 'palette_instances_total{model="eta"}')
    for _ in range(6):                       # two workers: each request lands on either
        http("POST", url + "/v1/models/eta:predict", {"instances": requests_of(eta, 3)})
    assert _metric(url, 'palette_instances_total{model="eta"}') == before + 18
    for reason in ("missing", "expired"):        # the eta requests hold unknown and expired keys
        assert _metric(url, f'palette_feature_nulls_total{{group="restaurant:location_fg",reason="{reason}"}}') > 0
    looked_up = _metric(url, 'palette_feature_lookups_total{group="restaurant:location_fg"}')
    served = _metric(url, 'palette_feature_age_seconds_count{group="restaurant:location_fg"}')
    nulls = sum(_metric(url, f'palette_feature_nulls_total{{group="restaurant:location_fg",reason="{r}"}}')
                for r in ("missing", "expired"))
    assert looked_up > 0 and served > 0 and served + nulls == looked_up
    text = http("GET", url + "/metrics")[1]
    for name in ("palette_request_seconds_bucket", "palette_online_store_seconds_count",
                 "palette_model_load_seconds", 'palette_requests_total{endpoint="predict",model="eta",status="200"}'):
        assert name in text, name


def _metric(url, name):
    text = http("GET", url + "/metrics")[1]
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_sigterm_finishes_in_flight_requests_and_exits_0(eta, online_urls, tmp_path):
    s = Service(tmp_path, ["--model", f"eta={eta['models']['palette_transformer'][0]}",
                           "--online-store", online_urls["sqlite"], "--max-instances", "50000",
                           "--max-body-bytes", str(8 << 20)])
    big = {"instances": requests_of(eta, 3000) * 10}
    result = {}
    t = threading.Thread(target=lambda: result.update(r=http("POST", s.url + "/v1/models/eta:predict", big)))
    t.start()
    time.sleep(0.15)
    s.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert result["r"][0] == 200 and len(result["r"][1]["predictions"]) == 30000
    assert s.proc.wait(60) == 0, s.output()


def test_reload_swaps_versions_and_refuses_a_broken_one(eta, online_urls, tmp_path):
    live = tmp_path / "eta"
    shutil.copytree(eta["models"]["palette_transformer"][0], live)
    token = "a-token-of-sixteen-or-more"
    s = Service(tmp_path, ["--model", str(live), "--online-store", online_urls["sqlite"], "--workers", "2"],
                env={"PALETTE_SERVE_ADMIN_TOKEN": token})
    admin = {"Authorization": f"Bearer {token}"}
    try:
        assert http("GET", s.url + "/v1/models")[1]["models"][0]["stages"][0] == "PaletteTransformer"
        shutil.rmtree(live)
        shutil.copytree(eta["models"]["dsl_only"][0], live)             # the new version
        for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token}):
            status, result = http("POST", s.url + "/admin/reload", headers=wrong)
            assert status == 401 and result["error"]["code"] == "unauthorized", result
        assert http("GET", s.url + "/v1/models")[1]["models"][0]["stages"][0] == "PaletteTransformer"
        status, result = http("POST", s.url + "/admin/reload", headers=admin)
        assert status == 200 and result["ok"], result
        assert [w["ok"] for w in result["workers"]] == [True, True], result
        for _ in range(10):                                              # every worker swapped
            assert http("GET", s.url + "/v1/models")[1]["models"][0]["stages"][0] == "DSLModel"
        good = http("POST", s.url + "/v1/models/eta:predict", {"instances": requests_of(eta, 3)})
        shutil.rmtree(live / "stages")                                   # a broken version
        status, result = http("POST", s.url + "/admin/reload", headers=admin)
        assert status == 409 and not result["ok"] and "'eta'" in result["error"], result
        for _ in range(10):                                              # the last good one still serves
            assert http("POST", s.url + "/v1/models/eta:predict", {"instances": requests_of(eta, 3)}) == good
        os.kill(s.proc.pid, signal.SIGHUP)                               # a signal reloads too (and is refused)
        time.sleep(1)
        assert http("GET", s.url + "/readyz")[0] == 200
    finally:
        assert s.stop() == 0, s.output()


def test_metric_directories_are_removed_on_exit_and_orphans_at_start(eta, tmp_path):
    import tempfile
    tmp = Path(tempfile.gettempdir())
    orphan = tmp / "palette-serve-metrics-4000000-dead"              # a pid above the kernel's maximum
    orphan.mkdir(exist_ok=True)
    s = Service(tmp_path, ["--model", str(eta["models"]["dsl_only"][0]), "--online-store", eta["sqlite"]])
    try:
        assert len(list(tmp.glob(f"palette-serve-metrics-{s.proc.pid}-*"))) == 1
        assert not orphan.exists()
    finally:
        assert s.stop() == 0, s.output()
    assert not list(tmp.glob(f"palette-serve-metrics-{s.proc.pid}-*"))


def _started(s, timeout=120):
    """The URL of a service that is up but may not be ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in s.output().splitlines():
            if " on http://" in line:
                return line.split(" on ", 1)[1].split(" ")[0]
        assert s.proc.poll() is None, s.output()
        time.sleep(0.1)
    raise AssertionError(s.output())


def test_readyz_shows_each_group_s_freshness_and_require_fresh_fails_it(eta, online_urls, tmp_path):
    model = str(eta["models"]["palette_transformer"][0])
    s = Service(tmp_path, ["--model", model, "--online-store", online_urls["sqlite"],
                           "--require-fresh", "restaurant:batch_fg=3650d", "--require-fresh", "restaurant:location_fg=1s"],
                wait=False)
    try:
        url = _started(s)
        status, got = http("GET", url + "/readyz")
        assert status == 503 and got["error"]["code"] == "stale_features", got
        (problem,) = got["error"]["details"]
        assert problem["group"] == "restaurant:location_fg" and "--require-fresh allows 1 s" in problem["problem"]
        assert http("GET", url + "/healthz")[0] == 200                   # alive, only not ready
    finally:
        assert s.stop() == 0, s.output()
    s = Service(tmp_path, ["--model", model, "--online-store", online_urls["sqlite"],
                           "--require-fresh", "restaurant:batch_fg=3650d"])
    try:
        status, got = http("GET", s.url + "/readyz")
        assert status == 200
        groups = got["feature_groups"]
        assert set(groups) == {"restaurant:batch_fg", "restaurant:location_fg", "restaurant:realtime_fg",
                               "region:service_fg"}
        assert all(g["newest_event"] is not None and g["age_seconds"] >= 0 for g in groups.values()), groups
        assert groups["restaurant:batch_fg"]["require_fresh_seconds"] == 3650 * 86400
    finally:
        assert s.stop() == 0, s.output()
    s = Service(tmp_path, ["--model", model, "--online-store", online_urls["sqlite"],
                           "--require-fresh", "courier:nope=1h"], wait=False)
    assert s.proc.wait(120) == 1 and "--require-fresh names courier:nope, which no served model reads" in s.output()


def test_admin_routes_are_off_without_a_token(sqlite_service):
    status, got = http("POST", sqlite_service.url + "/admin/reload")
    assert status == 404 and "--admin-token" in got["error"]["message"]


def test_a_model_that_cannot_load_stops_the_start(eta, tmp_path):
    s = Service(tmp_path, ["--model", f"eta={tmp_path / 'missing'}"], wait=False)
    assert s.proc.wait(120) == 1
    assert "model 'eta'" in s.output() and "missing" in s.output()
    s = Service(tmp_path, ["--model", f"eta={eta['models']['palette_transformer'][0]}",
                           "--online-store", f"sqlite:///{tmp_path}/empty.db"], wait=False)
    assert s.proc.wait(120) == 1
    assert "model 'eta'" in s.output() and "empty.db" in s.output()
    s = Service(tmp_path, [], wait=False)
    assert s.proc.wait(60) == 2 and "no model to serve" in s.output()


@pytest.mark.slow
def test_redis_down_gives_503_then_serves_again_without_restart(eta, tmp_path, spark_session):
    """Under traffic, Redis is stopped (SIGSTOP: slower than the timeout), then killed and
    started again on the same port: the service answers 503 in time, never 500, never
    drops a connection, and serves again within a second of Redis being back."""
    port = free_port()
    workdir = tmp_path / "redis"
    workdir.mkdir()
    redis = start_redis(port, str(workdir), persist=True)
    url = f"redis://127.0.0.1:{port}/0?timeout_ms=2000&prefix=serve"
    eta["store"].materialize(online_store=url, spark=spark_session)
    s = Service(tmp_path, ["--model", f"eta={eta['models']['palette_transformer'][0]}",
                           "--online-store", url, "--store-timeout-ms", "100", "--workers", "2"])
    body = {"instances": requests_of(eta, 2)}
    try:
        with Traffic(s.url + "/v1/models/eta:predict", {n: body for n in range(4)}) as traffic:
            time.sleep(1)
            os.kill(redis.pid, signal.SIGSTOP)
            time.sleep(1.5)
            os.kill(redis.pid, signal.SIGCONT)
            time.sleep(1)
            redis.kill()
            redis.wait()
            time.sleep(1.5)
            redis = start_redis(port, str(workdir), persist=True)
            back = time.monotonic()
            time.sleep(2)
    finally:
        stop(redis)
        code = s.stop()
    answers = traffic.answers
    statuses = {a.status for a in answers}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses and code == 0
    slow = [a.answered - a.sent for a in answers if a.status == 503 and a.answered - a.sent > 2.0]
    assert not slow, f"503s should come within the timeout, some took {max(slow):.1f}s"
    after = [a for a in answers if a.sent >= back]
    first_ok = min(a.answered for a in after if a.status == 200)
    assert first_ok - back <= 1.0, f"served again {first_ok - back:.2f}s after Redis was back"
    assert all(a.status == 200 for a in after if a.sent >= back + 1.0)


def test_serving_reads_no_registry_and_no_delta(eta, online_urls, tmp_path):
    """Only the model directory and the online store: copies of both elsewhere, the feature
    store root gone from the environment."""
    model = tmp_path / "model"
    shutil.copytree(eta["models"]["dsl_only"][0], model)
    online = tmp_path / "online.db"
    shutil.copy(Path(online_urls["sqlite"][len("sqlite:///"):]), online)
    s = Service(tmp_path, ["--model", f"eta={model}", "--online-store", f"sqlite:///{online}"])
    try:
        status, out = http("POST", s.url + "/v1/models/eta:predict", {"instances": requests_of(eta, 4)})
        assert status == 200 and len(out["predictions"]) == 4
    finally:
        assert s.stop() == 0


def _until(what, check, seconds=1.0):
    """Poll ``check()`` until true; fail after ``seconds`` (plus one poll)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} not within {seconds}s"
        time.sleep(0.02)
    return time.monotonic() - (deadline - seconds)


def test_a_broken_then_replaced_sqlite_file_serves_again_without_restart(eta, online_urls, tmp_path):
    """A file swapped under the service (a new inode) is read within a second: a damaged one
    gives 503 JSON, and publishing a good one serves again, on every worker, no reload."""
    from palette.online import publish_sqlite
    from palette.online.sqlite_store import sqlite_path
    good = sqlite_path(online_urls["sqlite"])
    online = tmp_path / "online.db"
    shutil.copy(good, online)
    s = Service(tmp_path, ["--model", f"eta={eta['models']['palette_transformer'][0]}", "--online-store",
                           f"sqlite:///{online}", "--workers", "2"])
    body = {"instances": requests_of(eta, 2)}
    url = s.url + "/v1/models/eta:predict"
    try:
        ok = http("POST", url, body)
        assert ok[0] == 200
        (tmp_path / "junk.db").write_bytes(b"\0garbage" * 20_000)
        os.replace(tmp_path / "junk.db", online)
        # Within a second, every thread of every worker has seen the new inode (each checks its own
        # connection every 0.25 s): before that, a thread that read the old file just now still may.
        time.sleep(1.0)
        _until("503 on the damaged file", lambda: all(http("POST", url, body)[0] == 503 for _ in range(4)))
        status, err = http("POST", url, body)
        assert status == 503 and err["error"]["code"] == "online_store_unavailable" and "online.db" in \
            err["error"]["message"]
        shutil.copy(good, tmp_path / "next.db")
        publish_sqlite(tmp_path / "next.db", f"sqlite:///{online}")
        _until("serving the published file", lambda: all(http("POST", url, body) == ok for _ in range(6)))
        assert http("GET", s.url + "/readyz")[0] == 200
    finally:
        assert s.stop() == 0, s.output()


def test_config_file_and_environment(eta, online_urls, tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'online_store = "{online_urls["sqlite"]}"\nworkers = 1\n'
                   f'[models.eta]\npath = "{eta["models"]["palette_transformer"][0]}"\n'
                   f'outputs = ["prediction", "n_busy_f"]\n')
    s = Service(tmp_path, ["--config", str(cfg)])
    try:
        status, out = http("POST", s.url + "/v1/models/eta:predict", {"instances": requests_of(eta, 2)})
        assert status == 200 and set(out["predictions"][0]) == {"prediction", "n_busy_f"}
    finally:
        assert s.stop() == 0
    help_text = subprocess.run([sys.executable, "-m", "palette.serve", "--help"], capture_output=True, text=True).stdout
    for option in ("--model", "--output", "--online-store", "--workers", "--store-timeout-ms", "--max-body-bytes",
                   "--config", "PALETTE_SERVE_", "SIGTERM", "SIGHUP"):
        assert option in help_text, option


def test_a_bug_in_palette_is_a_logged_500_with_the_request_id_never_a_4xx(caplog):
    """Any exception that is not a ``PaletteError`` is palette's fault: the client gets a 500
    in the one JSON shape, carrying its request id and nothing of the exception; the log
    gets the traceback under that id. (In process, to plant the bug.)"""
    import uvicorn

    from palette.serve.app import create_app
    from palette.serve.config import ServeConfig
    from palette.serve.models import ModelSet
    model = Path(__file__).resolve().parents[1] / "fixtures" / "spark_artifacts" / "4.0.5" / "pipeline_gbt_regressor" / "model"
    config = ServeConfig.from_sources(["--model", f"gbt={model}"], env={})
    models = ModelSet(config)
    models.start()

    def bug(*args, **kwargs):
        raise RuntimeError("a bug: secret internals")
    models.models["gbt"].score = bug
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config, models), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        instance = {"a": 1.0, "b": 2.0, "c": 3.0, "cat": "x", "n": 0, "k": 1.0}
        for route, body in (("/v1/models/gbt:predict", {"instances": [instance]}),
                            ("/invocations", {"dataframe_records": [instance]})):
            with caplog.at_level("ERROR", logger="palette.serve"):
                status, got = http("POST", f"http://127.0.0.1:{port}{route}", body, headers={"X-Request-ID": "req-42"})
            assert status == 500, got
            assert got["error"]["code"] == "internal" and "req-42" in got["error"]["message"]
            assert "secret" not in json.dumps(got)
            assert "req-42" in caplog.text and "RuntimeError: a bug" in caplog.text
        assert got["error_code"] == "INTERNAL_ERROR"                  # MLflow's field on /invocations
    finally:
        server.should_exit = True
        thread.join(30)
