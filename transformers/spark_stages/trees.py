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

from ..batch import apply_each
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


class _Forest:
    """Every tree of an ensemble as flat arrays, walked with numpy for all trees (and,
    in a batch, all rows) at once. Nodes are renumbered so a node's right child follows
    its left child: one step is ``node = child[node] + (x[feature[node]] > threshold[node])``.
    A leaf is its own child with threshold +inf, so ``depth`` steps reach every leaf.
    Spark sends NaN right (``NaN <= t`` is false); here NaN is read as +inf, which goes
    right of every split and stays in a leaf. Continuous splits only."""

    def __init__(self, trees: list[_Tree]):
        feature, threshold, child, leaf = [], [], [], []
        roots, depth = [], 0
        for tree in trees:
            order = [(tree.root, 0)]
            base = len(feature)
            roots.append(base)
            i = 0
            while i < len(order):
                node_id, d = order[i]
                node = tree.nodes[node_id]
                depth = max(depth, d)
                if node.left == -1:
                    feature.append(0), threshold.append(math.inf), child.append(base + i)
                else:
                    feature.append(node.feature), threshold.append(node.threshold)
                    child.append(base + len(order))
                    order += [(node.left, d + 1), (node.right, d + 1)]
                leaf.append(node)
                i += 1
        self.feature = np.array(feature, dtype=np.intp)
        self.threshold = np.array(threshold, dtype=np.float64)
        self.child = np.array(child, dtype=np.intp)
        self.roots = np.array(roots, dtype=np.intp)
        self.depth = depth
        self.nodes = leaf                                   # _Node by flat index
        self.prediction = np.array([n.prediction for n in leaf])

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf index of each tree for one feature vector."""
        idx, child, feature, threshold = self.roots, self.child, self.feature, self.threshold
        x = np.fmin(x, np.inf)                              # NaN -> +inf
        for _ in range(self.depth):
            idx = child[idx] + (x[feature[idx]] > threshold[idx])
        return idx

    def leaves_batch(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf indices for a (rows, features) matrix."""
        idx = np.broadcast_to(self.roots, (X.shape[0], self.roots.size))
        rows = np.arange(X.shape[0])[:, None]
        X = np.fmin(X, np.inf)
        for _ in range(self.depth):
            idx = self.child[idx] + (X[rows, self.feature[idx]] > self.threshold[idx])
        return idx


def _sequential_sum(values: np.ndarray) -> np.ndarray:
    """Sums along the last axis left to right (as Scala's ``Array.sum``), not numpy's
    pairwise order, so the single-row and batch paths agree to the bit."""
    return np.cumsum(values, axis=-1)[..., -1] if values.shape[-1] else np.zeros(values.shape[:-1])


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
            self.weights = np.array([float(m["weights"]) for m in meta])
        else:
            self.trees, self.weights = [_Tree(rows)], np.ones(1)
        self.num_features = int(metadata.get("numFeatures", 0)) or None
        self.num_classes = int(metadata.get("numClasses", 0)) or None
        categorical = any(n.categories is not None for t in self.trees for n in t.nodes.values())
        self.forest = None if categorical else _Forest(self.trees)

    def features(self, row: dict) -> np.ndarray:
        col = self.param("featuresCol", "features")
        v = row[col]
        if v is None:
            raise ValueError(f"{self.uid}: the features column {col!r} is null")
        x = as_array(v, f"column {col!r}")
        if self.num_features is not None and x.size != self.num_features:
            raise ValueError(f"{self.uid}: features of size {x.size}, the model expects {self.num_features}")
        return x

    def leaf_nodes(self, x: np.ndarray) -> list[_Node]:
        if self.forest is None:
            return [t.leaf(x) for t in self.trees]
        nodes = self.forest.nodes
        return [nodes[i] for i in self.forest.leaves(x).tolist()]

    def leaf_predictions(self, x: np.ndarray) -> np.ndarray:
        if self.forest is None:
            return np.array([t.leaf(x).prediction for t in self.trees])
        return self.forest.prediction[self.forest.leaves(x)]

    def weighted_sum(self, x: np.ndarray) -> float:
        return float(_sequential_sum(self.leaf_predictions(x) * self.weights))

    def feature_matrix(self, batch) -> np.ndarray | None:
        """The batch's features as a matrix, when this model walks trees with numpy and
        every row holds a features vector of the right size (else None: row by row)."""
        if self.forest is None:
            return None
        X = batch.matrix(self.param("featuresCol", "features"))
        if X is None or (self.num_features is not None and X.shape[1] != self.num_features):
            return None
        return X

    def batch_predictions(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf predictions."""
        return self.forest.prediction[self.forest.leaves_batch(X)]


class _Classifier(_TreeModel):
    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        self.thresholds = metadata.get("paramMap", {}).get("thresholds")
        self.raw_col, self.prob_col, self.pred_col = output_cols(self)

    def raw(self, x) -> np.ndarray:
        raise NotImplementedError

    def raw_batch(self, X) -> np.ndarray:
        raise NotImplementedError

    def probability(self, raw):
        return normalize(raw)

    def probability_batch(self, raw: np.ndarray) -> np.ndarray | None:
        total = _sequential_sum(raw)
        if not (total > 0).all():
            return None                             # the row path raises Spark's error
        return raw / total[:, None]

    def outputs(self, raw, prob, pred) -> dict:
        out = {self.pred_col: pred}
        if self.raw_col:
            out[self.raw_col] = raw
        if self.prob_col:
            out[self.prob_col] = prob
        return out

    def score_row(self, row: dict) -> dict:
        raw = self.raw(self.features(row))
        prob = self.probability(raw.copy())
        pred = argmax(raw) if self.thresholds is None else thresholded(prob, self.thresholds)
        return self.outputs(raw, prob, pred)

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch)
        if X is None:
            return None
        raw = self.raw_batch(X)
        prob = self.probability_batch(raw)
        if prob is None:
            return None
        if self.thresholds is None:
            pred = np.argmax(raw, axis=1).astype(np.float64)
        else:
            pred = np.array([thresholded(p, self.thresholds) for p in prob])
        return self.outputs(raw, prob, pred)


@scorer("org.apache.spark.ml.classification.DecisionTreeClassificationModel")
class DecisionTreeClassifierScorer(_Classifier):
    supports = 'continuous and categorical splits; raw, probability, prediction; thresholds'
    limitations = 'leafCol not produced'

    ensemble = False

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        if self.forest is not None:
            self.stats = np.array([n.stats if n.left == -1 else [0.0] * len(n.stats) for n in self.forest.nodes],
                                  dtype=float)

    def raw(self, x):
        return np.array(self.leaf_nodes(x)[0].stats, dtype=float)

    def raw_batch(self, X):
        return self.stats[self.forest.leaves_batch(X)[:, 0]]


def _normalized_counts(node: _Node, num_classes: int) -> list[float]:
    """A leaf's class counts divided by their (left-to-right) total; zeros for total 0."""
    total = 0.0
    for c in node.stats:
        total += c
    return [c / total for c in node.stats] if total != 0 else [0.0] * num_classes


@scorer("org.apache.spark.ml.classification.RandomForestClassificationModel")
class RandomForestClassifierScorer(_Classifier):
    supports = 'normalized per-tree class counts, summed; probability; prediction; thresholds'
    limitations = 'leafCol not produced'

    def __init__(self, path, metadata):
        super().__init__(path, metadata)
        if self.forest is not None:
            self.votes = np.array([_normalized_counts(n, self.num_classes) if n.left == -1
                                   else [0.0] * self.num_classes for n in self.forest.nodes])

    def raw(self, x):
        if self.forest is None:
            return _sequential_sum(np.array([_normalized_counts(n, self.num_classes)
                                             for n in self.leaf_nodes(x)]).T)
        return _sequential_sum(self.votes[self.forest.leaves(x)].T)

    def raw_batch(self, X):
        return _sequential_sum(self.votes[self.forest.leaves_batch(X)].transpose(0, 2, 1))


def _log_loss_probability(margin):
    """``LogLoss.computeProbability``: p0 = 1 / (1 + exp(2m)), 0 where exp overflows."""
    e = 2.0 * margin
    return 1.0 / (1.0 + math.exp(e)) if e < 709.78 else 0.0


@scorer("org.apache.spark.ml.classification.GBTClassificationModel")
class GBTClassifierScorer(_Classifier):
    supports = 'margin = sum(weight * tree); rawPrediction [-m, m]; log-loss probability'
    limitations = 'leafCol not produced'

    def raw(self, x):
        m = self.weighted_sum(x)
        return np.array([-m, m])

    def raw_batch(self, X):
        m = _sequential_sum(self.batch_predictions(X) * self.weights)
        return np.stack([-m, m], axis=1)

    def probability(self, raw):
        p0 = _log_loss_probability(float(raw[1]))
        return np.array([p0, 1.0 - p0])

    def probability_batch(self, raw):
        p0 = apply_each(_log_loss_probability, raw[:, 1])
        return np.stack([p0, 1.0 - p0], axis=1)


class _Regressor(_TreeModel):
    def predict(self, x) -> float:
        raise NotImplementedError

    def predict_batch(self, X) -> np.ndarray:
        raise NotImplementedError

    def score_row(self, row: dict) -> dict:
        return {self.param("predictionCol", "prediction"): self.predict(self.features(row))}

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch)
        return None if X is None else {self.param("predictionCol", "prediction"): self.predict_batch(X)}


@scorer("org.apache.spark.ml.regression.DecisionTreeRegressionModel")
class DecisionTreeRegressorScorer(_Regressor):
    supports = 'leaf prediction'
    limitations = 'varianceCol and leafCol not produced'

    ensemble = False

    def predict(self, x):
        return self.leaf_nodes(x)[0].prediction

    def predict_batch(self, X):
        return self.batch_predictions(X)[:, 0]


@scorer("org.apache.spark.ml.regression.RandomForestRegressionModel")
class RandomForestRegressorScorer(_Regressor):
    supports = 'mean of tree predictions'
    limitations = 'leafCol not produced'

    def predict(self, x):
        return float(_sequential_sum(self.leaf_predictions(x))) / len(self.trees)

    def predict_batch(self, X):
        return _sequential_sum(self.batch_predictions(X)) / len(self.trees)


@scorer("org.apache.spark.ml.regression.GBTRegressionModel")
class GBTRegressorScorer(_Regressor):
    supports = 'sum(weight * tree)'
    limitations = 'leafCol not produced'

    def predict(self, x):
        return self.weighted_sum(x)

    def predict_batch(self, X):
        return _sequential_sum(self.batch_predictions(X) * self.weights)
