"""A saved VectorAssembler + StandardScaler + model pipeline scores in a process that cannot
import pyspark (and has no java), with Spark's predictions."""
import json

import numpy as np
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StandardScaler, VectorAssembler

from test_runtime_jvm_free import run_without_spark


def test_assembler_scaler_logistic_regression_without_jvm(spark_session, tmp_path):
    rng = np.random.default_rng(11)
    # noisy labels and a little regularization: a separable fit has huge coefficients, whose
    # cancelling products make the margin depend on BLAS summation order beyond 1e-9
    rows = [(i, float(a), float(b), float(a + b + rng.normal() > 0)) for i, (a, b) in enumerate(rng.normal(size=(30, 2)))]
    df = spark_session.createDataFrame(rows, "rid long, a double, b double, label double")
    model = Pipeline(stages=[
        VectorAssembler(inputCols=["a", "b"], outputCol="raw"),
        StandardScaler(inputCol="raw", outputCol="features", withMean=True),
        LogisticRegression(maxIter=10, regParam=0.01),
    ]).fit(df)
    path = str(tmp_path / "pipeline")
    model.write().save(path)
    expected = [(r["prediction"], r["probability"].toArray().tolist()) for r in model.transform(df).orderBy("rid").collect()]
    inputs = [{"a": a, "b": b} for _, a, b, _ in rows]
    out = run_without_spark(f"""
        import json, sys
        from palette.transformers import load_scorer
        scorer = load_scorer({path!r})
        rows = json.loads({json.dumps(json.dumps(inputs))})
        scored = scorer.scoreBatch(rows)
        print(json.dumps([(r["prediction"], r["probability"].tolist()) for r in scored]))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j")))
    """)
    got, modules = out.strip().split("\n")
    got = json.loads(got)
    assert modules == "[]"
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (_, gp), (_, ep) in zip(got, expected):
        assert np.allclose(gp, ep, rtol=1e-9, atol=0)
