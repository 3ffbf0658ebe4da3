"""Decision trees, random forests and gradient-boosted trees (classification and regression).

Each tree is rebuilt from ``data/`` (one row per node; ensembles nest it in ``nodeData``
with a ``treeID``; weights in ``treesMetadata/``). A continuous split goes left iff
``feature <= threshold``; a categorical split goes left iff the feature value is one of
``leftCategories``.

* DecisionTreeClassifier: rawPrediction = the leaf's impurityStats (class weights),
  probability = raw / sum(raw), prediction = argmax(raw) (or by ``thresholds``).
* RandomForestClassifier: rawPrediction = sum over trees of the leaf's class counts
  each normalized by its total (trees with total 0 add nothing); probability normalized.
* GBTClassifier: margin ``m = sum(weight_i * tree_i)``, rawPrediction ``[-m, m]``,
  probability ``p0 = 1 / (1 + exp(2m))`` (log loss), ``p1 = 1 - p0``.
* Regressors: the leaf's prediction; RandomForest ``sum / numTrees``; GBT ``sum(weight_i * tree_i)``.
Spark sums the GBT margin with BLAS ``ddot``, so floats agree to ~1e-15 relative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..vectors import as_array
from ._base import SparkStageScorer, scorer
from ._classification import argmax, normalize, output_cols, thresholded


@dataclass
class _Node:
    prediction: float
    stats: list
    left: int
    right: int
    feature: int
    threshold: float | None
    categories: frozenset | None


class _Tree:
    def __init__(self, rows: list[dict]):
        self.nodes: dict[int, _Node] = {}
        for r in rows:
            split = r.get("split") or {}
            cats = split.get("leftCategoriesOrThreshold") or []
            continuous = split.get("numCategories", -1) == -1
            self.nodes[r["id"]] = _Node(
                prediction=float(r["prediction"]), stats=list(r["impurityStats"] or []),
                left=r["leftChild"], right=r["rightChild"], feature=split.get("featureIndex", -1),
                threshold=float(cats[0]) if continuous and cats else None,
                categories=None if continuous else frozenset(float(c) for c in cats))
        self.root = 0 if 0 in self.nodes else min(self.nodes)

    def leaf(self, x: np.ndarray) -> _Node:
        node = self.nodes[self.root]
        while node.left != -1:
            v = x[node.feature]
            go_left = (v <= node.threshold) if node.categories is None else (float(v) in node.categories)
            node = self.nodes[node.left if go_left else node.right]
        return node


class _TreeModel(SparkStageScorer):
    ensemble = True

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        rows = self.read_parquet()
        if self.ensemble:
            by_tree: dict[int, list] = {}
            for r in rows:
                by_tree.setdefault(r["treeID"], []).append(r["nodeData"])
            meta = sorted(self.read_parquet("treesMetadata"), key=lambda r: r["treeID"])
            self.trees = [_Tree(by_tree[m["treeID"]]) for m in meta]
            self.weights = [float(m["weights"]) for m in meta]
        else:
            self.trees, self.weights = [_Tree(rows)], [1.0]
        self.num_features = int(metadata.get("numFeatures", 0)) or None
        self.num_classes = int(metadata.get("numClasses", 0)) or None

    def features(self, row: dict) -> np.ndarray:
        col = self.param("featuresCol", "features")
        v = row[col]
        if v is None:
            raise ValueError(f"{self.uid}: the features column {col!r} is null")
        x = as_array(v, f"column {col!r}")
        if self.num_features is not None and x.size != self.num_features:
            raise ValueError(f"{self.uid}: features of size {x.size}, the model expects {self.num_features}")
        return x

    def weighted_sum(self, x: np.ndarray) -> float:
        s = 0.0
        for t, w in zip(self.trees, self.weights):
            s += t.leaf(x).prediction * w
        return s


class _Classifier(_TreeModel):
    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.thresholds = metadata.get("paramMap", {}).get("thresholds")
        self.raw_col, self.prob_col, self.pred_col = output_cols(self)

    def raw(self, x):
        raise NotImplementedError

    def probability(self, raw):
        return normalize(raw)

    def score_row(self, row: dict) -> dict:
        raw = self.raw(self.features(row))
        prob = self.probability(raw.copy())
        pred = argmax(raw) if self.thresholds is None else thresholded(prob, self.thresholds)
        out = {self.pred_col: pred}
        if self.raw_col:
            out[self.raw_col] = raw
        if self.prob_col:
            out[self.prob_col] = prob
        return out


@scorer("org.apache.spark.ml.classification.DecisionTreeClassificationModel")
class DecisionTreeClassifierScorer(_Classifier):
    supports = 'continuous and categorical splits; raw, probability, prediction; thresholds'
    limitations = 'leafCol not produced'

    ensemble = False

    def raw(self, x):
        return np.array(self.trees[0].leaf(x).stats, dtype=float)


@scorer("org.apache.spark.ml.classification.RandomForestClassificationModel")
class RandomForestClassifierScorer(_Classifier):
    supports = 'normalized per-tree class counts, summed; probability; prediction; thresholds'
    limitations = 'leafCol not produced'

    def raw(self, x):
        votes = [0.0] * self.num_classes
        for t in self.trees:
            counts = t.leaf(x).stats
            total = sum(counts)
            if total != 0:
                for i in range(self.num_classes):
                    votes[i] += counts[i] / total
        return np.array(votes)


@scorer("org.apache.spark.ml.classification.GBTClassificationModel")
class GBTClassifierScorer(_Classifier):
    supports = 'margin = sum(weight * tree); rawPrediction [-m, m]; log-loss probability'
    limitations = 'leafCol not produced'

    def raw(self, x):
        m = self.weighted_sum(x)
        return np.array([-m, m])

    def probability(self, raw):
        e = -2.0 * float(raw[0])                    # LogLoss.computeProbability(raw[0])
        p0 = 1.0 / (1.0 + math.exp(e)) if e < 709.78 else 0.0
        return np.array([p0, 1.0 - p0])


class _Regressor(_TreeModel):
    def predict(self, x) -> float:
        raise NotImplementedError

    def score_row(self, row: dict) -> dict:
        return {self.param("predictionCol", "prediction"): self.predict(self.features(row))}


@scorer("org.apache.spark.ml.regression.DecisionTreeRegressionModel")
class DecisionTreeRegressorScorer(_Regressor):
    supports = 'leaf prediction'
    limitations = 'varianceCol and leafCol not produced'

    ensemble = False

    def predict(self, x):
        return self.trees[0].leaf(x).prediction


@scorer("org.apache.spark.ml.regression.RandomForestRegressionModel")
class RandomForestRegressorScorer(_Regressor):
    supports = 'mean of tree predictions'
    limitations = 'leafCol not produced'

    def predict(self, x):
        s = 0.0
        for t in self.trees:
            s += t.leaf(x).prediction
        return s / len(self.trees)


@scorer("org.apache.spark.ml.regression.GBTRegressionModel")
class GBTRegressorScorer(_Regressor):
    supports = 'sum(weight * tree)'
    limitations = 'leafCol not produced'

    def predict(self, x):
        return self.weighted_sum(x)
