"""The parity harness finds real differences, and passes a PipelineModel through load_scorer."""
from datetime import datetime, timezone

from pyspark.ml import Pipeline

from palette import DSLEstimator, DSLTransformer, hourOfDay, impute, nVal, tVal
from palette.parity import check_parity, same_value


class _Skewed(DSLTransformer):
    """A stage whose single-row path is wrong on purpose."""

    def scoreInstance(self, row):
        out = super().scoreInstance(row)
        if out["y"] is not None and out["y"] > 2:
            out["y"] += 1e-9
        return out


def test_harness_reports_a_difference(spark_session):
    df = spark_session.createDataFrame([(1.0,), (2.0,), (3.0,), (None,)], "x double")
    report = check_parity(_Skewed(lambdas={"y": 'nVal("x") * 1'}), df)
    assert not report.ok
    assert [(m.column, m.spark) for m in report.mismatches] == [("y", 3.0)]
    assert "1 mismatches" in str(report)


def test_harness_scores_pipeline_models_through_the_saved_artifact(spark_session):
    t0 = datetime(2024, 1, 1, 23, 30, tzinfo=timezone.utc)
    df = spark_session.createDataFrame([(1.0, t0), (None, t0), (5.0, None)], "x double, t timestamp")
    model = Pipeline(stages=[DSLTransformer(lambdas={"h": hourOfDay(tVal("t"))}),
                             DSLEstimator(lambdas={"x": impute(nVal("x"))})]).fit(df)
    report = check_parity(model, df)
    assert report.ok, str(report)
    assert report.rows == 3 and report.columns == ["x", "t", "h"]


def test_same_value_rules():
    assert same_value(None, None) and not same_value(None, 0.0)
    assert same_value(1.0, 1.0) and not same_value(1.0, 1.0 + 2e-16)
    assert same_value(1.0, 1.0 + 2.2e-16, ulps=1)
    assert same_value(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc))
