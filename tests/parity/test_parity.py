"""The parity harness: it finds planted bugs on either path and blames the right stage,
tells a stale online store from a logic bug, and passes the tutorial's ETA pipeline on
10,000 rows against SQLite and Redis."""
import json
import os
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import LinearRegression
from pyspark.sql import functions as F

from palette import DSLTransformer, Entity, FeatureGroup, FeatureStore, PaletteTransformer, nFill, nVal
from palette.errors import ParityError
from palette.examples import eta as eta_example
from palette.parity import assert_parity, check_parity, same
from palette.parity.compare import errors

from eta_fixtures import N_RESTAURANTS


def test_comparison_rules():
    nan = float("nan")
    assert same(None, None) and not same(None, 0.0) and not same(None, nan) and same(nan, nan)
    assert same(1.0, 1.0 + 1e-12) and not same(1.0, 1.0 + 1e-6)
    assert same(1.0, 1.0 + 1e-6, rtol=1e-5) and same(0.0, 1e-9, atol=1e-8) and not same(0.0, 1e-9)
    assert same(float("inf"), float("inf")) and not same(float("inf"), 1e308)
    assert same([1.0, 2.0], (1.0, 2.0)) and not same([1.0, 2.0], [1.0]) and not same([1.0, nan], [1.0, 0.0])
    assert same(3, 3.0) and not same(1, True) and same("a", "a") and not same("a", "b")
    assert same(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert errors(2.0, 2.5) == (0.5, 0.25) and errors([1.0, 4.0], [1.5, 4.0]) == (0.5, 0.5)
    assert errors("a", "b") is None


@pytest.fixture(scope="module")
def numbers(spark_session):
    rows = [(x, i % 2) for i, x in enumerate([0.5, 1.5, 2.5, -0.5, 3.2, -2.5, 7.0, 1.25])] + [(None, 0)]
    return spark_session.createDataFrame(rows, "x double, label int")


def test_a_planted_spark_rule_bug_is_blamed_on_its_stage(numbers, monkeypatch, tmp_path):
    """Spark's round turned half-to-even: the round stage is the first divergence, a logic
    skew on the half-way rows; the stage after it only inherits; unbroken, all pass."""
    from palette.dsl import spark_backend

    model = Pipeline(stages=[DSLTransformer(lambdas={"r": 'round(nVal("x"))'}),
                             DSLTransformer(lambdas={"y": 'nFill(nVal("r"), 0) * 2'})]).fit(numbers)
    assert_parity(model, numbers)
    monkeypatch.setitem(spark_backend._CALL_RULES, "round",
                        lambda cp, node: F.bround(cp.compile(node.args[0]), 0) + F.lit(0.0))
    report = check_parity(model, numbers)
    assert not report.ok and report.rows == 9
    first = report.first_divergence
    assert (first.index, first.name, first.verdict) == (0, "DSLTransformer", "logic skew")
    r = report.column("r")
    assert r.mismatches == r.own == 4                              # 0.5, 2.5, -0.5, -2.5
    assert sorted((e.request["x"], e.spark, e.python) for e in r.examples) == [
        (-2.5, -2.0, -3.0), (-0.5, 0.0, -1.0), (0.5, 0.0, 1.0), (2.5, 2.0, 3.0)]
    assert {e.cause for e in r.examples} == {"logic"}
    y = report.stages[1]
    assert (y.verdict, y.own_rows, y.inherited_rows) == ("inherited", 0, 4)
    text = str(report)
    assert "first divergence: stage 0 DSLTransformer" in text and "logic skew in 4 rows" in text
    with pytest.raises(AssertionError, match="(?s)transform\\(\\) and the serving path differ.*stage 0"):
        assert_parity(model, numbers)
    report.write_html(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<svg" in page and "logic skew" in page and "<script" not in page
    report.write_json(tmp_path / "r.json")
    js = json.loads((tmp_path / "r.json").read_text())
    assert js["ok"] is False and js["first_divergence"]["stage"] == 0
    assert js["stages"][0]["columns"][0]["histogram"]["equal"] == 4
    monkeypatch.undo()
    assert check_parity(model, numbers).ok


def test_a_planted_runtime_bug_is_found_through_the_serving_process(numbers, tmp_path, monkeypatch):
    """The serving side's logistic regression ignores its threshold (planted in the
    scoring process only): the model stage is blamed, its inputs matched."""
    train = numbers.where("x is not null")
    model = Pipeline(stages=[VectorAssembler(inputCols=["x"], outputCol="f"),
                             LogisticRegression(featuresCol="f", labelCol="label", threshold=0.3)]).fit(train)
    assert_parity(model, train)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        from palette.transformers.runtime.scorers import linear_models as lm
        init = lm.LogisticRegressionScorer.__init__
        def planted(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.threshold, self.raw_threshold = 0.5, 0.0
        lm.LogisticRegressionScorer.__init__ = planted
    """))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    report = check_parity(model, train)
    first = report.first_divergence
    assert (first.index, first.name, first.verdict) == (1, "LogisticRegressionModel", "logic skew")
    assert report.stages[0].verdict == "pass"
    prediction = report.column("prediction")
    assert prediction.own > 0 and report.column("probability").mismatches == 0
    assert all(e.spark == 1.0 and e.python == 0.0 for e in prediction.examples)


@pytest.fixture
def small_store(spark_session, tmp_path):
    """A feature store with one group of 30 restaurants, materialized into SQLite, and a
    pipeline reading it."""
    store = FeatureStore(tmp_path / "store")
    store.register(Entity("restaurant", {"r_id": "str"}),
                   FeatureGroup("restaurant", "fg", {"prep": "num"}, max_age="7d"))
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    store.ingest(spark_session.createDataFrame(
        [(f"r{i}", float(i), now - timedelta(hours=1)) for i in range(30)], "r_id string, prep double, event_ts timestamp"),
        "restaurant:fg")
    url = f"sqlite:///{tmp_path}/online.db"
    store.materialize(online_store=url, spark=spark_session)
    requests = spark_session.createDataFrame([(f"r{i % 32}", float(i % 5)) for i in range(96)],
                                             "r_id string, size double")
    train = requests.withColumn("eta", F.col("size") * 2 + F.expr("cast(substr(r_id, 2) as double)"))
    model = Pipeline(stages=[
        PaletteTransformer({"prep": "@palette:restaurant:fg:prep:r_id"}, storeRoot=str(store.root)),
        DSLTransformer(lambdas={"prep_f": nFill(nVal("prep"), -1)}),
        VectorAssembler(inputCols=["prep_f", "size"], outputCol="features"),
        LinearRegression(labelCol="eta")]).fit(train)
    return store, url, model, requests, now


def test_a_stale_online_value_is_store_skew_not_a_model_bug(spark_session, small_store):
    store, url, model, requests, now = small_store
    assert_parity(model, requests, online_store=url)
    store.ingest(spark_session.createDataFrame([("r7", 70.0, now - timedelta(minutes=10))],
                                               "r_id string, prep double, event_ts timestamp"), "restaurant:fg")
    report = check_parity(model, requests, online_store=url)
    assert [(s.group, s.key, s.kind, s.online_values, s.offline_values) for s in report.store_skew] == [
        ("restaurant:fg", {"r_id": "r7"}, "stale", {"prep": 7.0}, {"prep": 70.0})]
    assert report.keys_checked == {"restaurant:fg": 32}           # r30, r31 unknown on both sides: no skew
    lookup = report.stages[0]
    assert (lookup.verdict, lookup.own_rows, lookup.store_rows) == ("store skew", 3, 3)
    assert [s.verdict for s in report.stages[1:]] == ["inherited"] * 3
    assert {e.cause for e in report.column("prep").examples} == {"store"}
    assert "restaurant:fg r_id='r7': stale" in str(report)
    store.materialize(online_store=url, spark=spark_session)
    assert_parity(model, requests, online_store=url)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_eta_pipeline_has_no_mismatch_on_10000_rows(spark_session, eta, online_urls, backend):
    rows = eta_example.requests(N_RESTAURANTS, 10_000, seed=11)
    df = spark_session.createDataFrame(rows, "order_id int, r_id string, order_size int")
    report = assert_parity(eta["models"]["palette_transformer"][0], df, online_store=online_urls[backend])
    assert report.rows == 10_000 and len(report.stages) == 6
    assert set(report.keys_checked) == {"restaurant:realtime_fg", "restaurant:location_fg", "restaurant:batch_fg",
                                        "region:service_fg"}
    assert report.column("prediction").compared > 9_000


def test_the_cli_is_a_ci_gate(spark_session, numbers, tmp_path, monkeypatch, capsys, caplog):
    from palette.dsl import spark_backend
    from palette.cli import main

    model = Pipeline(stages=[DSLTransformer(lambdas={"r": 'round(nVal("x"))'})]).fit(numbers)
    model.write().save(str(tmp_path / "m"))
    numbers.write.parquet(str(tmp_path / "data"))
    args = ["parity", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "data"),
            "--json", str(tmp_path / "p.json"), "--report", str(tmp_path / "p.html")]
    assert main(args) == 0
    assert "parity PASS" in capsys.readouterr().out
    assert json.loads((tmp_path / "p.json").read_text())["ok"] is True
    monkeypatch.setitem(spark_backend._CALL_RULES, "round",
                        lambda cp, node: F.bround(cp.compile(node.args[0]), 0) + F.lit(0.0))
    assert main(args + ["--sample", "9"]) == 1
    out = capsys.readouterr().out
    assert "parity FAIL" in out and "9 rows" in out
    assert main(["parity", "--model", str(tmp_path / "nope"), "--data", str(tmp_path / "data")]) == 1
    assert "not a saved model" in caplog.text


def test_bad_input_is_refused_clearly(spark_session, numbers, tmp_path):
    with pytest.raises(ParityError, match="not a saved model"):
        check_parity(str(tmp_path), numbers)
    with pytest.raises(ParityError, match="positive number of rows"):
        check_parity(DSLTransformer(lambdas={"r": 'nVal("x")'}), numbers, sample=0)
    with pytest.raises(ParityError, match="no rows"):
        check_parity(DSLTransformer(lambdas={"r": 'nVal("x")'}), numbers.where("false"))
    with pytest.raises(ParityError, match="serving side: .*'nope'"):
        check_parity(DSLTransformer(lambdas={"r": 'nVal("nope")'}), numbers)
