"""The DSL stages as PySpark ML stages: params, pipelines, tuning, persistence, parity."""
import math

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import LinearRegression
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit

from palette import (DSLEstimator, DSLModel, DSLTransformer, bucketize, impute, minMaxScale, nFill,
                     nVal, regionId, standardize)
from palette.dsl import DSLInputError, DSLSyntaxError, DSLTypeError, DSLUnsupportedError
from palette.errors import NotConfigured
from palette.parity import check_parity
from palette.transformers import load_scorer
import spark_env

ROWS = [(1.0, 57.64911, 10.40744, 3, 10.0), (None, 37.7749, -122.4194, 5, 14.0), (4.0, 0.0, 0.0, None, 9.0),
        (7.0, None, 1.0, 2, 20.0), (2.0, -33.86, 151.21, 4, 12.0), (4.0, 51.5, -0.12, 1, 8.0)]
SCHEMA = "prep double, lat double, lng double, size int, label double"


@pytest.fixture(scope="module")
def df(spark_session):
    return spark_session.createDataFrame(ROWS * 5, SCHEMA)


def _rows(df):
    return [r.asDict() for r in df.collect()]


def assert_parity(model, df, scorer=None):
    """transform() and scoreInstance() agree on every cell; with ``scorer``, a loaded artifact too."""
    report = check_parity(model, df)
    assert report.ok and report.rows == df.count(), str(report)
    if scorer is not None:
        expected = {tuple(sorted(r.items())) for r in _rows(model.transform(df))}
        got = {tuple(sorted(scorer.scoreInstance(r).items())) for r in _rows(df)}
        assert got == expected


def test_transformer_params_and_parity(df):
    t = DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("lng")),
                                "prep2": 'nFill(nVal("basis:prep"), -1) * 2'})
    assert t.getLambdas()["prep2"] == 'nFill(nVal("basis:prep"), -1) * 2'
    assert "lambdas" in t.explainParams()
    assert t.setLambdas({"a": "1 + 1"}) is t and t.getLambdas() == {"a": "1 + 1"}
    t.setParams(lambdas={"region_id": regionId(nVal("lat"), nVal("lng"))})
    copy = t.copy()
    assert copy.uid == t.uid and copy.getLambdas() == t.getLambdas()
    assert_parity(t, df)
    out = t.transform(df).where("lat = 57.64911").first()
    assert out["region_id"] == "u4pruy"


def test_estimator_learns_numbers_from_training_data(df):
    est = DSLEstimator(lambdas={"prep": impute(nVal("prep")), "prep_median": impute(nVal("prep"), "median"),
                                "prep_mode": impute(nVal("prep"), "mode"), "z": standardize(nVal("label")),
                                "mm": minMaxScale(nVal("size")), "b": bucketize(nVal("label"), 3)})
    model = est.fit(df)
    assert isinstance(model, DSLModel)
    values = [r[0] for r in ROWS if r[0] is not None]
    labels = [r[4] for r in ROWS]
    mean = sum(values) / len(values)
    assert model.getLambdas()["prep"] == f'nFill(nVal("prep"), {mean!r})'
    assert model.getLambdas()["prep_mode"] == 'nFill(nVal("prep"), 4)'
    assert model.getLambdas()["prep_median"] == 'nFill(nVal("prep"), 4)'
    lmean = sum(labels) / len(labels)
    lstd = math.sqrt(sum((x - lmean) ** 2 for x in labels) / len(labels))
    z = {r["label"]: r["z"] for r in _rows(model.transform(df))}
    for x, got in z.items():
        assert got == pytest.approx((x - lmean) / lstd, rel=1e-12)
    assert model.getLambdas()["mm"] == '(nVal("size") - 1) / 4'
    assert model.getLambdas()["b"].startswith('bucket(nVal("label"), ')
    assert_parity(model, df)


def test_standardize_of_a_constant_is_zero(spark_session):
    df = spark_session.createDataFrame([(2.0,), (2.0,), (None,)], "x double")
    model = DSLEstimator(lambdas={"z": standardize(nVal("x")), "m": minMaxScale(nVal("x"))}).fit(df)
    assert [(r["z"], r["m"]) for r in model.transform(df).collect()] == [(0.0, 0.0), (0.0, 0.0), (None, None)]
    assert_parity(model, df)


def test_nested_learned_functions_fit_inside_out(spark_session):
    df = spark_session.createDataFrame([(1.0,), (None,), (3.0,)], "x double")
    model = DSLEstimator(lambdas={"z": standardize(impute(nVal("x")))}).fit(df)
    # impute -> 2.0, so the column is 1, 2, 3: mean 2, population std sqrt(2/3)
    assert model.getLambdas()["z"] == f'(nFill(nVal("x"), 2) - 2) / {math.sqrt(2 / 3)!r}'


def test_learning_from_all_null_column_is_a_clear_error(spark_session):
    df = spark_session.createDataFrame([(None,), (None,)], "x double")
    with pytest.raises(DSLInputError, match="every value of .* is null"):
        DSLEstimator(lambdas={"x": impute(nVal("x"))}).fit(df)


def test_transformer_rejects_learned_functions():
    with pytest.raises(DSLUnsupportedError, match="DSLEstimator"):
        DSLTransformer(lambdas={"x": impute(nVal("x"))})


def test_bad_lambdas_fail_when_the_stage_is_built():
    with pytest.raises(DSLSyntaxError):
        DSLTransformer(lambdas={"x": "nVal(\"x\") +"})
    with pytest.raises(DSLTypeError, match="lgo"):
        DSLEstimator(lambdas={"x": "lgo(1)"})
    with pytest.raises(TypeError, match="non-empty dict"):
        DSLTransformer(lambdas={})


def test_unknown_column_lists_available_columns(df):
    t = DSLTransformer(lambdas={"y": 'nVal("nope") + 1'})
    with pytest.raises(DSLInputError, match="'nope'.*columns: prep, lat, lng, size, label"):
        t.transform(df)


def test_fit_checks_every_read_against_the_schema(df):
    with pytest.raises(DSLInputError, match="'lat' read by sVal"):
        DSLEstimator(lambdas={"a": impute(nVal("prep")), "b": 'sVal("lat")'}).fit(df)


def test_palette_references_need_a_feature_store(df, monkeypatch):
    import palette.config
    monkeypatch.delenv("PALETTE_STORE_ROOT", raising=False)
    monkeypatch.setattr(palette.config, "_CONFIGURED", {})
    t = DSLTransformer(lambdas={"p": nFill(nVal("@palette:restaurant:batch_fg:prep_time:r_id"), -1)})
    with pytest.raises(NotConfigured, match="no feature store is configured.*PALETTE_STORE_ROOT"):
        t.transform(df)
    with pytest.raises(NotConfigured, match="restaurant:batch_fg:prep_time:r_id.*definitions from the feature "
                                            "store.*PALETTE_STORE_ROOT"):
        t.scoreInstance({"r_id": "r1"})


def test_score_instance_errors_name_the_field():
    t = DSLTransformer(lambdas={"y": 'nVal("basis:order_size") * 2'})
    with pytest.raises(DSLInputError, match="no field 'order_size'.*fields present: r_id"):
        t.scoreInstance({"r_id": "r1"})
    with pytest.raises(DSLInputError, match="'order_size'.*must be a number"):
        t.scoreInstance({"order_size": "three"})


def test_pipeline_save_load_and_jvm_free_scorer(df, tmp_path):
    pipeline = Pipeline(stages=[
        DSLTransformer(lambdas={"region_id": regionId(nVal("lat"), nVal("lng"), 7)}),
        DSLEstimator(lambdas={"prep": impute(nVal("prep")), "size_f": nFill(nVal("size"), 0),
                              "z": standardize(nVal("label"))}),
    ])
    model = pipeline.fit(df)
    path = str(tmp_path / "model")
    model.write().overwrite().save(path)
    loaded = PipelineModel.load(path)
    assert [type(s).__name__ for s in loaded.stages] == ["DSLTransformer", "DSLModel"]
    assert loaded.stages[1].getLambdas() == model.stages[1].getLambdas()
    assert _rows(loaded.transform(df)) == _rows(model.transform(df))
    scorer = load_scorer(path)
    assert_parity(model, df, scorer=scorer)
    assert scorer.scoreBatch(_rows(df)[:2]) == [scorer.scoreInstance(r) for r in _rows(df)[:2]]


def test_single_stage_save_load(df, tmp_path):
    t = DSLTransformer(lambdas={"r": regionId(nVal("lat"), nVal("lng"))})
    t.save(str(tmp_path / "t"))
    assert DSLTransformer.load(str(tmp_path / "t")).getLambdas() == t.getLambdas()
    est = DSLEstimator(lambdas={"p": impute(nVal("prep"))})
    est.save(str(tmp_path / "e"))
    assert DSLEstimator.load(str(tmp_path / "e")).getLambdas() == est.getLambdas()
    assert_parity(t, df, scorer=load_scorer(str(tmp_path / "t")))


def test_newer_format_version_is_refused(df, tmp_path):
    import json
    t = DSLTransformer(lambdas={"r": "1 + 1"})
    path = tmp_path / "t"
    t.save(str(path))
    part = next((path / "metadata").glob("part-*"))
    meta = json.loads(part.read_text())
    meta["paletteFormatVersion"] = 99
    part.write_text(json.dumps(meta))
    for crc in (path / "metadata").glob(".*.crc"):
        crc.unlink()
    with pytest.raises(ValueError, match="format version 99.*upgrade palette"):
        DSLTransformer.load(str(path))


def test_cross_validator_and_train_validation_split(df):
    features = DSLEstimator(lambdas={"prep_f": impute(nVal("prep")), "size_f": nFill(nVal("size"), 0)})
    assembler = VectorAssembler(inputCols=["prep_f", "size_f"], outputCol="features")
    lr = LinearRegression(labelCol="label", maxIter=5)
    pipeline = Pipeline(stages=[features, assembler, lr])
    grid = ParamGridBuilder().addGrid(lr.regParam, [0.0, 0.5]).build()
    evaluator = RegressionEvaluator(labelCol="label")
    cv = CrossValidator(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=1)
    cv_model = cv.fit(df)
    assert len(cv_model.avgMetrics) == 2
    assert "prediction" in cv_model.transform(df).columns
    tvs = TrainValidationSplit(estimator=pipeline, estimatorParamMaps=grid, evaluator=evaluator, seed=1)
    assert "prediction" in tvs.fit(df).transform(df).columns


def test_grid_search_over_lambdas(df):
    est = DSLEstimator(lambdas={"f": nFill(nVal("prep"), 0)})
    grid = ParamGridBuilder().addGrid(est.lambdas, [{"f": nFill(nVal("prep"), 0)},
                                                   {"f": impute(nVal("prep"))}]).build()
    models = dict(est.fitMultiple(df, grid))
    assert models[0].getLambdas() == {"f": 'nFill(nVal("prep"), 0)'}
    assert models[1].getLambdas()["f"].startswith('nFill(nVal("prep"), 3.6')


@pytest.fixture
def whole_stage_codegen(spark_session):
    """Spark's defaults, which tests/spark_conf turns off for the suite's tiny data."""
    old = {k: spark_session.conf.get(k) for k in spark_env.CODEGEN}
    for k, v in spark_env.CODEGEN.items():
        spark_session.conf.set(k, v)
    yield
    for k, v in old.items():
        spark_session.conf.set(k, v)


def test_plan_has_no_python_udf(df, whole_stage_codegen):
    t = DSLTransformer(lambdas={"r": regionId(nVal("lat") + 1, nVal("lng")), "c": 'clip(nVal("prep") * 2, 0, 5)',
                                "f": 'floor(nVal("prep") / 3)', "b": 'bucket(nVal("prep") + 1, 1, 2, 3)'})
    plan = t.transform(df)._jdf.queryExecution().executedPlan().toString()
    for marker in ("BatchEvalPython", "ArrowEvalPython", "PythonUDF"):
        assert marker not in plan
    assert "*(" in plan   # whole-stage code generation, no interpreted fallback stage
