"""A served model against its training profile: the reference saved with the model, served
profiles from a real serving process, a planted shift found, the importance-weighted
drift, and the CLI's exit code."""
import json
import shutil

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from palette.cli import main
from palette.examples import eta as eta_example
from palette.monitor.model_report import model_report
from palette.monitor.reference import NoReference, build_reference, load_reference, save_reference
from palette.monitor.served import read_served

from eta_fixtures import AS_OF
from processes import Service, http


@pytest.fixture(scope="module")
def referenced(eta, spark_session, tmp_path_factory):
    """The ETA model copied with its training profile saved beside it."""
    tmp = tmp_path_factory.mktemp("monitored")
    path = tmp / "model"
    shutil.copytree(eta["models"]["palette_transformer"][0], path)
    train = spark_session.createDataFrame(eta["requests"], "order_id long, r_id string, order_size long") \
        .withColumn("order_ts", F.lit(AS_OF)).withColumn("eta", F.col("order_size") * 3.0 + F.col("order_id") % 7)
    model = PipelineModel.load(str(path))
    reference = build_reference(model, train, request_fields={"r_id": "str", "order_size": "num"}, keys={"r_id"})
    save_reference(reference, path)
    return tmp, path, reference, model


def test_the_reference_holds_the_training_profile_and_the_gbt_s_importances(referenced, eta):
    eta_requests = eta["requests"]
    _, path, reference, model = referenced
    assert set(reference["importance"]) == set(eta_example.FEATURES)
    spark_importances = model.stages[-1].featureImportances.toArray()
    assert [reference["importance"][f] for f in eta_example.FEATURES] == pytest.approx(list(spark_importances))
    assert reference["importance_method"] == "featureImportances"
    loaded = load_reference(str(path))
    assert loaded["rows"] == 3000 and {"order_size", "prep_time_f", "prediction", "eta"} <= set(loaded["profiles"])
    assert {"order_size", "prep_time_f", "region_id", "prediction"} <= set(loaded["monitored"])
    assert not {"r_id", "order_id", "eta", "order_ts"} & set(loaded["monitored"])      # keys, ids, the label
    assert loaded["profiles"]["order_size"].mean == pytest.approx(np.mean([r["order_size"] for r in eta_requests]))


def test_a_shifted_input_served_is_found_and_weighted_by_importance(referenced, eta, online_urls, tmp_path):
    tmp, path, reference, _ = referenced
    logs = tmp_path / "logs"
    service = Service(tmp_path, ["--model", f"eta={path}", "--model", f"same={path}", "--online-store",
                                 online_urls["sqlite"], "--log-dir", str(logs), "--log-sample", "0",
                                 "--profile-window", "1"])
    try:
        rows = [{"r_id": r["r_id"], "order_size": r["order_size"]} for r in eta["requests"]]
        for i in range(0, 3000, 100):                     # the training requests as they were: no drift
            status, out = http("POST", service.url + "/v1/models/same:predict", {"instances": rows[i:i + 100]})
            assert status == 200, out
        shifted = [{**r, "order_size": r["order_size"] + 2} for r in rows]
        for i in range(0, 3000, 100):
            status, out = http("POST", service.url + "/v1/models/eta:predict", {"instances": shifted[i:i + 100]})
            assert status == 200, out
        import time
        deadline = time.monotonic() + 30                # a finished window is written while serving
        while not read_served(logs / "_profiles", "eta") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert read_served(logs / "_profiles", "eta"), "no served window written within 30 s"
        status, metrics = http("GET", service.url + "/metrics")
        assert status == 200 and 'palette_served_mean{feature="order_size",model="eta"}' in metrics
    finally:
        assert service.stop() == 0, service.output()
    same = model_report("same", logs)
    assert not [t for t in same.alerts if t.feature in ("order_size", "order_size_f")], str(same)
    report = model_report("eta", logs)
    alerted = {t.feature for t in report.alerts}
    assert {"order_size", "order_size_f"} <= alerted, str(report)
    assert report.latest_iwd > same.latest_iwd and report.exit_code == 1
    top, _ = report.contributions()[0]
    assert top in eta_example.FEATURES
    assert "false discovery rate controlled at q=0.05" in str(report)
    out = tmp_path / "eta.json"
    assert main(["monitor", "model", "eta", "--logs", str(logs), "--json", str(out), "--html",
                 str(tmp_path / "eta.html")]) == 1
    js = json.loads(out.read_text())
    assert js["kind"] == "monitoring" and js["ok"] is False and js["iwd"]
    page = (tmp_path / "eta.html").read_text()
    assert "<svg" in page and "reference" in page and "<script" not in page


def test_a_model_without_a_reference_is_told_how_to_get_one(eta):
    with pytest.raises(NoReference, match="reference_data=train_df"):
        load_reference(eta["models"]["dsl_only"][0])
