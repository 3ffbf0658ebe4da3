"""The embedding reports: ``StabilityReport`` (what a new version moved, and what it does to
the models that read the group) and ``CompressReport`` (memory saved, and its price on a
model). Both are ``palette.reports.Report``: text, JSON, HTML with plots, exit code 1 when
a limit is breached (a scheduler holds the rollout)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from palette.reports import Limit, Measure, Report, html
from palette.reports.text import fmt, table

from .downstream import Change

# Limits a compare is judged by, when given: measure name -> (CLI option, op).
STABILITY_LIMITS = {"drift_p95": ("max_drift", "<="), "knn_overlap_mean": ("min_knn_overlap", ">="),
                    "eis": ("max_eis", "<="), "changed_rate": ("max_change_rate", "<=")}


def _limit(limits: dict, name: str) -> Limit | None:
    option, op = STABILITY_LIMITS[name]
    value = limits.get(option)
    return None if value is None else Limit(op, float(value))


def _histogram(values: np.ndarray, bins: int, lo: float, hi: float) -> tuple[list[str], list[float]]:
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return [f"{edges[i]:.2g}" for i in range(bins)], counts.astype(float).tolist()


@dataclass
class StabilityReport(Report):
    """``palette embeddings compare``: see ``palette.embeddings.comparison``."""
    group: str
    old: str
    new: str
    summary: object                       # stability.StabilitySummary
    drift: np.ndarray                     # per entity, after alignment
    keys: np.ndarray                      # the entities both versions hold, as drift
    knn_overlap: np.ndarray               # per sampled query entity
    knn_keys: np.ndarray
    eis_per_entity: np.ndarray | None
    only_old: int
    only_new: int
    changes: list[Change] = field(default_factory=list)
    limits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    kind = "embedding_stability"
    title = "palette embedding stability"

    def measures(self) -> list[Measure]:
        s, subject = self.summary, f"{self.old} -> {self.new}"
        out = [Measure("drift_mean", subject, s.drift_mean, detail="1 - cosine after Procrustes alignment"),
               Measure("drift_p95", subject, s.drift_p95, _limit(self.limits, "drift_p95")),
               Measure("knn_overlap_mean", subject, s.knn_overlap_mean, _limit(self.limits, "knn_overlap_mean"),
                       detail=f"k={s.knn_k}, {s.knn_queries:,} query entities"),
               Measure("eis", subject, s.eis, _limit(self.limits, "eis"), detail=f"alpha={s.eis_alpha:g}"),
               Measure("entities_only_in_old", subject, self.only_old),
               Measure("entities_only_in_new", subject, self.only_new)]
        for c in self.changes:
            out.append(Measure("changed_rate", c.model, c.changed_rate, _limit(self.limits, "changed_rate"),
                               detail=f"{'class flips' if c.classifier else 'predictions moved'} on {c.n:,} requests"))
            out.append(Measure("mean_abs_change", c.model, c.mean_abs_change))
            if c.metric is not None:
                out.append(Measure(f"{c.metric}_delta", c.model, c.metric_after - c.metric_before,
                                   detail=f"{c.metric} {fmt(c.metric_before)} -> {fmt(c.metric_after)}"))
        return out

    def headline(self) -> str:
        s = self.summary
        models = "; ".join(f"{c.model}: {c.changed_rate:.1%} of predictions change" for c in self.changes)
        return (f"{self.group} {self.old} -> {self.new}: {s.n:,} shared entities, drift p95 {s.drift_p95:.3g}, "
                f"{s.knn_k}-NN overlap {s.knn_overlap_mean:.3g}, EIS {s.eis:.3g}" + (f"; {models}" if models else ""))

    def most_drifted(self, n: int = 10) -> list[tuple[str, float]]:
        top = np.argsort(-self.drift, kind="stable")[:n]
        return [(str(self.keys[i]), float(self.drift[i])) for i in top]

    def body_lines(self) -> list[str]:
        rows = [[k, f"{d:.4f}"] for k, d in self.most_drifted()]
        lines = ["most drifted entities:", table(rows, ["entity", "drift"])]
        if self.changes:
            lines += ["downstream models:", table(
                [[c.model, f"{c.n:,}", f"{c.changed_rate:.2%}", fmt(c.mean_abs_change), fmt(c.p95_abs_change),
                  c.metric or "-", fmt(c.metric_before), fmt(c.metric_after)] for c in self.changes],
                ["model", "requests", "changed", "mean |Δ|", "p95 |Δ|", "metric", "before", "after"])]
        return lines

    def figures(self) -> dict[str, float]:
        s = self.summary
        out = {"drift_mean": s.drift_mean, "drift_p95": s.drift_p95, "knn_overlap_mean": s.knn_overlap_mean,
               "eis": s.eis}
        for i, c in enumerate(self.changes):
            out[f"model{i}_changed_rate"] = c.changed_rate
        return out

    def json_body(self) -> dict:
        return {"group": self.group, "from": self.old, "to": self.new, "summary": asdict(self.summary),
                "only_old": self.only_old, "only_new": self.only_new,
                "most_drifted": [{"entity": k, "drift": d} for k, d in self.most_drifted(100)],
                "models": [asdict(c) for c in self.changes]}

    def body_html(self) -> str:
        labels, counts = _histogram(self.drift, 20, 0.0, max(float(self.drift.max(initial=0)), 1e-9))
        knn_labels, knn_counts = _histogram(self.knn_overlap, 11, 0.0, 1.0 + 1e-9)
        parts = [html.bars(labels, {"entities": counts}, "drift per entity", "cosine drift after alignment (entities)",
                           log=True),
                 html.bars(knn_labels, {"queries": knn_counts}, "knn overlap", f"{self.summary.knn_k}-NN overlap "
                           "per query entity")]
        if self.eis_per_entity is not None and len(self.eis_per_entity):
            order = np.argsort(-self.eis_per_entity)[:20]
            parts.append("<h2>Instability per entity (EIS contributions, top 20)</h2>" + html.bars(
                [str(self.keys[i]) for i in order], {"eis": self.eis_per_entity[order].tolist()}, "eis per entity",
                "share of the eigenspace instability"))
        parts.append("<h2>Most drifted entities</h2>" + html.table(["entity", "drift"],
                                                                   [[k, f"{d:.4f}"] for k, d in self.most_drifted(20)]))
        if self.changes:
            parts.append("<h2>Downstream models</h2>" + html.table(
                ["model", "requests", "changed", "mean |Δ|", "p95 |Δ|", "metric", "before", "after"],
                [[c.model, c.n, f"{c.changed_rate:.2%}", fmt(c.mean_abs_change), fmt(c.p95_abs_change),
                  c.metric or "-", fmt(c.metric_before), fmt(c.metric_after)] for c in self.changes]))
        return "".join(parts)


@dataclass
class Candidate:
    """One compression setting and what it measured."""
    top_k: int | None
    quantize: str
    kept: int
    online_bytes: int                   # the encoded vectors (and keys) the online store holds
    change: Change | None = None

    @property
    def label(self) -> str:
        return f"top-{self.top_k if self.top_k is not None else 'all'} {self.quantize}"


@dataclass
class CompressReport(Report):
    """``palette embeddings compress``: see ``palette.embeddings.compression``."""
    group: str
    written: str | None                 # the version written (None: a sweep that wrote nothing)
    entities: int
    dim: int
    before_online_bytes: int
    candidates: list[Candidate]
    delta_bytes_before: int | None = None
    delta_bytes_after: int | None = None
    limits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    kind = "embedding_compression"
    title = "palette embedding compression"

    def measures(self) -> list[Measure]:
        out = [Measure("online_bytes_before", self.group, self.before_online_bytes)]
        for c in self.candidates:
            subject = f"{self.group} {c.label}"
            out.append(Measure("online_bytes_ratio", subject, c.online_bytes / self.before_online_bytes,
                               detail=f"{c.online_bytes:,} bytes, {c.kept:,} of {self.entities:,} entities kept"))
            if c.change is not None:
                limit = self.limits.get("max_change_rate")
                out.append(Measure("changed_rate", f"{subject} {c.change.model}", c.change.changed_rate,
                                   None if limit is None else Limit("<=", float(limit))))
                if c.change.metric is not None:
                    out.append(Measure(f"{c.change.metric}_delta", f"{subject} {c.change.model}",
                                       c.change.metric_after - c.change.metric_before))
        if self.delta_bytes_before and self.delta_bytes_after is not None:
            out.append(Measure("delta_bytes_ratio", self.group, self.delta_bytes_after / self.delta_bytes_before,
                               detail=f"{self.delta_bytes_before:,} -> {self.delta_bytes_after:,} bytes"))
        return out

    def headline(self) -> str:
        wrote = f"wrote {self.written}" if self.written else "wrote nothing (a sweep)"
        return (f"{self.group}: {self.entities:,} entities x {self.dim}, online {self.before_online_bytes:,} bytes; "
                f"{wrote}")

    def rows(self) -> list[list]:
        out = []
        for c in self.candidates:
            ch = c.change
            out.append([c.label, f"{c.kept:,}", f"{c.online_bytes:,}", f"{c.online_bytes / self.before_online_bytes:.3f}",
                        "-" if ch is None else f"{ch.changed_rate:.2%}", "-" if ch is None else fmt(ch.mean_abs_change),
                        "-" if ch is None or ch.metric is None else f"{ch.metric} {fmt(ch.metric_before)} -> "
                                                                    f"{fmt(ch.metric_after)}"])
        return out

    HEADER = ["setting", "kept", "online bytes", "ratio", "changed", "mean |Δ|", "metric"]

    def body_lines(self) -> list[str]:
        lines = [table(self.rows(), self.HEADER)]
        if self.delta_bytes_before and self.delta_bytes_after is not None:
            lines.append(f"Delta table bytes: {self.delta_bytes_before:,} -> {self.delta_bytes_after:,}")
        return lines

    def figures(self) -> dict[str, float]:
        return {f"ratio_{c.label.replace(' ', '_')}": c.online_bytes / self.before_online_bytes for c in self.candidates}

    def json_body(self) -> dict:
        return {"group": self.group, "written": self.written, "entities": self.entities, "dim": self.dim,
                "online_bytes_before": self.before_online_bytes, "delta_bytes_before": self.delta_bytes_before,
                "delta_bytes_after": self.delta_bytes_after,
                "candidates": [{"top_k": c.top_k, "quantize": c.quantize, "kept": c.kept,
                                "online_bytes": c.online_bytes,
                                "change": None if c.change is None else asdict(c.change)} for c in self.candidates]}

    def body_html(self) -> str:
        points = [(c.online_bytes / self.before_online_bytes, c.change.changed_rate) for c in self.candidates
                  if c.change is not None]
        plot = html.scatter(points, "memory vs quality", "online bytes (ratio to uncompressed)",
                            "predictions changed") if points else ""
        return plot + html.table(self.HEADER, self.rows())


__all__ = ["StabilityReport", "CompressReport", "Candidate", "STABILITY_LIMITS"]
