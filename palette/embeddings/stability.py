"""How much a new version of an embedding table moved against the old one.

Inputs are two aligned matrices: X (old version, n × d1) and Y (new version, n × d2),
row i of both the same entity; d1 and d2 may differ. Everything is pure numpy, works in
row chunks (no n × n matrix, no full float64 copy of an input) and scales to millions of
rows:

* ``procrustes(X, Y)`` — the orthogonal W minimising ||X W - Y||_F, and X W.
* ``cosine_drift(X, Y, W)`` — per entity 1 - cos(x_i W, y_i).
* ``knn_overlap(X, Y, k)`` — per query entity, the share of its k nearest neighbours
  (cosine, exact over all n) that both versions agree on.
* ``eigenspace_instability(X, Y)`` — the eigenspace instability measure (EIS) of
  Leszczynski et al., MLSys 2020, with per-entity contributions.
* ``summary(X, Y)`` — the overall numbers in one ``StabilitySummary``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((500, 8)).astype(np.float32)
>>> R = np.linalg.qr(rng.standard_normal((8, 8)))[0]
>>> Y = (X @ R).astype(np.float32)                  # the same table, rotated
>>> W, aligned = procrustes(X, Y)
>>> bool(np.allclose(W, R, atol=1e-5)), float(cosine_drift(X, Y, W).max()) < 1e-6
(True, True)
>>> float(knn_overlap(X, Y, k=5, sample=100).overlap.mean())
1.0
>>> eigenspace_instability(X, Y).value < 1e-12
True
>>> noisy = (Y + 0.5 * rng.standard_normal(Y.shape)).astype(np.float32)
>>> s = summary(X, noisy, k=5, sample=100)
>>> 0 < s.drift_mean < 0.2, s.knn_overlap_mean < 1.0, s.eis > 0
(True, True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from palette.errors import InvalidArgument

__all__ = [
    "EigenspaceInstability",
    "KnnOverlap",
    "Procrustes",
    "StabilitySummary",
    "cosine_drift",
    "eigenspace_instability",
    "knn_overlap",
    "procrustes",
    "summary",
]

CHUNK_ROWS = 65536
_EPS32 = float(np.finfo(np.float32).eps)  # 2**-23


def _matrix(M, name: str) -> np.ndarray:
    M = np.asarray(M)
    if M.ndim != 2:
        raise InvalidArgument(f"{name} must be a 2-D matrix (n, d), got shape {M.shape}")
    return np.asarray(M, dtype=np.float32)


def _pair(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _matrix(X, "X"), _matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise InvalidArgument(f"X and Y must have the same rows (entities), got {X.shape[0]} and {Y.shape[0]}")
    return X, Y


def _cross(A: np.ndarray, B: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """A^T B accumulated in float64, chunk by chunk."""
    out = np.zeros((A.shape[1], B.shape[1]), dtype=np.float64)
    for i in range(0, A.shape[0], chunk_rows):
        out += A[i : i + chunk_rows].astype(np.float64).T @ B[i : i + chunk_rows].astype(np.float64)
    return out


# --- Procrustes and cosine drift ---------------------------------------------------------


class Procrustes(NamedTuple):
    """``W``: orthogonal (d, d) float64, d = max(d1, d2); ``aligned``: X W, float32 (n, d)."""

    W: np.ndarray
    aligned: np.ndarray


def _orthogonal_map(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    d1, d2 = X.shape[1], Y.shape[1]
    d = max(d1, d2)
    M = np.zeros((d, d), dtype=np.float64)
    M[:d1, :d2] = _cross(X, Y)
    U, _, Vt = np.linalg.svd(M)
    return U @ Vt


def procrustes(X, Y) -> Procrustes:
    """The orthogonal map W minimising ||X W - Y||_F (orthogonal Procrustes), with X W.

    W = U V^T from the SVD U S V^T of X^T Y (accumulated in float64 over row chunks).
    When d1 != d2 the narrower matrix is padded with zero columns to d = max(d1, d2):
    W is then a (d, d) orthogonal matrix and ``aligned`` (n, d) is compared with Y
    padded the same way (zero columns change no norm, dot product or cosine).
    When X^T Y is singular W is not unique; numpy's SVD picks one.
    """
    X, Y = _pair(X, Y)
    W = _orthogonal_map(X, Y)
    aligned = X @ W[: X.shape[1]].astype(np.float32)
    return Procrustes(W, aligned)


def cosine_drift(X, Y, W=None, *, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Per entity ``1 - cos(x_i W, y_i)``: float32 array of n values in [0, 2].

    W is the (d, d) map from ``procrustes`` (None: no rotation; X and Y are then only
    zero-padded to the same width). A zero vector on either side has no direction; its
    drift is defined as 1.0 (cosine 0). Computed in float64 over row chunks.
    """
    X, Y = _pair(X, Y)
    d1, d2 = X.shape[1], Y.shape[1]
    d = max(d1, d2)
    if W is None:
        W = np.eye(d)
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (d, d):
        raise InvalidArgument(f"W must be ({d}, {d}) for X of width {d1} and Y of width {d2}, got {W.shape}")
    Wx = W[:d1, :d2]  # only the columns Y has can meet a nonzero y
    out = np.empty(X.shape[0], dtype=np.float32)
    for i in range(0, X.shape[0], chunk_rows):
        x = X[i : i + chunk_rows].astype(np.float64)
        y = Y[i : i + chunk_rows].astype(np.float64)
        dot = np.einsum("ij,ij->i", x @ Wx, y)
        # ||x W|| = ||x|| for orthogonal W; computed from x to keep the zero-vector rule exact.
        norms = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(norms > 0, dot / norms, 0.0)
        out[i : i + chunk_rows] = np.clip(1.0 - cos, 0.0, 2.0)
    return out


# --- k nearest neighbours ------------------------------------------------------------------


class KnnOverlap(NamedTuple):
    """``queries``: int64 row indices (sorted when sampled); ``overlap``: float32 per query,
    |kNN_X(i) ∩ kNN_Y(i)| / k."""

    queries: np.ndarray
    overlap: np.ndarray


def _inverse_norms(M: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    out = np.empty(M.shape[0], dtype=np.float32)
    for i in range(0, M.shape[0], chunk_rows):
        c = M[i : i + chunk_rows].astype(np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", c, c))
        with np.errstate(divide="ignore"):
            out[i : i + chunk_rows] = np.where(norm > 0, 1.0 / norm, 0.0)
    return out


def _merge(top_v, top_i, rows, vals, idx, k):
    """Merge candidates (rows, vals, idx) into the per-row top-k (value descending, then
    index ascending) held in top_v/top_i, in place."""
    affected, counts = np.unique(rows, return_counts=True)
    all_rows = np.concatenate([np.repeat(affected, k), rows])
    all_vals = np.concatenate([top_v[affected].ravel(), vals])
    all_idx = np.concatenate([top_i[affected].ravel(), idx])
    order = np.lexsort((all_idx, -all_vals, all_rows))
    sizes = counts + k
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    keep = order[(np.arange(order.size) - starts) < k]
    top_v[affected] = all_vals[keep].reshape(-1, k)
    top_i[affected] = all_idx[keep].reshape(-1, k)


def _knn(M: np.ndarray, queries: np.ndarray, k: int, query_block: int, candidate_block: int) -> np.ndarray:
    """Indices (len(queries), k) of each query's k most cosine-similar rows of M (itself
    excluded), exact over all rows: float32 BLAS products of one query block against one
    candidate block at a time; a candidate is looked at only if it beats the query's
    current k-th best (ties: the smaller index wins)."""
    n = M.shape[0]
    inv = _inverse_norms(M)
    Q = M[queries] * inv[queries, None]
    nq = queries.shape[0]
    top_v = np.full((nq, k), -np.inf, dtype=np.float32)
    top_i = np.full((nq, k), -1, dtype=np.int64)
    blocks = [(a, min(a + query_block, nq)) for a in range(0, nq, query_block)]
    S = np.empty((min(query_block, nq), candidate_block), dtype=np.float32)
    for c0 in range(0, n, candidate_block):
        c1 = min(c0 + candidate_block, n)
        C = (M[c0:c1] * inv[c0:c1, None]).T.copy()
        width = c1 - c0
        for a, b in blocks:
            s = S[: b - a, :width]
            np.matmul(Q[a:b], C, out=s)
            qa = queries[a:b]
            own = np.nonzero((qa >= c0) & (qa < c1))[0]
            s[own, qa[own] - c0] = -np.inf
            tv, ti = top_v[a:b], top_i[a:b]
            # Rows with any candidate above their current k-th best (few, after the
            # first blocks), then only those rows' passing candidates.
            hit = np.nonzero(s.max(axis=1) > tv[:, k - 1])[0]
            if hit.size == 0:
                continue
            sub = s[hit]
            p = sub > tv[hit, k - 1 :]
            if width > k and np.count_nonzero(p) > 4 * k * hit.size:
                # Many candidates beat the current k-th best (the first blocks): only the
                # block's own top k (and ties with its k-th) can enter.
                kth = np.partition(sub, width - k, axis=1)[:, width - k]
                p &= sub >= kth[:, None]
            rows, cols = np.nonzero(p)
            _merge(tv, ti, hit[rows], sub[rows, cols], cols.astype(np.int64) + c0, k)
    return top_i


def _overlap(nx: np.ndarray, ny: np.ndarray, k: int, chunk_rows: int = 65536) -> np.ndarray:
    out = np.empty(nx.shape[0], dtype=np.float32)
    for i in range(0, nx.shape[0], chunk_rows):
        a, b = nx[i : i + chunk_rows], ny[i : i + chunk_rows]
        out[i : i + chunk_rows] = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1) / k
    return out


def knn_overlap(
    X,
    Y,
    k: int = 10,
    queries=None,
    sample: int | None = 10000,
    seed: int = 0,
    *,
    query_block: int = 1024,
    candidate_block: int = 2048,
) -> KnnOverlap:
    """Per query entity i, ``|kNN_X(i) ∩ kNN_Y(i)| / k`` with cosine similarity.

    Neighbours are exact over all n rows (the entity itself excluded), computed in each
    version's own space (no alignment needed: cosine neighbours do not change under a
    rotation). Queries: ``queries`` (row indices) if given; else all rows when
    ``sample`` is None or >= n; else ``sample`` distinct rows drawn with
    ``numpy.random.default_rng(seed)``, returned sorted. Zero vectors have cosine 0 with
    everything. Similarities are float32 (BLAS); ties at the k-th neighbour go to the
    smaller row index. Cost: 2 · len(queries) · n · (d1 + d2) flops, in blocks of
    ``query_block`` × ``candidate_block`` similarities.
    """
    X, Y = _pair(X, Y)
    n = X.shape[0]
    if not 1 <= k <= n - 1:
        raise InvalidArgument(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    if queries is not None:
        queries = np.asarray(queries, dtype=np.int64).reshape(-1)
        if queries.size and (queries.min() < 0 or queries.max() >= n):
            raise InvalidArgument(f"queries must be row indices in [0, {n})")
    elif sample is None or sample >= n:
        queries = np.arange(n, dtype=np.int64)
    else:
        if sample < 1:
            raise InvalidArgument(f"sample must be >= 1, got {sample}")
        queries = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)).astype(np.int64)
    nx = _knn(X, queries, k, query_block, candidate_block)
    ny = _knn(Y, queries, k, query_block, candidate_block)
    return KnnOverlap(queries, _overlap(nx, ny, k))


# --- eigenspace instability ----------------------------------------------------------------


class EigenspaceInstability(NamedTuple):
    """``value``: EIS in [0, 1]; ``per_entity``: float64 (n,) contributions summing to
    ``value`` (None unless asked for)."""

    value: float
    per_entity: np.ndarray | None


def _gram(mats: list[np.ndarray], chunk_rows: int) -> np.ndarray:
    """Z^T Z for Z = [mats side by side], float64, one pass over the rows."""
    widths = [m.shape[1] for m in mats]
    D = sum(widths)
    G = np.zeros((D, D), dtype=np.float64)
    Z = np.empty((min(chunk_rows, mats[0].shape[0]), D), dtype=np.float64)
    for i in range(0, mats[0].shape[0], chunk_rows):
        rows = min(chunk_rows, mats[0].shape[0] - i)
        col = 0
        for m, w in zip(mats, widths):
            Z[:rows, col : col + w] = m[i : i + rows]
            col += w
        G += Z[:rows].T @ Z[:rows]
    return G


def _spectrum(G: np.ndarray, rcond: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (squared singular values) and vectors of a Gram matrix, keeping those
    whose singular value exceeds rcond · the largest."""
    lam, V = np.linalg.eigh(G)
    top = lam.max(initial=0.0)
    keep = lam > top * rcond**2 if top > 0 else np.zeros(lam.shape, dtype=bool)
    return lam[keep], V[:, keep]


def eigenspace_instability(
    X,
    Y,
    E=None,
    E_tilde=None,
    *,
    alpha: float = 3.0,
    per_entity: bool = False,
    rcond: float | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> EigenspaceInstability:
    """The eigenspace instability measure EIS of Leszczynski, May, Zhang, Wu, Aberger and
    Ré, "Understanding the Downstream Instability of Word Embeddings" (MLSys 2020).

    With U, Ũ orthonormal bases of the column spaces of X (n × d1) and X̃ = Y (n × d2),
    and reference embeddings E, Ẽ (n × k1, n × k2) with SVDs E = V R W^T, Ẽ = Ṽ R̃ W̃^T::

        Σ   = (E E^T)^α + (Ẽ Ẽ^T)^α  =  V R^2α V^T + Ṽ R̃^2α Ṽ^T
        EIS = tr((U U^T - Ũ Ũ^T) Σ (U U^T - Ũ Ũ^T)) / tr(Σ)

    i.e. ``(||(UU^T - ŨŨ^T) V R^α||_F^2 + ||(UU^T - ŨŨ^T) Ṽ R̃^α||_F^2) / (Σ R^2α + Σ R̃^2α)``.
    This follows the authors' code, ``Embedding.eis`` in HazyResearch/anchor-stability,
    file ``anchor/embedding.py`` (its six trace terms t1..t6 expand exactly this), whose
    experiments use α = 3 (``run_collect_results.sh``: ``eval_wiki_compressed_embs_ei.sh
    ... 3``) and, as E and Ẽ, full-precision 800-dimensional embeddings trained on the
    two corpora (``scripts/analysis/create_anchors.py``). Defaults here: α = 3, and when
    no references are given E = X and Ẽ = Y. EIS is 0 when X and Y span the same column
    space (e.g. Y = X R for an invertible R) and at most 1.

    Scaling: never an n × n matrix. One chunked float64 pass builds the Gram matrix of
    [X, Y, E, Ẽ] (at most (d1 + d2 + k1 + k2)^2 numbers); U = X B with B = W S^-1 from
    the eigendecomposition of X^T X (likewise Ũ, V R^α = E W_E R^(α-1)), and every term
    above is a product of these small matrices. Column-space directions whose singular
    value is below ``rcond`` × the largest are dropped (default
    ``sqrt(max(d1, d2)) · 2^-23``: below that a float32 matrix does not determine
    them); the authors' dense SVD keeps all d columns instead, which only differs for
    (numerically) rank-deficient inputs.

    Per-entity contributions (``per_entity=True``, one more chunked pass): with
    D = UU^T - ŨŨ^T, ``c_i = (D Σ D)_ii / tr(Σ)`` = the squared norm of row i of
    D [V R^α, Ṽ R̃^α] over tr(Σ). They are >= 0, do not depend on the choice of bases,
    and sum to EIS — entity i's share of the instability.
    """
    X, Y = _pair(X, Y)
    n = X.shape[0]
    refs = [X if E is None else _matrix(E, "E"), Y if E_tilde is None else _matrix(E_tilde, "E_tilde")]
    for name, R in zip(("E", "E_tilde"), refs):
        if R.shape[0] != n:
            raise InvalidArgument(f"{name} must have the {n} rows of X, got {R.shape[0]}")
    if alpha < 0:
        raise InvalidArgument(f"alpha must be >= 0, got {alpha}")
    if rcond is None:
        rcond = np.sqrt(max(X.shape[1], Y.shape[1], 1)) * _EPS32

    # One Gram matrix over the distinct inputs (E = X and Ẽ = Y by default).
    distinct: list[np.ndarray] = []
    slot = []
    for M in (X, Y, *refs):
        for j, seen in enumerate(distinct):
            if M is seen:
                slot.append(j)
                break
        else:
            slot.append(len(distinct))
            distinct.append(M)
    offsets = np.cumsum([0] + [m.shape[1] for m in distinct])
    G = _gram(distinct, chunk_rows)

    def block(a: int, b: int) -> np.ndarray:
        i, j = slot[a], slot[b]
        return G[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]

    # Orthonormal bases U = X B_x, Ũ = Y B_y.
    bases = []
    for a in (0, 1):
        lam, V = _spectrum(block(a, a), rcond)
        bases.append(V / np.sqrt(lam))
    # V R^α = E C for each reference, scaled by one common constant (cancels in the ratio).
    specs = [_spectrum(block(a, a), rcond) for a in (2, 3)]
    top = max((lam.max(initial=0.0) for lam, _ in specs), default=0.0)
    if top == 0.0:
        return EigenspaceInstability(0.0, np.zeros(n) if per_entity else None)
    coefs, total = [], 0.0
    for lam, V in specs:
        # V = E W_E R^-1, so V (R^2 / top)^(α/2) = E W_E R^-1 (R^2 / top)^(α/2).
        weight = (lam / top) ** (alpha / 2)
        coefs.append(V * (weight / np.sqrt(lam)))
        total += float(np.sum(weight**2))

    # U^T [V R^α, Ṽ R̃^α] and Ũ^T [...] as small matrices.
    Ux_A = np.hstack([bases[0].T @ block(0, r) @ C for r, C in zip((2, 3), coefs)])
    Uy_A = np.hstack([bases[1].T @ block(1, r) @ C for r, C in zip((2, 3), coefs)])
    Uy_Ux = bases[1].T @ block(1, 0) @ bases[0]
    numerator = np.sum(Ux_A**2) + np.sum(Uy_A**2) - 2.0 * np.sum(Uy_A * (Uy_Ux @ Ux_A))
    value = float(min(max(numerator / total, 0.0), 1.0))

    contributions = None
    if per_entity:
        # Row i of D A = x_i B_x (U^T A) - y_i B_y (Ũ^T A).
        Kx, Ky = bases[0] @ Ux_A, bases[1] @ Uy_A
        contributions = np.empty(n, dtype=np.float64)
        for i in range(0, n, chunk_rows):
            rows = X[i : i + chunk_rows].astype(np.float64) @ Kx
            rows -= Y[i : i + chunk_rows].astype(np.float64) @ Ky
            contributions[i : i + chunk_rows] = np.einsum("ij,ij->i", rows, rows) / total
    return EigenspaceInstability(value, contributions)


# --- summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StabilitySummary:
    """Overall numbers of one comparison (``dataclasses.asdict`` for a report)."""

    n: int
    dim_old: int
    dim_new: int
    drift_mean: float
    drift_p50: float
    drift_p95: float
    knn_k: int
    knn_queries: int
    knn_overlap_mean: float
    eis: float
    eis_alpha: float


def summary(
    X,
    Y,
    *,
    k: int = 10,
    sample: int | None = 10000,
    seed: int = 0,
    alpha: float = 3.0,
    E=None,
    E_tilde=None,
) -> StabilitySummary:
    """Procrustes-aligned cosine drift (mean, median, 95th percentile), mean kNN overlap
    over the sampled queries, and EIS (E = X and Ẽ = Y unless given), for X old and Y new."""
    X, Y = _pair(X, Y)
    drift = cosine_drift(X, Y, _orthogonal_map(X, Y))
    knn = knn_overlap(X, Y, k=k, sample=sample, seed=seed)
    eis = eigenspace_instability(X, Y, E, E_tilde, alpha=alpha)
    p50, p95 = np.percentile(drift, [50, 95]) if drift.size else (np.nan, np.nan)
    return StabilitySummary(
        n=X.shape[0],
        dim_old=X.shape[1],
        dim_new=Y.shape[1],
        drift_mean=float(drift.mean(dtype=np.float64)) if drift.size else float("nan"),
        drift_p50=float(p50),
        drift_p95=float(p95),
        knn_k=k,
        knn_queries=int(knn.queries.size),
        knn_overlap_mean=float(knn.overlap.mean(dtype=np.float64)) if knn.overlap.size else float("nan"),
        eis=eis.value,
        eis_alpha=alpha,
    )
