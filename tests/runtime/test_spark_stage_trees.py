"""Decision tree, random forest and GBT models (classification and regression) against Spark,
with continuous and categorical splits."""
import numpy as np
import pytest
from pyspark.ml.classification import (DecisionTreeClassifier, GBTClassifier,
                                       RandomForestClassifier)
from pyspark.ml.feature import VectorIndexer
from pyspark.ml.linalg import Vectors
from pyspark.ml.regression import DecisionTreeRegressor, GBTRegressor, RandomForestRegressor

from palette.transformers import load_scorer
from palette.transformers.runtime.scorers.trees import _CompleteTrees

from _stage_parity import check_both_fail, check_stage

CLASSIFIER_COLS = ["rawPrediction", "probability", "prediction"]


@pytest.fixture(scope="module")
def data(spark_session):
    """Feature 0 categorical (4 values, VectorIndexer metadata), 1 and 2 continuous."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(60):
        cat = float(rng.integers(0, 4))
        a, b = rng.normal(), rng.normal() * 100
        y = (2.0 if cat in (1.0, 3.0) else -1.0) + a + b / 100 + rng.normal() * 0.3
        rows.append((i, Vectors.dense([cat, a, b]), float(y), float(y > 0), float(min(2, max(0, int(y + 1))))))
    df = spark_session.createDataFrame(rows, ["rid", "raw", "y", "label", "label3"])
    indexer = VectorIndexer(inputCol="raw", outputCol="features", maxCategories=4).fit(df)
    return indexer.transform(df).cache()


@pytest.mark.parametrize("label", ["label", "label3"])
def test_decision_tree_classifier(data, tmp_path, label):
    model = DecisionTreeClassifier(labelCol=label, maxDepth=4, seed=1).fit(data)
    assert check_stage(model, data, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == 60


def test_decision_tree_classifier_thresholds(data, tmp_path):
    model = DecisionTreeClassifier(labelCol="label3", maxDepth=3, seed=1).fit(data)
    model.setThresholds([0.5, 0.3, 0.9])
    assert check_stage(model, data, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == 60


def test_decision_tree_regressor(data, tmp_path):
    model = DecisionTreeRegressor(labelCol="y", maxDepth=5, seed=1).fit(data)
    assert check_stage(model, data, ["prediction"], tmp_path, exact=("prediction",)) == 60


@pytest.mark.parametrize("label", ["label", "label3"])
def test_random_forest_classifier(data, tmp_path, label):
    model = RandomForestClassifier(labelCol=label, numTrees=5, maxDepth=3, seed=3).fit(data)
    assert check_stage(model, data, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == 60


def test_random_forest_regressor(data, tmp_path):
    model = RandomForestRegressor(labelCol="y", numTrees=5, maxDepth=3, seed=3).fit(data)
    assert check_stage(model, data, ["prediction"], tmp_path) == 60


def test_gbt_classifier(data, tmp_path):
    model = GBTClassifier(labelCol="label", maxIter=5, maxDepth=2, seed=5).fit(data)
    assert check_stage(model, data, CLASSIFIER_COLS, tmp_path, exact=("prediction",)) == 60


def test_gbt_regressor(data, tmp_path):
    model = GBTRegressor(labelCol="y", maxIter=5, maxDepth=2, seed=5).fit(data)
    assert check_stage(model, data, ["prediction"], tmp_path) == 60


@pytest.fixture(scope="module")
def continuous(spark_session):
    """Continuous features only (the numpy tree walk), and rows to score that hold NaN
    and infinities, which Spark sends right (NaN) or by comparison (±inf)."""
    rng = np.random.default_rng(11)
    train = []
    for i in range(200):
        x = rng.normal(size=4)
        y = x[0] * 2 - x[1] + np.sin(x[2]) + rng.normal() * 0.2
        train.append((i, Vectors.dense(x.tolist()), float(y), float(y > 0), float(min(2, max(0, int(y + 1))))))
    df = spark_session.createDataFrame(train, ["rid", "features", "y", "label", "label3"]).cache()
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308]
    score = [(1000 + i, Vectors.dense([specials[i % 6] if j == i % 4 else rng.normal() for j in range(4)]))
             for i in range(24)]
    score_df = spark_session.createDataFrame(score, ["rid", "features"])
    return df, score_df.unionByName(df.select("rid", "features"))


@pytest.mark.parametrize("make, cols", [
    (lambda: DecisionTreeClassifier(labelCol="label3", maxDepth=5, seed=1), CLASSIFIER_COLS),
    (lambda: RandomForestClassifier(labelCol="label3", numTrees=12, maxDepth=4, seed=2), CLASSIFIER_COLS),
    (lambda: GBTClassifier(labelCol="label", maxIter=15, maxDepth=4, seed=3), CLASSIFIER_COLS),
    (lambda: DecisionTreeRegressor(labelCol="y", maxDepth=6, seed=1), ["prediction"]),
    (lambda: RandomForestRegressor(labelCol="y", numTrees=12, maxDepth=4, seed=2), ["prediction"]),
    (lambda: GBTRegressor(labelCol="y", maxIter=15, maxDepth=4, seed=3), ["prediction"]),
], ids=["dt_cls", "rf_cls", "gbt_cls", "dt_reg", "rf_reg", "gbt_reg"])
def test_continuous_trees(continuous, tmp_path, make, cols):
    train, score = continuous
    model = make().fit(train)
    exact = ("prediction",) if cols == CLASSIFIER_COLS else ()    # a regressor's is a float sum
    assert check_stage(model, score, cols, tmp_path, exact=exact) == 224


@pytest.mark.parametrize("make", [
    lambda: DecisionTreeClassifier(labelCol="label3", maxDepth=4, seed=1, leafCol="leaf"),
    lambda: RandomForestClassifier(labelCol="label3", numTrees=4, maxDepth=3, seed=3, leafCol="leaf"),
    lambda: GBTClassifier(labelCol="label", maxIter=4, maxDepth=3, seed=5, leafCol="leaf"),
    lambda: DecisionTreeRegressor(labelCol="y", maxDepth=5, seed=1, leafCol="leaf", varianceCol="variance"),
    lambda: RandomForestRegressor(labelCol="y", numTrees=4, maxDepth=3, seed=3, leafCol="leaf"),
    lambda: GBTRegressor(labelCol="y", maxIter=4, maxDepth=3, seed=5, leafCol="leaf"),
], ids=["dt_cls", "rf_cls", "gbt_cls", "dt_reg", "rf_reg", "gbt_reg"])
def test_leaf_and_variance_columns(data, tmp_path, make):
    """leafCol (the leaf's pre-order index: a double for one tree, a vector for an
    ensemble) and varianceCol, with categorical and continuous splits."""
    model = make().fit(data)
    cols = ["leaf", "prediction"] + (["variance"] if model.hasParam("varianceCol") else [])
    assert check_stage(model, data, cols, tmp_path, exact=("leaf",)) == 60
    leaves = {tuple(np.atleast_1d(_plain_leaf(r["leaf"]))) for r in model.transform(data).collect()}
    assert len(leaves) > 2                   # several leaves reached, so the indices are really compared


def _plain_leaf(v):
    return v.toArray() if hasattr(v, "toArray") else v


@pytest.mark.parametrize("raw, prob", [("", "probability"), ("", ""), ("rawPrediction", "")])
@pytest.mark.parametrize("thresholds", [None, [0.3, 0.6, 0.2]])
@pytest.mark.parametrize("family", ["dt", "rf"])
def test_classifier_output_columns(data, tmp_path, raw, prob, thresholds, family):
    """Spark predicts from the raw prediction when its column is set, else from the
    probability, else with the model's own predict (a decision tree's leaf prediction,
    thresholds or not); an empty column is not written."""
    est = (DecisionTreeClassifier(labelCol="label3", maxDepth=4, seed=1) if family == "dt"
           else RandomForestClassifier(labelCol="label3", numTrees=4, maxDepth=3, seed=3))
    model = est.fit(data).setRawPredictionCol(raw).setProbabilityCol(prob)
    if thresholds:
        model.setThresholds(thresholds)
    cols = [c for c in (raw, prob, "prediction") if c]
    assert check_stage(model, data, cols, tmp_path, exact=("prediction",)) == 60
    got = load_scorer(str(tmp_path / "m")).scoreInstance(data.head().asDict())
    assert "" not in got and ("rawPrediction" in got) == bool(raw) and ("probability" in got) == bool(prob)


@pytest.mark.parametrize("raw, prob", [("", "probability"), ("", "")])
@pytest.mark.parametrize("thresholds", [None, [0.4, 0.6]])
def test_gbt_classifier_output_columns(continuous, tmp_path, raw, prob, thresholds):
    train, score = continuous
    model = GBTClassifier(labelCol="label", maxIter=5, maxDepth=3, seed=3).fit(train)
    model.setRawPredictionCol(raw).setProbabilityCol(prob)
    if thresholds:
        model.setThresholds(thresholds)
    cols = [c for c in (raw, prob, "prediction") if c]
    assert check_stage(model, score, cols, tmp_path, exact=("prediction",)) == 224


def test_regressor_without_prediction_column(data, tmp_path):
    model = DecisionTreeRegressor(labelCol="y", maxDepth=3, seed=1, varianceCol="variance").fit(data)
    model.setPredictionCol("")
    assert check_stage(model, data, ["variance"], tmp_path) == 60
    assert "" not in load_scorer(str(tmp_path / "m")).scoreInstance(data.head().asDict())


def test_null_features_fail_like_spark(spark_session, data, tmp_path):
    model = RandomForestRegressor(labelCol="y", numTrees=3, maxDepth=3, seed=3).fit(data)
    rows = [(i, Vectors.dense([1.0, 0.5, float(i)]) if i != 3 else None) for i in range(6)]
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import LongType, StructField, StructType
    df = spark_session.createDataFrame(rows, StructType([StructField("rid", LongType()),
                                                         StructField("features", VectorUDT())]))
    check_both_fail(model, df, tmp_path)


@pytest.mark.spark                                   # its fixture, by name, fits a model
@pytest.mark.parametrize("fixture", ["data", "continuous"])
def test_row_walks_and_batch_walk_reach_the_same_leaves(request, tmp_path, fixture):
    """A single row walks the trees level by level with 1-D indexing, or through the
    padded complete trees; a batch walks them with 2-D indexing: the same leaves for the
    same rows (categorical values seen and unseen, NaN, ±inf, fractions)."""
    got = request.getfixturevalue(fixture)
    train = got if fixture == "data" else got[0]
    model = RandomForestRegressor(labelCol="y", numTrees=8, maxDepth=5, seed=4).fit(train)
    model.write().save(str(tmp_path / "rf"))
    forest = load_scorer(str(tmp_path / "rf")).stages[0].forest
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, len(train.first()["features"]))) * 2
    X[:, 0] = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 1.5, -1.0, np.nan, np.inf, -np.inf], size=300)
    X[rng.random(X.shape) < 0.1] = np.nan
    batch = forest.leaves(X)
    forest.complete = None                              # the level walk, one row at a time
    rows = np.vstack([forest.leaves(X[i:i + 1]) for i in range(X.shape[0])])
    assert (rows == batch).all()
    forest.complete = _CompleteTrees(forest)            # the padded complete trees, built whatever their growth
    rows = np.vstack([forest.leaves(X[i:i + 1]) for i in range(X.shape[0])])
    assert (rows == batch).all()
    assert len(np.unique(batch)) > 20                 # many leaves reached, so the walks are really compared
