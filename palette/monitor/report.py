"""The monitoring report: drift of current windows against a reference, quality, and a
model's importance-weighted drift — a ``palette.reports.Report`` like parity and
consistency (text, JSON, HTML with plots, MLflow, exit code).

``monitor(reference, windows, ...)`` tests every feature of every current window against
the reference (``drift.compare``), controls the false discovery rate over all those tests
at once (Benjamini–Hochberg, ``q``), and, given the model's importances ``w``, computes
per window ``IWD = sum_f w_f * d_f`` with ``d_f`` the feature's distribution distance
(KS distance for numbers, total variation for categories; both in [0, 1]).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from palette.reports import Limit, Measure, Report, html
from palette.reports.text import fmt, table

from .drift import Q, Test, compare, flag
from .profile import Profile


@dataclass
class MonitorReport(Report):
    kind = "monitoring"
    title = "palette monitoring report"
    subject: str
    reference: str
    windows: list[str]
    tests: list[Test]
    q: float = Q
    importance: dict[str, float] = field(default_factory=dict)
    importance_method: str | None = None
    iwd: dict[str, float] = field(default_factory=dict)          # window -> IWD
    iwd_limit: float | None = None
    quality: list[Measure] = field(default_factory=list)
    histograms: dict[str, dict] = field(default_factory=dict)    # feature -> {"bins", "reference", "current"}
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def alerts(self) -> list[Test]:
        return [t for t in self.tests if t.alert]

    @property
    def latest_iwd(self) -> float | None:
        return self.iwd[self.windows[-1]] if self.windows and self.windows[-1] in self.iwd else None

    def measures(self) -> list[Measure]:
        out = []
        for t in self.tests:
            what = {"ks": "distribution (KS distance)", "chi2": "categories (total variation)",
                    "null_rate": "null rate change"}[t.test]
            detail = f"p {t.p_value:.2g}, q {t.q_value:.2g}" + ("" if t.discovery else " (not significant)")
            out.append(Measure(what, f"{t.window} {t.feature}".strip(), round(t.effect, 6),
                               Limit("<", t.min_effect), detail, failed=t.alert))
        for w, v in self.iwd.items():
            out.append(Measure("importance-weighted drift", f"{w} {self.subject}".strip(), round(v, 6),
                               None if self.iwd_limit is None else Limit("<=", self.iwd_limit)))
        return out + list(self.quality)

    def headline(self) -> str:
        iwd = "" if self.latest_iwd is None else f"; importance-weighted drift {self.latest_iwd:.4f}"
        features = len({t.feature for t in self.tests})
        return (f"{self.subject} against {self.reference}: {features} features x {len(self.windows)} windows, "
                f"{len(self.alerts)} drift alerts in {len(self.tests)} tests (false discovery rate controlled at "
                f"q={self.q:g}, Benjamini-Hochberg){iwd}")

    def _rows(self) -> tuple[list[str], list[list[str]]]:
        head = ["window", "feature", "importance", "test", "effect", "alerts at", "p", "q", "verdict", "sizes"]
        rows = []
        for t in sorted(self.tests, key=lambda t: (not t.alert, -self.importance.get(t.feature, 0), t.feature)):
            sizes = ", ".join(f"{k} {v:.3g}" for k, v in t.sizes.items() if v is not None)
            rows.append([t.window, t.feature, fmt(self.importance.get(t.feature)), t.test, f"{t.effect:.4g}",
                         f"{t.min_effect:g}", f"{t.p_value:.2g}", f"{t.q_value:.2g}",
                         "ALERT" if t.alert else "significant" if t.discovery else "-", sizes])
        return head, rows

    def body_lines(self) -> list[str]:
        head, rows = self._rows()
        lines = [table(rows[:60], head, rule=False)]
        if len(rows) > 60:
            lines.append(f"... {len(rows) - 60} more tests in the JSON report")
        top = self.contributions()[:5]
        if top:
            lines.append("top contributions to importance-weighted drift: "
                         + ", ".join(f"{f} {c:.4f}" for f, c in top))
        return lines

    def contributions(self) -> list[tuple[str, float]]:
        """w_f * d_f of the latest window, largest first."""
        if not self.windows or not self.importance:
            return []
        last = self.windows[-1]
        d = {t.feature: t.effect for t in self.tests if t.window == last and t.test in ("ks", "chi2")}
        return sorted(((f, w * d.get(f, 0.0)) for f, w in self.importance.items() if w), key=lambda x: -x[1])

    def body_html(self) -> str:
        parts = []
        if len(self.windows) > 1 and self.iwd:
            parts.append(html.lines(self.windows, {"IWD": [self.iwd.get(w) for w in self.windows]},
                                    "importance-weighted drift over time", "importance-weighted drift per window",
                                    limit=self.iwd_limit))
        if len(self.windows) > 1:
            drifted = sorted({t.feature for t in self.tests if t.test in ("ks", "chi2")},
                             key=lambda f: -self.importance.get(f, 0))[:8]
            effect = {(t.window, t.feature): t.effect for t in self.tests if t.test in ("ks", "chi2")}
            parts.append(html.lines(self.windows, {f: [effect.get((w, f)) for w in self.windows] for f in drifted},
                                    "drift per feature over time", "distance to the reference per window"))
            nulls = {(t.window, t.feature): t.sizes.get("null_rate_current") for t in self.tests
                     if t.test == "null_rate"}
            parts.append(html.lines(self.windows, {f: [nulls.get((w, f)) for w in self.windows] for f in drifted},
                                    "null rate over time", "null rate per window"))
        top = self.contributions()[:12]
        if top:
            parts.append(html.bars([f for f, _ in top], {"w x d": [c for _, c in top]},
                                   "top contributing features", "importance x drift (latest window)"))
        out = [f'<h2>Overview</h2><div class="plots">{"".join(parts)}</div>' if parts else ""]
        hist = "".join(html.bars(h["bins"], {"reference": h["reference"], "current": h["current"]},
                                 f"reference and current distribution of {f}", f"{f}: share of rows per bin")
                       for f, h in list(self.histograms.items())[:12])
        if hist:
            out.append(f'<h2>Reference against current</h2><div class="plots">{hist}</div>')
        head, rows = self._rows()
        out.append("<h2>Tests</h2>" + html.table(head, rows))
        return "".join(out)

    def figures(self) -> dict[str, float]:
        out = {"alerts": float(len(self.alerts)), "tests": float(len(self.tests))}
        if self.latest_iwd is not None:
            out["iwd"] = self.latest_iwd
        return out

    def json_body(self) -> dict:
        return {"subject": self.subject, "reference": self.reference, "windows": self.windows, "q": self.q,
                "importance": self.importance, "importance_method": self.importance_method, "iwd": self.iwd,
                "tests": [{"window": t.window, "feature": t.feature, "test": t.test, "statistic": t.statistic,
                           "p_value": t.p_value, "q_value": t.q_value, "effect": t.effect, "min_effect": t.min_effect,
                           "discovery": t.discovery, "alert": t.alert, "sizes": t.sizes} for t in self.tests],
                "seconds": self.seconds}


def _histogram(ref: Profile, cur: Profile) -> dict | None:
    if ref.kind == "num":
        if not ref.n or not cur.n:
            return None
        edges = np.unique(ref.quantiles(np.arange(1, 10) / 10))
        r = np.diff(np.concatenate([[0.0], ref.cdf(edges), [1.0]]))
        c = np.diff(np.concatenate([[0.0], cur.cdf(edges), [1.0]]))
        labels = [f"<{edges[0]:.3g}"] + [f"{a:.3g}.." for a in edges[:-1]] + [f">={edges[-1]:.3g}"]
        return {"bins": labels, "reference": r.tolist(), "current": c.tolist()}
    top = [k for k, _ in ref.top(8)]
    if not top or not ref.n or not cur.n:
        return None
    rb, cb = ref.category_bounds(), cur.category_bounds()
    share = lambda b, k, n: (sum(b.get(k, (0, 0))) / 2) / n                 # noqa: E731
    return {"bins": top + ["other"], "reference": [share(rb, k, ref.n) for k in top] + [
        max(0.0, 1 - sum(share(rb, k, ref.n) for k in top))], "current": [share(cb, k, cur.n) for k in top] + [
        max(0.0, 1 - sum(share(cb, k, cur.n) for k in top))]}


def monitor(subject: str, reference: dict[str, Profile], windows: list[tuple[str, dict[str, Profile]]], *,
            reference_label: str = "the reference", q: float = Q, importance: dict[str, float] | None = None,
            importance_method: str | None = None, limits: dict[str, dict] | None = None,
            iwd_limit: float | None = None, features: list[str] | None = None,
            quality: list[Measure] | None = None) -> MonitorReport:
    """Test each window's profiles against ``reference`` (see the module). ``limits``:
    per feature, the effect each test must reach to alert (the registry's
    ``Feature(drift=...)``); ``features``: only these (default: those in both)."""
    t0 = time.perf_counter()
    limits = limits or {}
    importance = dict(importance or {})
    tests: list[Test] = []
    for label, current in windows:
        names = features or sorted(set(reference) & set(current))
        for name in names:
            if name in reference and name in current and reference[name].kind == current[name].kind:
                for t in compare(name, reference[name], current[name], limits.get(name.split(" [")[0])):
                    t.window = label
                    tests.append(t)
    flag(tests, q)
    iwd = {}
    if importance:
        for label, _ in windows:
            d = {t.feature: t.effect for t in tests if t.window == label and t.test in ("ks", "chi2")}
            iwd[label] = float(sum(w * d.get(f, 0.0) for f, w in importance.items()))
    histograms = {}
    if windows:
        last = windows[-1][1]
        order = sorted((n for n in reference if n in last), key=lambda n: -importance.get(n, 0))
        for name in order:
            h = _histogram(reference[name], last[name]) if reference[name].kind == last[name].kind else None
            if h:
                histograms[name] = h
    notes = [f"missing from the current profiles: {', '.join(sorted(set(importance) - set(windows[-1][1])))}"] \
        if windows and importance and set(importance) - set(windows[-1][1]) else []
    return MonitorReport(subject, reference_label, [w for w, _ in windows], tests, q, importance, importance_method,
                         iwd, iwd_limit, list(quality or []), histograms, notes, time.perf_counter() - t0)
