"""Drift of a current profile against a reference profile, one feature at a time.

Numbers: the two-sample Kolmogorov–Smirnov test on the quantile sketches, with both
sketches' rank error bounds subtracted from the distance before it is tested (so the
sketch's approximation can never raise an alarm by itself), plus effect sizes — the
Wasserstein distance over the reference's standard deviation, PSI on the reference's
deciles, and Jensen–Shannon on the same bins. Categories: the chi-square test of
homogeneity over the categories the sketches track (the rest pooled as "other"),
total variation, Jensen–Shannon, and the share of the current window in categories the
reference never had. Every feature also gets a null-rate test (two proportions).

A test is a *discovery* when its Benjamini–Hochberg q-value over all tests of a report is
at most ``q`` (``flag``); a discovery *alerts* when its effect also reaches the limit
below which a difference does not matter (``DEFAULTS``, overridable per feature): with
millions of rows every difference is significant, not every one is drift.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> ref, cur = Profile.of(rng.normal(size=20_000)), Profile.of(rng.normal(0.1, 1, size=20_000))
>>> tests = compare("x", ref, cur)
>>> [t.test for t in tests], tests[0].p_value < 1e-6
(['ks', 'null_rate'], True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .profile import Profile
from .stats import benjamini_hochberg, chi2_sf, ks_pvalue, normal_sf

# What a test's effect must reach to alert, by test: distances in [0, 1] (KS distance,
# total variation), and the null rate's absolute change.
DEFAULTS = {"ks": 0.02, "chi2": 0.04, "null_rate": 0.02}
Q = 0.05
_BINS = 10
_TINY = 1e-4


@dataclass
class Test:
    """One test of one feature: its statistic, p-value, effect (bounded, in [0, 1]) and
    the effect sizes shown beside it; ``q_value`` and ``alert`` once ``flag`` has run."""
    feature: str
    test: str                       # ks, chi2 or null_rate
    statistic: float
    p_value: float
    effect: float
    min_effect: float
    sizes: dict = field(default_factory=dict)
    q_value: float | None = None
    discovery: bool = False
    alert: bool = False
    window: str = ""

    def describe(self) -> str:
        extra = ", ".join(f"{k} {v:.3g}" for k, v in self.sizes.items() if v is not None)
        return (f"{self.feature} {self.test}: effect {self.effect:.3g} (alerts from {self.min_effect:g}), "
                f"p {self.p_value:.2g}, q {self.q_value if self.q_value is None else f'{self.q_value:.2g}'}"
                + (f"; {extra}" if extra else ""))


def compare(feature: str, ref: Profile, cur: Profile, limits: dict | None = None) -> list[Test]:
    """The tests of one feature's current profile against its reference."""
    limits = {**DEFAULTS, **(limits or {})}
    tests = []
    if ref.n and cur.n:
        tests.append(_numbers(feature, ref, cur, limits["ks"]) if ref.kind == "num"
                     else _categories(feature, ref, cur, limits["chi2"]))
    if ref.count and cur.count:
        tests.append(_null_rate(feature, ref, cur, limits["null_rate"]))
    return tests


def _numbers(feature: str, ref: Profile, cur: Profile, min_effect: float) -> Test:
    ranks = np.linspace(0, 1, 513)
    points = np.unique(np.concatenate([ref.quantiles(ranks), cur.quantiles(ranks)]))
    f_ref, f_cur = ref.cdf(points), cur.cdf(points)
    d = float(np.max(np.abs(f_ref - f_cur)))
    d_tested = max(0.0, d - ref.rank_error - cur.rank_error)
    p = ks_pvalue(d_tested, ref.n * cur.n / (ref.n + cur.n))
    mid = (np.arange(200) + 0.5) / 200
    w1 = float(np.mean(np.abs(np.asarray(ref.quantiles(mid)) - np.asarray(cur.quantiles(mid)))))
    spread = ref.std or (ref.max - ref.min) or 1.0
    edges = np.unique(ref.quantiles(np.arange(1, _BINS) / _BINS))
    r, c = _binned(ref, edges), _binned(cur, edges)
    return Test(feature, "ks", d_tested, p, d, min_effect,
                {"ks_distance": d, "wasserstein_std": w1 / spread, "psi": _psi(r, c), "js": _js(r, c),
                 "mean_shift_std": (cur.mean - ref.mean) / spread})


def _binned(p: Profile, edges: np.ndarray) -> np.ndarray:
    cdf = np.concatenate([[0.0], p.cdf(edges), [1.0]])
    return np.diff(cdf)


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    r, c = np.maximum(r, _TINY), np.maximum(c, _TINY)
    return float(np.sum((c - r) * np.log(c / r)))


def _js(r: np.ndarray, c: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits, in [0, 1]."""
    m = (r + c) / 2

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))
    return max(0.0, (kl(r) + kl(c)) / 2)


def _categories(feature: str, ref: Profile, cur: Profile, min_effect: float) -> Test:
    ref_counts, cur_counts = ref.category_bounds(), cur.category_bounds()
    names = sorted(set(ref_counts) | set(cur_counts))
    est = lambda counts, k: sum(counts.get(k, (0, 0))) / 2        # noqa: E731  midpoint of the bounds
    r = np.array([est(ref_counts, k) for k in names] + [0.0])
    c = np.array([est(cur_counts, k) for k in names] + [0.0])
    r[-1], c[-1] = max(0.0, ref.n - r[:-1].sum()), max(0.0, cur.n - c[:-1].sum())   # "other"
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    total = r.sum() + c.sum()
    chi2 = 0.0
    for side in (r, c):
        expected = (r + c) * side.sum() / total
        chi2 += float(np.sum((side - expected) ** 2 / np.maximum(expected, 1e-12)))
    df = max(1, len(r) - 1)
    pr, pc = r / r.sum(), c / c.sum()
    tv = float(0.5 * np.abs(pr - pc).sum())
    exact_ref = all(lo == hi for lo, hi in ref_counts.values())
    new = sum(est(cur_counts, k) for k in cur_counts if k not in ref_counts) / cur.n if exact_ref else None
    return Test(feature, "chi2", chi2, chi2_sf(chi2, df) if len(r) > 1 else 1.0, tv, min_effect,
                {"total_variation": tv, "js": _js(pr, pc), "new_category_share": new,
                 "distinct_ratio": (cur.distinct or 0) / max(ref.distinct or 0, 1)})


def _null_rate(feature: str, ref: Profile, cur: Profile, min_effect: float) -> Test:
    a, b = (ref.nulls + ref.nans) / ref.count, (cur.nulls + cur.nans) / cur.count
    pooled = (ref.nulls + ref.nans + cur.nulls + cur.nans) / (ref.count + cur.count)
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref.count + 1 / cur.count))
    z = 0.0 if se == 0 else abs(b - a) / se
    return Test(feature, "null_rate", z, 1.0 if se == 0 else 2 * normal_sf(z), abs(b - a), min_effect,
                {"null_rate_reference": a, "null_rate_current": b})


def flag(tests: list[Test], q: float = Q) -> list[Test]:
    """Benjamini–Hochberg over all ``tests`` at false discovery rate ``q``: sets each
    test's q-value, ``discovery`` and ``alert`` (a discovery whose effect matters)."""
    for t, qv in zip(tests, benjamini_hochberg([t.p_value for t in tests])):
        t.q_value = qv
        t.discovery = qv <= q
        t.alert = t.discovery and t.effect >= t.min_effect
    return tests
