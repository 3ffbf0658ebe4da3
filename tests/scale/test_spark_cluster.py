"""The ETA story's jobs on a real Spark standalone cluster (a master and two workers on
loopback, each its own JVM), submitted with the pinned pyspark's ``spark-submit --master
spark://…`` as docs/scaling.md shows: the executors import palette from the venv, read the
Delta store and write Redis themselves; the stream job reads Kafka with Spark's Kafka source.

What ``local[2]`` hides fails here: a closure that does not serialize, a module the
executors cannot import, a session that ignores the submitted master (each application
must show up in the master's completed applications)."""
import glob
import json
import os
import subprocess
import time
import urllib.request
import uuid
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from palette import FeatureGroup, FeatureStore, StreamSource
from palette.examples import eta
from palette.online import open_store
from palette.testing import submit_command
import spark_env

pytestmark = pytest.mark.spark

ORDERS = 1000
STREAM_GROUPS = ("restaurant:realtime_fg", "restaurant:location_fg", "region:service_fg")


CONF = {"spark.executor.memory": "768m", "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"}


def submit(cluster, job: str, *args: str, cwd, env=None, expect: int = 0) -> subprocess.CompletedProcess:
    master, _ = cluster
    started = time.monotonic()
    done = subprocess.run(spark_env.submit(submit_command(master, job, list(args), CONF)), capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)
    print(f"spark-submit {job}: exit {done.returncode} in {time.monotonic() - started:.1f} s", flush=True)
    assert done.returncode == expect, f"{job} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done


def produce(servers: str, topic: str, table, ts: str) -> int:
    p = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for row in table.to_pylist():
        row[ts] = row[ts].isoformat()
        p.produce(topic, key=row["r_id"].encode(), value=json.dumps(row).encode())
    assert p.flush(30) == 0
    return table.num_rows


def delta_versions(path: str) -> list[int]:
    return sorted(int(os.path.basename(f)[:20]) for f in glob.glob(f"{path}/_delta_log/*.json"))


def by_age(path: str, max_age: timedelta, now: datetime) -> tuple[list[str], list[str]]:
    """The restaurants of a source whose latest event is within ``max_age`` of ``now`` (an
    hour's margin), and those past it: what the online store serves, and what it must not."""
    latest: dict[str, datetime] = {}
    for row in pq.read_table(path, columns=["r_id", "event_ts"]).to_pylist():
        t = row["event_ts"].replace(tzinfo=None)
        latest[row["r_id"]] = max(latest.get(row["r_id"], t), t)
    margin = timedelta(hours=1)
    return (sorted(r for r, t in latest.items() if now - t < max_age - margin),
            sorted(r for r, t in latest.items() if now - t > max_age + margin))


def last_json(stdout: str) -> dict:
    """The job's JSON line (py4j may log on stdout after it)."""
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def commit(path: str, version: int) -> dict:
    """The operation metrics of a Delta table's commit."""
    with open(f"{path}/_delta_log/{version:020d}.json") as f:
        actions = [json.loads(line) for line in f]
    return next(a["commitInfo"] for a in actions if "commitInfo" in a)["operationMetrics"]


@pytest.fixture(scope="module")
def story(tmp_path_factory, kafka_servers):
    """Simulated sources, and the ETA store with its stream groups reading Kafka topics that
    hold the simulation's order and location events."""
    import mlflow
    root = tmp_path_factory.mktemp("cluster")
    now = datetime.utcnow().replace(second=0, microsecond=0)
    sim = eta.simulate(str(root / "sources"), orders=ORDERS, seed=3, days=7, start=now - timedelta(days=7))
    scratch = FeatureStore(str(root / "scratch"))
    eta.declare(scratch)
    topics = {"order_events": f"orders-{uuid.uuid4().hex[:8]}", "locations": f"locations-{uuid.uuid4().hex[:8]}"}
    produced = {name: produce(kafka_servers, topic, pq.read_table(sim.paths[name]),
                              "order_ts" if name == "order_events" else "event_ts") for name, topic in topics.items()}
    store = FeatureStore(str(root / "store"))
    groups = []
    for gid, group in scratch.registry.groups().items():
        if group.kind == "stream":
            name = "locations" if gid == "restaurant:location_fg" else "order_events"
            source = StreamSource("kafka", group.source.schema, group.source.timestamp_col, topic=topics[name],
                                  servers=kafka_servers)
            group = FeatureGroup.from_json({**group.to_json(), "source": source})
        groups.append(group)
    store.register(*[scratch.entity(e) for e in ("restaurant", "region")], *groups)
    tracking = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(tracking)
    mlflow.create_experiment("eta_cluster", artifact_location=f"file://{root}/artifacts")
    return {"root": root, "sim": sim, "store": store, "produced": produced, "now": now,
            "env": {"MLFLOW_TRACKING_URI": tracking, "PALETTE_STORE_ROOT": store.root}}


def test_the_eta_jobs_run_on_a_standalone_cluster(spark_cluster, story, redis_url):
    root, sim, store, env = story["root"], story["sim"], story["store"], story["env"]
    run = lambda job, *args, **kw: submit(spark_cluster, job, *args, cwd=root, env=env, **kw)  # noqa: E731

    # ingest: the batch group's source into Delta, from the executors
    batch = pq.read_table(sim.paths["batch_fg"])
    run("ingest", "--group", "restaurant:batch_fg", "--source", sim.paths["batch_fg"])
    versions = delta_versions(store.table_path("restaurant:batch_fg"))     # created, then merged into
    assert versions and commit(store.table_path("restaurant:batch_fg"), versions[-1])["numTargetRowsInserted"] \
        == str(batch.num_rows)

    # stream: the three stream groups from Kafka into Delta and Redis, what the topics hold, then exit
    run("stream", *[a for g in STREAM_GROUPS for a in ("--group", g)], "--checkpoint", str(root / "checkpoints"),
        "--online-store", redis_url, "--once")
    online = open_store(redis_url)
    fresh, expired = by_age(sim.paths["locations"], eta.MAX_AGE["location_fg"], story["now"])
    (found,) = online.read([(online.layout("restaurant:location_fg"), fresh + expired)])
    assert fresh and [f is not None for f in found] == [True] * len(fresh) + [False] * len(expired)
    for gid in STREAM_GROUPS:
        assert delta_versions(store.table_path(gid)), gid

    # train: point-in-time features on the cluster, logged and registered in MLflow
    trained = last_json(run("train", "--pipeline", "palette.examples.eta:pipeline", "--pipeline-arg", "max_iter=5",
                             "--data", sim.paths["orders"], "--label", "delivery_minutes", "--timestamp-col",
                             "order_ts", "--experiment", "eta_cluster", "--register", "eta_cluster",
                             "--alias", "champion").stdout)
    assert trained["registered"] == "models:/eta_cluster/1"
    assert trained["train_rows"] + trained["test_rows"] == ORDERS
    assert trained["metrics"]["rmse"] < trained["metrics"]["baseline_rmse"]

    # materialize: every group's latest values into Redis, written by the executors
    run("materialize", "--online-store", redis_url, "--full")
    fresh, expired = by_age(sim.paths["batch_fg"], eta.MAX_AGE["batch_fg"], story["now"])
    (found,) = online.read([(online.layout("restaurant:batch_fg", refresh=True), fresh + expired + ["nobody"])])
    assert fresh and [f is not None for f in found] == [True] * len(fresh) + [False] * (len(expired) + 1)

    # batch_score: every order scored into a Delta table partitioned by run id
    out = run("batch_score", "--model", "models:/eta_cluster@champion", "--input", sim.paths["orders"],
              "--output", str(root / "predictions"), "--run-id", "cluster-1", "--keep", "order_id,r_id,order_ts").stdout
    assert f"'rows': {ORDERS}" in out and "'version': 0" in out, out
    scores = pq.read_table(root / "predictions" / "run_id=cluster-1")
    assert scores.num_rows == ORDERS and scores.column("prediction").null_count == 0

    # parity: the registered model's transform() on the cluster against the serving path reading Redis
    now = story["now"]
    pq.write_table(pq.read_table(sim.paths["orders"], columns=["r_id", "order_size"]).slice(0, 300)
                   .append_column("order_ts", pa.array([now] * 300)), root / "requests.parquet")
    run("parity", "--model", "models:/eta_cluster@champion", "--data", str(root / "requests.parquet"),
        "--online-store", redis_url, "--sample", "200", "--json", str(root / "parity.json"))
    report = json.loads((root / "parity.json").read_text())
    assert report["ok"] is True and report["rows"] == 200

    # every application ran on the cluster, with executors on its workers
    state = json.loads(urllib.request.urlopen(spark_cluster[1] + "/json", timeout=5).read())
    names = [a["name"] for a in state["completedapps"]]
    for app in ("palette-ingest-restaurant:batch_fg", "palette-stream", "palette-train", "palette-materialize",
                "palette-batch-score", "palette-parity"):
        assert app in names, names
    online.close()
