"""Decision trees, random forests and gradient-boosted trees (classification and regression).

Each tree is rebuilt from ``data/`` (one row per node; ensembles nest it in ``nodeData``
with a ``treeID``; weights in ``treesMetadata/``). A continuous split goes left iff
``feature <= threshold``; a categorical split goes left iff the feature value is one of
``leftCategories``.

* DecisionTreeClassifier: rawPrediction = the leaf's impurityStats (class weights),
  probability = raw / sum(raw), prediction = argmax(raw) (or by ``thresholds``; with
  neither raw nor probability column, the leaf's own prediction, as Spark's ``predict``).
* RandomForestClassifier: rawPrediction = sum over trees of the leaf's class counts
  each normalized by its total (trees with total 0 add nothing); probability normalized.
* GBTClassifier: margin ``m = sum(weight_i * tree_i)``, rawPrediction ``[-m, m]``,
  probability ``p0 = 1 / (1 + exp(2m))`` (log loss), ``p1 = 1 - p0``.
* Regressors: the leaf's prediction; RandomForest ``sum / numTrees``; GBT ``sum(weight_i * tree_i)``;
  DecisionTreeRegressor's ``varianceCol``: the leaf's ``(sumSq - sum * sum / count) / count``
  (0 for count 0), Spark's ``Variance.calculate``.
* ``leafCol``: the leaf's index among its tree's leaves in pre-order (left subtree
  first), Spark's ``predictLeaf``: a double for one tree, a vector (one per tree) for
  an ensemble.
Spark sums the GBT margin with BLAS ``ddot``, so floats agree to ~1e-15 relative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..batch import apply_each
from ..stage import StageScorer, scorer
from ._classification import ProbabilisticOutputs, first_row, normalize, sequential_sum
from ._util import java_exp
from palette.errors import ArtifactError


@dataclass
class _Node:
    prediction: float
    stats: list
    left: int
    right: int
    feature: int
    threshold: float | None
    categories: frozenset | None
    num_categories: int


def _nodes(rows: list[dict]) -> tuple[dict[int, _Node], int]:
    """One tree's nodes by id, and its root's id."""
    nodes = {}
    for r in rows:
        split = r.get("split") or {}
        cats = split.get("leftCategoriesOrThreshold") or []
        num_cats = split.get("numCategories", -1)
        continuous = num_cats == -1
        nodes[r["id"]] = _Node(
            prediction=float(r["prediction"]), stats=list(r["impurityStats"] or []),
            left=r["leftChild"], right=r["rightChild"], feature=split.get("featureIndex", -1),
            threshold=float(cats[0]) if continuous and cats else None,
            categories=None if continuous else frozenset(float(c) for c in cats), num_categories=num_cats)
    return nodes, (0 if 0 in nodes else min(nodes))


def _leaf_order(nodes: dict[int, _Node], root: int) -> dict[int, int]:
    """Leaf id -> its index among the leaves in pre-order, left subtree first."""
    order, stack, visits = {}, [root], 0
    while stack:
        visits += 1
        if visits > len(nodes):
            raise ArtifactError("a tree's nodes do not form a tree (a node is reached twice): the data is damaged")
        node_id = stack.pop()
        node = nodes[node_id]
        if node.left == -1:
            order[node_id] = len(order)
        else:
            stack += [node.right, node.left]
    return order


class _Forest:
    """Every tree of an ensemble as flat arrays, walked with numpy for all trees and all
    rows at once (a single row walks the same arrays with 1-D indexing). Nodes are renumbered so a node's
    right child follows its left child: one step is ``node = child[node] + goes_right``.
    A leaf is its own child with threshold +inf, so ``depth`` steps reach every leaf.
    Spark sends NaN right (``NaN <= t`` is false, and NaN is no category); here NaN is
    read as +inf, which goes right of every split and stays in a leaf. A categorical
    split looks the value up in a (nodes, categories) table of left categories; a value
    that is not a whole number in ``[0, numCategories)`` is no category and goes right."""

    def __init__(self, trees: list[tuple[dict[int, _Node], int]]):
        feature, threshold, child, flat, leaf_index, tree = [], [], [], [], [], []
        roots, depth = [], 0
        for tree_number, (nodes, root) in enumerate(trees):
            leaf_order = _leaf_order(nodes, root)
            order = [(root, 0)]
            base = len(feature)
            roots.append(base)
            i = 0
            while i < len(order):
                node_id, d = order[i]
                node = nodes[node_id]
                depth = max(depth, d)
                if node.left == -1:
                    feature.append(0), threshold.append(math.inf), child.append(base + i)
                else:
                    feature.append(node.feature)
                    threshold.append(node.threshold if node.categories is None else math.nan)
                    child.append(base + len(order))
                    order += [(node.left, d + 1), (node.right, d + 1)]
                flat.append(node)
                tree.append(tree_number)
                leaf_index.append(leaf_order.get(node_id, -1))
                i += 1
        self.feature = np.array(feature, dtype=np.intp)
        self.threshold = np.array(threshold, dtype=np.float64)
        self.child = np.array(child, dtype=np.intp)
        self.roots = np.array(roots, dtype=np.intp)
        self.depth = depth
        self.nodes = flat                                   # _Node by flat index
        self.prediction = np.array([n.prediction for n in flat])
        self.leaf_index = np.array(leaf_index, dtype=np.float64)
        self.tree = np.array(tree, dtype=np.intp)           # the tree of each node
        categorical = [n.categories is not None and n.left != -1 for n in flat]
        self.categorical = np.array(categorical) if any(categorical) else None
        if self.categorical is not None:
            self.num_categories = max(n.num_categories for n, c in zip(flat, categorical) if c)
            if self.num_categories > 1 << 20:                  # Spark's maxBins bounds it far below
                raise ArtifactError(f"a categorical split of {self.num_categories:,} categories: the saved trees "
                                    "are damaged")
            self.left_table = np.zeros((len(flat), self.num_categories), dtype=bool)
            for k, (n, c) in enumerate(zip(flat, categorical)):
                if c:
                    cats = [int(v) for v in n.categories if 0 <= v < self.num_categories]
                    self.left_table[k, cats] = True
        self.complete = _CompleteTrees.of(self)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) flat leaf indices for a (rows, features) matrix."""
        X = np.fmin(X, np.inf)                              # NaN -> +inf
        if X.shape[0] == 1:
            return self._row_leaves(X[0])[None, :]
        idx = np.broadcast_to(self.roots, (X.shape[0], self.roots.size))
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(self.depth):
            v = X[rows, self.feature[idx]]
            right = v > self.threshold[idx]
            if self.categorical is not None:
                cat = self.categorical[idx]
                if cat.any():
                    right = np.where(cat, ~self.goes_left(v, idx), right)
            idx = self.child[idx] + right
        return idx

    def _row_leaves(self, x: np.ndarray) -> np.ndarray:
        """The same walk for one row, with 1-D ``take`` (a fraction of the cost of 2-D
        fancy indexing on arrays this small)."""
        if self.complete is not None:
            return self.complete.leaves(x)
        feature, threshold, child, categorical = self.feature, self.threshold, self.child, self.categorical
        idx = self.roots
        for _ in range(self.depth):
            v = x.take(feature.take(idx))
            right = v > threshold.take(idx)
            if categorical is not None:
                cat = categorical.take(idx)
                if cat.any():
                    right = np.where(cat, ~self.goes_left(v, idx), right)
            idx = child.take(idx) + right
        return idx

    def goes_left(self, v: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Whether value ``v`` goes left at categorical node ``nodes`` (same shapes)."""
        known = (v >= 0) & (v < self.num_categories) & (v == np.floor(v))
        return known & self.left_table[nodes, np.where(known, v, 0).astype(np.intp)]


class _CompleteTrees:
    """The forest's splits padded to complete trees of its depth ``D``, for one row: all
    splits are compared at once, then ``D`` pointer steps reach the leaves (a handful of
    numpy calls in all, where the level walk makes six per level). Tree ``t``'s inner
    nodes are heap slots ``t * (2**D - 1) + h`` (children ``2h + 1``, ``2h + 2``), its
    leaf slots follow all inner slots; a leaf above depth ``D`` becomes inner slots that
    always go left (threshold +inf) down to a leaf slot naming it. Built only where the
    padding at most doubles the nodes (shallow, bushy trees: a GBT's); otherwise the
    level walk serves single rows too."""

    MAX_GROWTH = 2

    @classmethod
    def of(cls, forest: "_Forest") -> "_CompleteTrees | None":
        d, trees = forest.depth, forest.roots.size
        if d == 0 or d > 16 or trees * (2 ** (d + 1) - 1) > cls.MAX_GROWTH * forest.feature.size:
            return None
        return cls(forest)

    def __init__(self, forest: "_Forest"):
        d = self.depth = forest.depth
        inner, width = 2 ** d - 1, 2 ** d
        n_inner = forest.roots.size * inner
        self.feature = np.zeros(n_inner, dtype=np.intp)
        self.threshold = np.full(n_inner, np.inf)
        self.node = np.full(n_inner, -1, dtype=np.intp)            # the forest's node at each inner slot
        self.leaf = np.zeros(forest.roots.size * width, dtype=np.intp)
        h = np.arange(inner)
        left = 2 * h + 1
        self.child = np.concatenate([np.where(left < inner, t * inner + left, n_inner + t * width + left - inner)
                                     for t in range(forest.roots.size)]).astype(np.intp)
        for t, root in enumerate(forest.roots):
            stack = [(0, int(root))]
            while stack:
                slot, node = stack.pop()
                if slot >= inner:
                    self.leaf[t * width + slot - inner] = node
                    continue
                if forest.child[node] != node:                     # a split
                    self.feature[t * inner + slot] = forest.feature[node]
                    self.threshold[t * inner + slot] = forest.threshold[node]
                    self.node[t * inner + slot] = node
                    stack += [(2 * slot + 1, int(forest.child[node])), (2 * slot + 2, int(forest.child[node]) + 1)]
                else:                                              # a leaf above depth D: go left
                    stack += [(2 * slot + 1, node), (2 * slot + 2, node)]
        self.roots = np.arange(forest.roots.size, dtype=np.intp) * inner
        self.n_inner = n_inner
        self.forest = forest
        if forest.categorical is not None:
            slots = np.flatnonzero(self.node >= 0)
            slots = slots[forest.categorical[self.node[slots]]]
            self.categorical_slots, self.categorical_nodes = slots, self.node[slots]
        else:
            self.categorical_slots = None

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The forest's flat leaf index of each tree for one row ``x`` (NaN read as +inf)."""
        v = x.take(self.feature)
        right = v > self.threshold
        if self.categorical_slots is not None:
            slots = self.categorical_slots
            right[slots] = ~self.forest.goes_left(v[slots], self.categorical_nodes)
        step = self.child + right
        idx = self.roots
        for _ in range(self.depth):
            idx = step.take(idx)
        return self.leaf.take(idx - self.n_inner)


class _TreeModel(StageScorer):
    """A tree or an ensemble; ``columns(X)`` computes every output column for a feature
    matrix, and ``score_row`` is ``columns`` of a batch of one."""
    ensemble = True

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        rows = self.read_parquet()
        if self.ensemble:
            by_tree: dict[int, list] = {}
            for r in rows:
                by_tree.setdefault(r["treeID"], []).append(r["nodeData"])
            meta = self.trees_metadata()
            trees = [_nodes(by_tree[tree_id]) for tree_id, _ in meta]
            self.weights = np.array([weight for _, weight in meta])
        else:
            trees, self.weights = [_nodes(rows)], np.ones(1)
        self.num_trees = len(trees)
        self.forest = _Forest(trees)
        self.num_features = int(metadata.get("numFeatures", 0)) or None
        splits = self.forest.feature[self.forest.child != np.arange(self.forest.child.size)]
        if splits.size and (splits.min() < 0 or (self.num_features and splits.max() >= self.num_features)):
            raise ArtifactError(f"{self.uid} ({self.path}): a split reads feature {int(splits.min())}..."
                                f"{int(splits.max())} of {self.num_features or '?'}: the saved trees are damaged")
        self.weighted = self.forest.prediction * self.weights.take(self.forest.tree)
        self.num_classes = int(metadata.get("numClasses", 0)) or None
        self.features_col = self.param("featuresCol", "features")
        self.leaf_col = self.param("leafCol", "")

    def trees_metadata(self) -> list[tuple[int, float]]:
        """(treeID, weight) of each tree, in treeID order. Spark 4.0 names the columns of
        ``treesMetadata/`` treeID, metadata, weights; 4.1 and later write the same tuple
        as _1, _2, _3."""
        rows = self.read_parquet("treesMetadata")
        names = list(rows[0]) if rows else []
        for id_col, weight_col in (("treeID", "weights"), ("_1", "_3")):
            if id_col in names and weight_col in names:
                return sorted((int(r[id_col]), float(r[weight_col])) for r in rows)
        raise ArtifactError(f"{self.uid} ({self.path}): treesMetadata has columns {names}; the runtime reads "
                         "treeID/weights (Spark 4.0) or _1/_3 (Spark 4.1 and later)")

    def node_values(self, fn) -> np.ndarray:
        """``fn(node)`` at every leaf of the flat forest (zeros at inner nodes)."""
        leaves = [fn(n) if n.left == -1 else None for n in self.forest.nodes]
        width = len(next(v for v in leaves if v is not None))
        return np.array([v if v is not None else [0.0] * width for v in leaves], dtype=np.float64)

    def tree_predictions(self, idx: np.ndarray) -> np.ndarray:
        return self.forest.prediction.take(idx)

    def weighted_sum(self, idx: np.ndarray) -> np.ndarray:
        """``sum(weight_i * tree_i)`` left to right (GBT), each leaf's prediction times its
        tree's weight (``weighted``, computed at load)."""
        return sequential_sum(self.weighted.take(idx))

    def leaf_outputs(self, idx: np.ndarray) -> dict:
        """The columns read off the leaves themselves (leafCol; a regression tree's varianceCol)."""
        if not self.leaf_col:
            return {}
        leaves = self.forest.leaf_index[idx]
        return {self.leaf_col: leaves if self.ensemble else leaves[:, 0]}

    def columns(self, X: np.ndarray) -> dict:
        raise NotImplementedError

    def score_row(self, row: dict) -> dict:
        return first_row(self.columns(self.features_of(row, self.features_col, self.num_features)[None, :]))

    def score_columns(self, batch) -> dict | None:
        X = self.feature_matrix(batch, self.features_col, self.num_features)
        return None if X is None else self.columns(X)


class _Classifier(ProbabilisticOutputs, _TreeModel):
    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.init_outputs(self.num_classes or 2)

    def raw(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw2probability(self, raw):
        return normalize(raw)

    def columns(self, X):
        idx = self.forest.leaves(X)
        return {**self.outputs(self.raw(idx), idx), **self.leaf_outputs(idx)}


@scorer("org.apache.spark.ml.classification.DecisionTreeClassificationModel")
class DecisionTreeClassifierScorer(_Classifier):
    supports = 'continuous and categorical splits; raw, probability, prediction; thresholds; leafCol'
    limitations = '—'

    ensemble = False

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.stats = self.node_values(lambda n: n.stats)

    def raw(self, idx):
        return self.stats[idx[:, 0]]

    def predict(self, raw, idx):
        """Spark's ``DecisionTreeClassificationModel.predict``: the leaf's prediction
        (thresholds are not consulted)."""
        return self.forest.prediction[idx[:, 0]]


def _normalized_counts(node: _Node) -> list[float]:
    """A leaf's class counts divided by their (left-to-right) total; zeros for total 0."""
    total = 0.0
    for c in node.stats:
        total += c
    return [c / total for c in node.stats] if total != 0 else [0.0] * len(node.stats)


@scorer("org.apache.spark.ml.classification.RandomForestClassificationModel")
class RandomForestClassifierScorer(_Classifier):
    supports = 'normalized per-tree class counts, summed; probability; prediction; thresholds; leafCol'
    limitations = '—'

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.votes = self.node_values(_normalized_counts)

    def raw(self, idx):
        return sequential_sum(self.votes[idx].transpose(0, 2, 1))


def _log_loss_probability(margin):
    """``LogLoss.computeProbability``: p0 = 1 / (1 + exp(2m)), 0 where exp overflows."""
    return 1.0 / (1.0 + java_exp(2.0 * margin))


@scorer("org.apache.spark.ml.classification.GBTClassificationModel")
class GBTClassifierScorer(_Classifier):
    supports = 'margin = sum(weight * tree); rawPrediction [-m, m]; log-loss probability; leafCol'
    limitations = "margin summed left to right where Spark's BLAS ddot may add in another order (~1e-15 relative)"

    def raw(self, idx):
        m = self.weighted_sum(idx)
        return np.stack([-m, m], axis=1)

    def raw2probability(self, raw):
        p0 = apply_each(_log_loss_probability, raw[:, 1])
        return np.stack([p0, 1.0 - p0], axis=1)


class _Regressor(_TreeModel):
    def predict(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def columns(self, X):
        idx = self.forest.leaves(X)
        pred_col = self.param("predictionCol", "prediction")
        out = {pred_col: self.predict(idx)} if pred_col else {}
        return {**out, **self.leaf_outputs(idx)}


def _variance(node: _Node) -> list[float]:
    count, total, squares = node.stats
    return [0.0 if count == 0 else (squares - total * total / count) / count]


@scorer("org.apache.spark.ml.regression.DecisionTreeRegressionModel")
class DecisionTreeRegressorScorer(_Regressor):
    supports = 'leaf prediction; varianceCol; leafCol'
    limitations = '—'

    ensemble = False

    def __init__(self, path, metadata, context=None):
        super().__init__(path, metadata, context)
        self.variance_col = self.param("varianceCol", "")
        if self.variance_col:
            self.variance = self.node_values(_variance)[:, 0]

    def predict(self, idx):
        return self.tree_predictions(idx)[:, 0]

    def leaf_outputs(self, idx):
        out = super().leaf_outputs(idx)
        if self.variance_col:
            out[self.variance_col] = self.variance[idx[:, 0]]
        return out


@scorer("org.apache.spark.ml.regression.RandomForestRegressionModel")
class RandomForestRegressorScorer(_Regressor):
    supports = 'mean of tree predictions; leafCol'
    limitations = '—'

    def predict(self, idx):
        return sequential_sum(self.tree_predictions(idx)) / self.num_trees


@scorer("org.apache.spark.ml.regression.GBTRegressionModel")
class GBTRegressorScorer(_Regressor):
    supports = 'sum(weight * tree); leafCol'
    limitations = "sum left to right where Spark's BLAS ddot may add in another order (~1e-15 relative)"

    def predict(self, idx):
        return self.weighted_sum(idx)
