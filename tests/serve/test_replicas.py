"""Several serving replicas: separate `palette serve` processes (each with its own workers)
that share nothing but the feature-log root (and, deployed, the online store). Every writer
writes its own files, SIGTERM loses no record, a reload is one replica's own, and every
answer names the model version that computed it — what a rolling update relies on. No
Spark: the models are the committed Spark 4.0.5 artifacts."""
import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from palette.logs import FeatureLog
from palette.serve.app import VERSION_HEADER
from processes import Service, http

ARTIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "spark_artifacts" / "4.0.5" / "pipeline_gbt_regressor"
MODEL = ARTIFACT / "model"
TOKEN = "a-replica-token-of-16-chars"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def instances():
    rows = json.loads((ARTIFACT / "transform.json").read_text())["inputs"]
    return [{f: r[f] for f in ("a", "b", "c", "cat", "n", "k")} for r in rows]


def predict(service, instance, request_id=None):
    """(status, prediction, the X-Model-Version header) of one instance."""
    req = urllib.request.Request(service.url + "/v1/models/gbt:predict", method="POST",
                                 data=json.dumps({"instances": [instance]}).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"X-Request-ID": request_id} if request_id else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())["predictions"][0], r.headers.get(VERSION_HEADER)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers.get(VERSION_HEADER)


def start_all(tmp_path, *args_list, env=None):
    services = [Service(tmp_path, args, wait=False, env=env) for args in args_list]
    for s in services:                                      # they start side by side
        s.wait_ready()
    return services


def point(link: Path, target: Path) -> None:
    """Flip a symlink atomically (how a version is deployed: docs/serving.md)."""
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)


def test_writers_in_one_process_never_share_a_file_name(tmp_path):
    """Same pid, same second, same sequence numbers: the names differ by the writer's id."""
    logs = [FeatureLog(tmp_path / "logs", roll_rows=1) for _ in range(2)]
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for i in range(5):
        for w, log in enumerate(logs):
            log.submit({"request_id": f"w{w}-{i}", "request_time": at, "model": "m", "version": "v", "keys": "{}",
                        "features": [], "request": "{}", "prediction": "1"})
    for log in logs:
        log.close()
    files = list((tmp_path / "logs").rglob("*.parquet"))
    assert len(files) == 10 and len({f.name for f in files}) == 10
    assert sorted(pq.read_table(tmp_path / "logs").column("request_id").to_pylist()) == \
        sorted(f"w{w}-{i}" for w in range(2) for i in range(5))


def test_two_replicas_log_every_request_once_into_one_root_even_on_sigterm(tmp_path):
    root = tmp_path / "logs"
    # A with two workers: three writers in two replicas; nothing rolls before SIGTERM (60 s)
    a, b = start_all(tmp_path, ["--model", f"gbt={MODEL}", "--workers", "2", "--log-dir", str(root)],
                     ["--model", f"gbt={MODEL}", "--log-dir", str(root)])
    n, sent = 60, []
    try:
        rows = instances()
        jobs = [(s, f"{name}-{i}", rows[i % len(rows)]) for s, name in ((a, "a"), (b, "b")) for i in range(n)]
        with ThreadPoolExecutor(8) as pool:                 # concurrent: both of A's workers answer
            for status, _, version in pool.map(lambda j: predict(j[0], j[2], j[1]), jobs):
                assert status == 200 and version == os.path.realpath(MODEL)
        sent = [rid for _, rid, _ in jobs]
    finally:
        for s in (a, b):
            s.proc.send_signal(signal.SIGTERM)              # both at once, as a rolling restart may
        for s in (a, b):
            assert s.proc.wait(90) == 0, s.output()
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]          # no half-written file
    table = pq.read_table(root)                             # date=/model= partitions; _profiles skipped
    ids = table.column("request_id").to_pylist()
    assert len(ids) == len(set(ids)) == 2 * n and sorted(ids) == sorted(sent)
    assert set(table.column("model").to_pylist()) == {"gbt"}
    assert set(table.column("version").to_pylist()) == {os.path.realpath(MODEL)}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Replica A on v1 and replica B on v2 (each its model directory through a symlink),
    with the admin route on: {"a", "b", "v1", "v2", "dir"}."""
    tmp = tmp_path_factory.mktemp("replicas")
    v1, v2 = shutil.copytree(MODEL, tmp / "gbt-v1"), shutil.copytree(MODEL, tmp / "gbt-v2")
    point(tmp / "a-current", v1)
    point(tmp / "b-current", v2)
    a, b = start_all(tmp, ["--model", f"gbt={tmp / 'a-current'}"], ["--model", f"gbt={tmp / 'b-current'}"],
                     env={"PALETTE_SERVE_ADMIN_TOKEN": TOKEN})
    yield {"a": a, "b": b, "v1": v1, "v2": v2, "dir": tmp}
    for s in (a, b):
        assert s.stop() == 0, s.output()


def serving_version(service) -> str:
    return http("GET", service.url + "/v1/models/gbt")[1]["version"]


def test_each_replica_answers_with_its_own_version(replicas):
    a, b = replicas["a"], replicas["b"]
    for s, v in ((a, replicas["v1"]), (b, replicas["v2"])):
        status, ready = http("GET", s.url + "/readyz")
        assert status == 200 and ready["models"] == ["gbt"] and ready["reloading"] is False
        assert serving_version(s) == os.path.realpath(v)
    instance = instances()[0]
    (sa, pa, va), (sb, pb, vb) = predict(a, instance), predict(b, instance)
    assert (sa, sb) == (200, 200) and pa == pb                  # the same model, saved twice
    assert (va, vb) == (os.path.realpath(replicas["v1"]), os.path.realpath(replicas["v2"]))


def test_a_reload_is_one_replica_s_own(replicas):
    a, b, tmp = replicas["a"], replicas["b"], replicas["dir"]
    b_before, b_ready = serving_version(b), http("GET", b.url + "/readyz")[1]
    v_new = shutil.copytree(MODEL, tmp / f"gbt-new{time.monotonic_ns()}")
    point(tmp / "a-current", v_new)
    point(tmp / "b-current", v_new)                          # B's directory moved too, but B is not told
    status, result = http("POST", a.url + "/admin/reload", headers=ADMIN)
    assert status == 200 and result["ok"], result
    assert predict(a, instances()[0])[2] == serving_version(a) == os.path.realpath(v_new)
    assert predict(b, instances()[0])[2] == serving_version(b) == b_before
    assert http("GET", b.url + "/readyz")[1]["generation"] == b_ready["generation"]
    assert http("GET", b.url + "/v1/models")[1]["last_reload"] is None


def test_a_replica_loading_a_slow_version_stays_ready_on_the_one_it_serves(replicas):
    """The new version's metadata is a FIFO: loading blocks on it until the test writes it,
    so "while loading" is a state the test holds, not a moment it hopes to hit."""
    b, tmp = replicas["b"], replicas["dir"]
    before = serving_version(b)
    generation = http("GET", b.url + "/readyz")[1]["generation"]
    slow = shutil.copytree(MODEL, tmp / f"gbt-slow{time.monotonic_ns()}")
    (meta,) = (slow / "metadata").glob("part-*")
    content = meta.read_bytes()
    meta.unlink()
    os.mkfifo(meta)
    point(tmp / "b-current", slow)
    reloaded = {}
    t = threading.Thread(target=lambda: reloaded.update(r=http("POST", b.url + "/admin/reload", headers=ADMIN,
                                                               timeout=120)))
    t.start()
    fd, deadline = None, time.monotonic() + 60
    while fd is None:                                        # until B's reload opens the metadata
        try:
            fd = os.open(meta, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert time.monotonic() < deadline and t.is_alive(), (reloaded, b.output())
            time.sleep(0.05)
    try:
        status, ready = http("GET", b.url + "/readyz")
        assert status == 200 and ready["reloading"] is True and ready["generation"] == generation
        status, _, version = predict(b, instances()[0])
        assert status == 200 and version == before                   # the old version answers meanwhile
        replaced = meta.with_name("metadata.done")
        replaced.write_bytes(content)
        os.replace(replaced, meta)                                   # later reads find a plain file
        os.set_blocking(fd, True)
        os.write(fd, content)
    finally:
        os.close(fd)
    t.join(120)
    status, result = reloaded["r"]
    assert status == 200 and result["ok"], result
    status, ready = http("GET", b.url + "/readyz")
    assert status == 200 and ready["reloading"] is False and ready["generation"] == generation + 1
    assert predict(b, instances()[0])[2] == serving_version(b) == os.path.realpath(slow)
