"""The ETA example as a product: simulated data ingested, ``palette job train`` fitting and
logging it to a real MLflow (SQLite tracking store, local artifacts, the model registry),
then the logged model used every way a user would — Spark's flavor, the JVM-free pyfunc
in a process that cannot import pyspark, ``palette serve`` and ``mlflow models serve`` of a
registry URI, ``batch_score`` into Delta, and the registry's lineage."""
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta

import mlflow
import pytest
from pyspark.sql import functions as F

from palette import FeatureStore, PaletteError
from palette.errors import ArtifactError
from palette.examples import eta
from palette.jobs import batch_score, materialize, parity, train
from palette.testing import free_port, stop
from palette.transformers import load_scorer
from processes import BLOCKER, Service, http

DAYS = 14


@pytest.fixture(scope="module")
def trained(spark_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_jobs")
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.create_experiment("eta", artifact_location=f"file://{root}/artifacts")
    end = datetime.utcnow().replace(second=0, microsecond=0)
    sim = eta.simulate(str(root / "src"), orders=1500, seed=3, days=DAYS, start=end - timedelta(days=DAYS))
    store = FeatureStore(root / "store")
    eta.declare(store)
    ingested = eta.ingest(spark_session, store, sim)
    result = train.run("palette.examples.eta:pipeline", sim.paths["orders"], "delivery_minutes", "order_ts",
                       store_root=store.root, experiment="eta", register="eta", alias="champion",
                       pipeline_args={"max_iter": 15, "max_depth": 4}, spark=spark_session)
    online = f"sqlite:///{root}/online.db"
    materialize.run(online, store_root=store.root, spark=spark_session)
    yield {"root": root, "sim": sim, "store": store, "result": result, "online": online, "ingested": ingested,
           "end": end}
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI")
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


def requests(trained, n=200):
    orders = trained["sim"].paths["orders"]
    import pyarrow.parquet as pq
    rows = pq.read_table(orders, columns=["r_id", "order_size"]).slice(0, n).to_pylist()
    return rows + [{"r_id": "no-such-restaurant", "order_size": 2}]


def spark_predictions(spark, model_uri, rows, at):
    from palette.jobs.batch_score import load_model
    df = spark.createDataFrame([(i, r["r_id"], r["order_size"], at) for i, r in enumerate(rows)],
                               "i int, r_id string, order_size int, order_ts timestamp")
    return {r.i: r.prediction for r in load_model(model_uri).transform(df).collect()}


def test_train_job_splits_by_time_and_beats_the_baseline(trained):
    r, sim = trained["result"], trained["sim"]
    m = r["metrics"]
    assert r["train_rows"] + r["test_rows"] == 1500 and r["test_rows"] > 250
    assert datetime.fromisoformat(r["split_at"]) > sim.start + timedelta(days=DAYS * 0.7)
    assert m["rmse"] < 0.75 * m["baseline_rmse"], m          # point-in-time features carry real skill
    assert r["registered"] == "models:/eta/1" and r["alias"] == "models:/eta@champion"
    run = mlflow.get_run(r["run_id"])
    assert run.data.metrics["rmse"] == pytest.approx(m["rmse"])
    assert run.data.params["5.GBTRegressor.labelCol"] == "delivery_minutes"
    assert (run.data.params["5.GBTRegressor.maxIter"], run.data.params["pipeline_arg.max_iter"]) == ("15", "15")
    assert json.loads(run.data.tags["palette.feature_tables"]) == {
        g: trained["ingested"][g]["version"] for g in trained["ingested"]}


def test_the_logged_model_has_two_flavors_and_its_lineage(trained, spark_session):
    from palette.mlflow import read_lineage
    local = mlflow.artifacts.download_artifacts("models:/eta/1")
    meta = mlflow.models.Model.load(local)
    assert meta.flavors["python_function"]["loader_module"] == "palette.mlflow.pyfunc"
    assert meta.flavors["spark"]["model_data"] == meta.flavors["palette"]["data"] == "sparkml"
    assert {c.name: c.type.name for c in meta.signature.inputs.inputs} == {"r_id": "string", "order_size": "long"}
    reqs = open(os.path.join(local, "requirements.txt")).read()
    assert "palette-ml==" in reqs and "pyspark" not in reqs and "delta" not in reqs
    lineage = read_lineage("models:/eta/1")
    assert lineage["training_window"]["end"] == trained["result"]["split_at"]
    assert lineage["request_fields"] == {"r_id": "str", "order_size": "num"}
    # Time travel rebuilds what training read, after new data lands.
    store = trained["store"]
    table = lineage["feature_tables"]["restaurant:batch_fg"]
    before = spark_session.read.format("delta").option("versionAsOf", table["version"]).load(table["table"]).count()
    store.ingest(spark_session.createDataFrame([("r0", trained["end"] - timedelta(minutes=1), 99.0)],
                                               "r_id string, event_ts timestamp, prep_time double"),
                 "restaurant:batch_fg")
    assert table["pinned"] and store.version("restaurant:batch_fg", spark_session) > table["version"]
    again = spark_session.read.format("delta").option("versionAsOf", table["version"]).load(table["table"]).count()
    assert again == before == trained["ingested"]["restaurant:batch_fg"]["inserted"]
    # The registry's search by model reads it.
    found = sorted(f.id for f in store.search(model="models:/eta@champion"))
    assert found == ["region:service_fg:n_busy", "restaurant:batch_fg:prep_time", "restaurant:location_fg:lat",
                     "restaurant:location_fg:long", "restaurant:realtime_fg:n_meal"]
    assert [f.id for f in store.search("n_busy", model="models:/eta/1")] == ["region:service_fg:n_busy"]


def test_the_readme_s_log_model_call_gives_a_pyfunc_that_takes_integers(trained, monkeypatch):
    """README: ``palette.mlflow.log_model(model, "eta", registered_model_name="eta")``, no
    input_schema; then a caller's DataFrame of Python ints, as pandas makes it (int64)."""
    import mlflow.pyfunc
    import mlflow.spark
    import pandas as pd
    import palette.mlflow
    model = mlflow.spark.load_model("models:/eta/1")
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("eta").experiment_id):
        info = palette.mlflow.log_model(model, "eta", registered_model_name="eta_readme")
    monkeypatch.setenv("PALETTE_ONLINE_STORE", trained["online"])
    pyfunc = mlflow.pyfunc.load_model(f"models:/eta_readme/{info.registered_model_version}")
    frame = pd.DataFrame([{"r_id": "r1", "order_size": 3}, {"r_id": "r2", "order_size": 1}])
    assert frame["order_size"].dtype == "int64"
    got = pyfunc.predict(frame)
    assert len(got) == 2 and all(isinstance(float(p), float) for p in got)
    assert list(pyfunc.predict(pd.DataFrame([{"r_id": "r1", "order_size": 3.0}]))) == [got[0]]
    with pytest.raises(Exception, match="order_size.*must be a number"):
        pyfunc.predict(pd.DataFrame([{"r_id": "r1", "order_size": "three"}]))


def test_spark_flavor_loads_the_pipeline_model(trained, spark_session):
    import mlflow.spark
    rows = requests(trained, 50)
    at = trained["end"]
    expected = spark_predictions(spark_session, "models:/eta/1", rows, at)
    df = spark_session.createDataFrame([(i, r["r_id"], r["order_size"], at) for i, r in enumerate(rows)],
                                       "i int, r_id string, order_size int, order_ts timestamp")
    got = {r.i: r.prediction for r in mlflow.spark.load_model("models:/eta/1").transform(df).collect()}
    assert got == expected


PYFUNC = BLOCKER + '''
import json, sys
import mlflow.pyfunc, pandas as pd
rows = json.load(open(sys.argv[1]))
model = mlflow.pyfunc.load_model(sys.argv[2], model_config={"online_store": sys.argv[3]})
out = model.predict(pd.DataFrame(rows))
assert not [m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "delta")]
json.dump(out.tolist(), open(sys.argv[4], "w"))
'''


def test_pyfunc_scores_without_pyspark_with_spark_s_predictions(trained, spark_session, tmp_path):
    """``mlflow.pyfunc.load_model(uri).predict(df)`` where importing pyspark raises and
    java is not on PATH: the same predictions as Spark's transform at the same instant
    (features read from the online store the training data was materialized into)."""
    rows = requests(trained)
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    (tmp_path / "score.py").write_text(PYFUNC)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = os.path.dirname(sys.executable)
    before = datetime.utcnow()
    proc = subprocess.run([sys.executable, str(tmp_path / "score.py"), str(tmp_path / "rows.json"),
                           "models:/eta@champion", trained["online"], str(tmp_path / "out.json")],
                          env=env, capture_output=True, text=True, timeout=300)
    after = datetime.utcnow()
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())
    # A value may expire (pass its max age) between the two instants: each prediction is
    # Spark's as of one of them.
    at_before = spark_predictions(spark_session, "models:/eta/1", rows, before)
    at_after = spark_predictions(spark_session, "models:/eta/1", rows, after)
    for i, p in enumerate(got):
        assert p == pytest.approx(at_before[i], rel=1e-9) or p == pytest.approx(at_after[i], rel=1e-9), i
    assert len(set(got)) > 20                                      # real features, not one imputed constant


def test_palette_serve_takes_registry_uris(trained, tmp_path):
    rows = requests(trained, 20)
    s = Service(tmp_path, ["--model", "models:/eta@champion", "--online-store", trained["online"]])
    try:
        status, body = http("POST", s.url + "/v1/models/eta:predict", {"instances": rows})
        (described,) = http("GET", s.url + "/v1/models")[1]["models"]
    finally:
        assert s.stop() == 0, s.output()
    assert status == 200, body
    assert described["path"] == "models:/eta@champion"                  # what it was asked for, and what that was
    assert described["version"] == "models:/eta/1"                       # its X-Model-Version and its logs' version
    assert described["source"] == {"uri": "models:/eta@champion", "name": "eta", "version": 1,
                                   "run_id": trained["result"]["run_id"]}
    assert described["lineage"]["feature_tables"]["restaurant:batch_fg"]["version"] == \
        trained["ingested"]["restaurant:batch_fg"]["version"]
    assert "restaurant:realtime_fg:n_meal" in " ".join(described["lineage"]["feature_refs"])
    direct = load_scorer("models:/eta/1", online_store=trained["online"]).scoreBatch(rows)
    assert [p["prediction"] if isinstance(p, dict) else p for p in body["predictions"]] == \
        pytest.approx([d["prediction"] for d in direct], rel=1e-9)


def _invocations(trained, rows) -> list[tuple[str, bytes | dict, str]]:
    """(what, body, Content-Type) of /invocations requests as MLflow's clients send them."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = ["r_id", "order_size"]
    parquet = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    csv = "r_id,order_size\n" + "\n".join(f"{r['r_id']},{r['order_size']}" for r in rows)
    return [
        ("dataframe_split", {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in rows]}}, JSON),
        ("dataframe_records", {"dataframe_records": rows}, JSON),
        ("instances as rows", {"instances": rows}, JSON),
        ("instances as columns", {"instances": {c: [r[c] for r in rows] for c in cols}}, JSON),
        ("inputs as columns", {"inputs": {c: [r[c] for r in rows] for c in cols}}, JSON),
        ("inputs, one row of scalars", {"inputs": rows[0]}, JSON),
        ("params: columns", {"dataframe_records": rows, "params": {"columns": ["prediction", "region_id"]}}, JSON),
        ("other params", {"dataframe_records": rows, "params": {"temperature": 0.5}}, JSON),
        ("charset", {"dataframe_records": rows}, "application/json; charset=utf-8"),
        ("csv", csv.encode(), "text/csv"),
        ("parquet", parquet.getvalue(), "application/vnd.apache.parquet"),
        ("text/plain", b"r_id\nr1", "text/plain"),
        ("latin-1", {"dataframe_records": rows}, "application/json; charset=latin-1"),
        ("content type parameter", {"dataframe_records": rows}, "application/json; format=pandas-split"),
        ("two formats", {"dataframe_records": rows, "inputs": rows}, JSON),
        ("not JSON", b"{", JSON),
    ]


JSON = "application/json"


def test_palette_serve_answers_invocations_as_mlflow_models_serve_does(trained, tmp_path):
    """The same model, served by ``mlflow models serve`` (its pyfunc flavor, in a process
    that cannot import pyspark) and by ``palette serve``: request for request, the same
    status, the same predictions, and MLflow's words for the content types it refuses."""
    rows = requests(trained, 6)
    port = free_port()
    env = {**os.environ, "PALETTE_ONLINE_STORE": trained["online"], "PYTHONPATH": str(_blocker_dir(tmp_path)),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}   # its uvicorn
    env.pop("JAVA_HOME", None)
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mlflow"), "models", "serve", "-m",
                             "models:/eta/1", "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=open(tmp_path / "mlflow.log", "w"), stderr=subprocess.STDOUT)
    ours = Service(tmp_path, ["--model", "eta=models:/eta/1", "--online-store", trained["online"]])
    answers = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http("GET", f"http://127.0.0.1:{port}/ping", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "mlflow.log").read_text()
            time.sleep(0.3)
        for what, body, kind in _invocations(trained, rows):
            theirs = http("POST", f"http://127.0.0.1:{port}/invocations", body, kind)
            answers.append((what, theirs, http("POST", ours.url + "/invocations", body, kind)))
    finally:
        stop(proc)
        assert ours.stop() == 0, ours.output()
    direct = load_scorer("models:/eta/1", online_store=trained["online"]).scoreBatch(rows)
    for what, (status, theirs), (our_status, mine) in answers:
        assert our_status == status, (what, status, theirs, our_status, mine)
        if status == 200:
            assert mine["predictions"] == theirs["predictions"], what
        elif status == 415:
            said = theirs.split(" IMPORTANT:")[0].strip()         # MLflow appends a note on its 2.0 protocol
            assert said.rstrip(".") in mine["message"], (what, theirs, mine)
        else:
            assert theirs["error_code"] == mine["error_code"] == "BAD_REQUEST", (what, theirs, mine)
    by_what = {what: theirs for what, (_, theirs), _ in answers}
    assert by_what["dataframe_records"]["predictions"] == pytest.approx([d["prediction"] for d in direct], rel=1e-9)
    assert set(by_what["params: columns"]["predictions"][0]) == {"prediction", "region_id"}


def _blocker_dir(tmp_path):
    site = tmp_path / "nospark"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return site


def test_batch_score_is_idempotent_per_run_id(trained, spark_session, tmp_path):
    orders = trained["sim"].paths["orders"]
    out = str(tmp_path / "scores")
    first = batch_score.run("models:/eta@champion", orders, out, "2026-12-01", keep=["order_id", "r_id"],
                            spark=spark_session)
    other = batch_score.run("models:/eta/1", orders, out, "2026-12-02", keep=["order_id"], spark=spark_session)
    again = batch_score.run("models:/eta@champion", orders, out, "2026-12-01", keep=["order_id", "r_id"],
                            spark=spark_session)
    table = spark_session.read.format("delta").load(out)
    counts = {r.run_id: r["count"] for r in table.groupBy("run_id").count().collect()}
    assert counts == {"2026-12-01": 1500, "2026-12-02": 1500}
    assert (first["rows"], again["rows"], again["replaced"], other["replaced"]) == (1500, 1500, 1500, 0)
    assert table.where(F.col("prediction").isNull()).count() == 0
    with pytest.raises(ValueError, match="run-id"):
        batch_score.run("models:/eta/1", orders, out, "bad id; drop", spark=spark_session)
    with pytest.raises(ValueError, match="--keep nope"):
        batch_score.run("models:/eta/1", orders, out, "x", keep=["nope"], spark=spark_session)
    assert spark_session.read.format("delta").load(out).count() == 3000           # nothing half-written


def test_parity_figures_go_to_the_training_run(trained, spark_session, tmp_path):
    at = datetime.utcnow()
    data = str(tmp_path / "requests")
    spark_session.createDataFrame([(r["r_id"], r["order_size"], at) for r in requests(trained, 300)],
                                  "r_id string, order_size int, order_ts timestamp").write.parquet(data)
    run_id = trained["result"]["run_id"]
    report = parity.run("models:/eta@champion", data, online_store=trained["online"], mlflow_run=run_id,
                        spark=spark_session)
    metrics = mlflow.get_run(run_id).data.metrics
    assert metrics["parity_rows"] == 301 and metrics["parity_ok"] == float(report.ok)
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "parity")}
    assert names == {"parity/parity.html", "parity/parity.json", "parity/parity.txt"}


def test_bad_input_gets_clear_errors(trained, spark_session, tmp_path):
    from palette.mlflow import log_model
    from pyspark.ml import Pipeline
    with pytest.raises(ArtifactError, match="cannot fetch MLflow model models:/nope/1"):
        load_scorer("models:/nope/1")
    with pytest.raises(PaletteError, match="fit the Pipeline first"):
        with mlflow.start_run():
            log_model(Pipeline(stages=[]), "unfitted")
    code = train.main(["--pipeline", "palette.examples.eta:nope", "--data", trained["sim"].paths["orders"],
                       "--label", "delivery_minutes", "--timestamp-col", "order_ts"])
    assert code == 1
    with pytest.raises(PaletteError, match="--pipeline-arg trees: palette.examples.eta:pipeline takes store_root"):
        train.run("palette.examples.eta:pipeline", trained["sim"].paths["orders"], "delivery_minutes", "order_ts",
                  pipeline_args={"trees": 3}, store_root=trained["store"].root, spark=spark_session)
    with pytest.raises(ValueError, match="has no column 'minutes'"):
        train.run("palette.examples.eta:pipeline", trained["sim"].paths["orders"], "minutes", "order_ts",
                  store_root=trained["store"].root, spark=spark_session)
    with pytest.raises(ValueError, match="leaves .* training and 0 test rows"):
        train.run("palette.examples.eta:pipeline", trained["sim"].paths["orders"], "delivery_minutes", "order_ts",
                  split_at=datetime(2100, 1, 1), store_root=trained["store"].root, spark=spark_session)
