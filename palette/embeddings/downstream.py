"""What another embedding version does to a model's predictions, without retraining and
without a JVM.

A saved model reads the embedding version it was fitted on. ``score_with`` loads it with
the JVM-free runtime (``load_scorer``, as ``palette serve`` and the parity worker do) over
an online store in which that version's records are answered from a ``Version`` held in
memory instead (``SubstitutedStore``): the vectors of the version being judged, read for
the same keys, UNK where it has none. Every other group the model reads comes from the
real online store. ``downstream`` scores one set of requests both ways and measures the
change: the mean and 95th percentile of |Δ prediction|, the share of predictions that
moved (more than ``tolerance``, by default 1% of the predictions' standard deviation; for
a classifier, whose class flipped), and the model's
metric on both (RMSE, or AUC for a binary classifier) when the requests hold the label.

No pyspark here: this module runs where the models are served.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palette.errors import InvalidArgument
from palette.online.base import DelegatingStore, GroupLayout
from palette.online.codec import RecordCodec


class SubstitutedStore(DelegatingStore):
    """``store``, except that the records of ``group_id`` come from ``vectors`` (encoded keys
    -> float32 rows) and ``unk`` (every other key; None: not found). The vectors are
    encoded in the layout the model expects: a compressed version's values are fixed points
    of its codec, so they decode exactly as they would from its own online form."""

    def __init__(self, store, layout: GroupLayout, feature: str, keys: np.ndarray, matrix: np.ndarray,
                 unk: np.ndarray | None, event_micros: int):
        super().__init__(store)
        self.group_id, self._layout = layout.group_id, layout
        names = [n for n, _ in layout.features]
        if feature not in names:
            raise InvalidArgument(f"{layout.group_id} has no feature {feature!r}")
        codec, at = RecordCodec([t for _, t in layout.features]), names.index(feature)

        def record(v) -> bytes:
            values = [None] * len(names)
            values[at] = v
            return codec.encode(values)
        self._index = {k: i for i, k in enumerate(keys.tolist())}
        self._matrix, self._record, self._ts = matrix, record, event_micros
        self._unk = None if unk is None else (event_micros, record(unk))

    def layout(self, group_id: str, refresh: bool = False):
        return self._layout if group_id == self.group_id else self.store.layout(group_id, refresh)

    def _load_layout(self, group_id):
        return self._layout if group_id == self.group_id else self.store._load_layout(group_id)

    def read(self, requests):
        mine = [i for i, (layout, _) in enumerate(requests) if layout.group_id == self.group_id]
        rest = [r for i, r in enumerate(requests) if i not in mine]
        found = iter(self.store.read(rest)) if rest else iter(())
        out = []
        for i, (layout, keys) in enumerate(requests):
            if i not in mine:
                out.append(next(found))
                continue
            hits = []
            for k in keys:
                row = self._index.get(k)
                hits.append(self._unk if row is None else (self._ts, self._record(self._matrix[row])))
            out.append(hits)
        return out


@dataclass(frozen=True)
class Change:
    """What switching a model's inputs from one version to another did, on ``n`` requests."""
    model: str
    n: int
    mean_abs_change: float
    p95_abs_change: float
    changed_rate: float          # share of predictions that moved more than the tolerance (a class: flipped)
    metric: str | None           # "rmse" or "auc", when the requests hold the label
    metric_before: float | None
    metric_after: float | None
    classifier: bool


def _predictions(rows: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    pred = np.array([np.nan if r.get("prediction") is None else float(r["prediction"]) for r in rows])
    prob = None
    if rows and "probability" in rows[0]:
        prob = np.array([np.nan if r.get("probability") is None else float(np.asarray(r["probability"])[-1])
                         for r in rows])
    return pred, prob


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties counted half), the Mann–Whitney way."""
    ok = ~np.isnan(scores) & ~np.isnan(labels)
    labels, scores = labels[ok] > 0.5, scores[ok]
    pos, neg = labels.sum(), (~labels).sum()
    if not pos or not neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = scores[order]          # average ranks of ties
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        if end > start:
            ranks[order[start:end + 1]] = (start + end + 2) / 2
        start = end + 1
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _metric(label: np.ndarray, pred: np.ndarray, prob: np.ndarray | None) -> tuple[str, float]:
    if prob is not None:
        return "auc", auc(label, prob)
    ok = ~np.isnan(pred) & ~np.isnan(label)
    return "rmse", float(np.sqrt(np.mean((pred[ok] - label[ok]) ** 2))) if ok.any() else float("nan")


def score_with(model: str, requests: list[dict], online_store, substitute: dict | None = None) -> list[dict]:
    """The model's answers to ``requests`` (JVM-free), its embedding version's records
    replaced as ``substitute`` says (``SubstitutedStore``'s arguments but the store)."""
    from palette.online import open_store
    from palette.transformers import load_scorer
    store = open_store(online_store)
    if substitute is not None:
        store = SubstitutedStore(store, **substitute)
    scorer = load_scorer(model, online_store=store)
    return scorer.scoreBatch([dict(r) for r in requests])


def downstream(model: str, requests: list[dict], online_store, before: dict, after: dict,
               label: str | None = None, tolerance: float | None = None) -> Change:
    """Score ``requests`` with the model's embedding records from ``before`` and from
    ``after`` (``SubstitutedStore`` arguments); see the module docstring. A regression's
    prediction changed when it moved more than ``tolerance`` (default: 1% of the standard
    deviation of its predictions before); a classifier's when its class flipped."""
    a = score_with(model, requests, online_store, before)
    b = score_with(model, requests, online_store, after)
    (pa, proba), (pb, probb) = _predictions(a), _predictions(b)
    classifier = proba is not None
    delta = np.abs((probb if classifier else pb) - (proba if classifier else pa))
    delta = delta[~np.isnan(delta)]
    if tolerance is None:
        tolerance = 0.01 * float(np.nanstd(pa)) if np.isfinite(pa).any() else 0.0
    changed = float(np.mean(pa != pb)) if classifier else float(np.mean(delta > tolerance)) if delta.size else 0.0
    metric = before_m = after_m = None
    if label is not None:
        y = np.array([np.nan if r.get(label) is None else float(r[label]) for r in requests])
        metric, before_m = _metric(y, pa, proba)
        _, after_m = _metric(y, pb, probb)
    return Change(model, len(requests), float(delta.mean()) if delta.size else 0.0,
                  float(np.percentile(delta, 95)) if delta.size else 0.0, changed, metric, before_m, after_m,
                  classifier)


__all__ = ["SubstitutedStore", "Change", "downstream", "score_with", "auc"]
