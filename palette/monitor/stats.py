"""The distributions the drift tests need, without scipy: the Kolmogorov distribution's
tail, chi-square's survival function, the normal's, and Benjamini–Hochberg."""
from __future__ import annotations

import math


def ks_pvalue(d: float, n_effective: float) -> float:
    """P(D >= d) for the two-sample KS statistic with n1*n2/(n1+n2) = ``n_effective``
    (asymptotic, with Stephens' small-sample correction)."""
    if d <= 0 or n_effective <= 0:
        return 1.0
    r = math.sqrt(n_effective)
    lam = (r + 0.12 + 0.11 / r) * d
    if lam < 0.2:
        return 1.0
    total = sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
    return min(1.0, max(0.0, 2 * total))


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for chi-square with ``df`` degrees of freedom (regularized upper gamma)."""
    if x <= 0 or df <= 0:
        return 1.0
    return _gamma_q(df / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    if x < a + 1:                                   # series for P, then Q = 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - math.lgamma(a)))
    b, c, d = x + 1 - a, 1e300, 1 / (x + 1 - a)     # continued fraction for Q (Lentz)
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, h * math.exp(-x + a * math.log(x) - math.lgamma(a)))


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """The BH-adjusted p-values (q-values): a test is a discovery at FDR ``q`` when its
    q-value is at most ``q``."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        out[i] = min(1.0, running)
    return out
