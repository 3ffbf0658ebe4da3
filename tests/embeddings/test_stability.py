"""Stability of a new embedding version against the old one: Procrustes alignment, cosine
drift, exact kNN overlap and the eigenspace instability measure (against a dense n × n
computation of the paper's formula)."""
import numpy as np
import pytest

from palette.embeddings import stability
from palette.embeddings.stability import (
    _knn,
    cosine_drift,
    eigenspace_instability,
    knn_overlap,
    procrustes,
    summary,
)


def rotation(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def gaussian(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


# --- Procrustes and cosine drift ------------------------------------------------------------


def test_procrustes_recovers_a_rotation():
    X = gaussian(3000, 16, 0)
    R = rotation(16, 1)
    Y = (X @ R).astype(np.float32)
    W, aligned = procrustes(X, Y)
    assert W.shape == (16, 16) and aligned.dtype == np.float32 and aligned.shape == X.shape
    np.testing.assert_allclose(W, R, atol=1e-5)
    np.testing.assert_allclose(aligned, Y, atol=1e-4)
    drift = cosine_drift(X, Y, W)
    assert drift.dtype == np.float32 and drift.shape == (3000,)
    assert drift.max() < 1e-6


def objective(X, Y, W):
    d = W.shape[0]
    Xp = np.zeros((X.shape[0], d)); Xp[:, : X.shape[1]] = X
    Yp = np.zeros((Y.shape[0], d)); Yp[:, : Y.shape[1]] = Y
    return np.linalg.norm(Xp @ W - Yp)


@pytest.mark.parametrize("d1,d2", [(6, 9), (8, 5), (7, 7)])
def test_procrustes_pads_the_narrower_side_and_is_optimal(d1, d2):
    X, Y = gaussian(400, d1, 2), gaussian(400, d2, 3)
    Y[:, : min(d1, d2)] += 2 * X[:, : min(d1, d2)]
    W, aligned = procrustes(X, Y)
    d = max(d1, d2)
    assert W.shape == (d, d) and aligned.shape == (400, d)
    np.testing.assert_allclose(W.T @ W, np.eye(d), atol=1e-12)
    np.testing.assert_allclose(aligned, X @ W[:d1], atol=1e-4)
    best = objective(X, Y, W)
    rng = np.random.default_rng(4)
    for _ in range(30):  # no nearby or random orthogonal map does better
        skew = rng.standard_normal((d, d)) * 1e-2
        near = W @ np.linalg.qr(np.eye(d) + skew - skew.T)[0]
        assert best <= objective(X, Y, near) + 1e-9
        assert best <= objective(X, Y, rotation(d, int(rng.integers(1 << 30)))) + 1e-9


def test_procrustes_maps_a_narrow_table_into_a_wider_one():
    X = gaussian(500, 6, 5)
    Q = rotation(9, 6)[:6]  # 6 x 9, orthonormal rows: Y is X embedded in 9 dimensions
    Y = (X @ Q).astype(np.float32)
    W, _ = procrustes(X, Y)
    assert cosine_drift(X, Y, W).max() < 1e-6


def test_drift_grows_with_noise():
    X = gaussian(5000, 32, 7)
    Y = (X @ rotation(32, 8)).astype(np.float32)
    noise = gaussian(5000, 32, 9)
    means = []
    for sigma in (0.0, 0.05, 0.2, 0.5, 1.0):
        Yn = Y + np.float32(sigma) * noise
        drift = cosine_drift(X, Yn, procrustes(X, Yn).W)
        assert drift.min() >= 0 and drift.max() <= 2
        means.append(float(drift.mean()))
    assert means[0] < 1e-6
    assert all(a < b for a, b in zip(means, means[1:]))
    # Without alignment the rotation alone looks like drift.
    assert cosine_drift(X, Y).mean() > 0.5


def test_drift_hand_made_and_zero_vectors():
    X = np.array([[1, 0], [1, 0], [0, 0], [2, 2], [3, 4]], dtype=np.float32)
    Y = np.array([[1, 1], [-5, 0], [1, 0], [0, 0], [3, 4]], dtype=np.float32)
    drift = cosine_drift(X, Y)
    np.testing.assert_allclose(drift, [1 - 2**-0.5, 2.0, 1.0, 1.0, 0.0], atol=1e-7)


def test_drift_chunks_and_width_check():
    X, Y = gaussian(1000, 8, 10), gaussian(1000, 8, 11)
    W = procrustes(X, Y).W
    np.testing.assert_array_equal(cosine_drift(X, Y, W, chunk_rows=7), cosine_drift(X, Y, W))
    with pytest.raises(ValueError, match="W must be"):
        cosine_drift(X, Y, np.eye(7))
    with pytest.raises(ValueError, match="same rows"):
        cosine_drift(X, Y[:-1])


# --- kNN overlap ----------------------------------------------------------------------------


def unit(degrees, lengths=None):
    t = np.radians(degrees)
    v = np.stack([np.cos(t), np.sin(t)], axis=1)
    return (v * (1 if lengths is None else np.asarray(lengths)[:, None])).astype(np.float32)


def test_knn_overlap_hand_made():
    # Points on a circle (lengths vary: cosine ignores them); k = 2.
    X = unit([0, 10, 25, 45, 90, 180], lengths=[1, 3, 0.5, 2, 7, 1])
    Y = np.zeros((6, 3), dtype=np.float32)  # the new version is wider
    Y[:, :2] = unit([0, 40, 25, 12, 90, 180])
    r = knn_overlap(X, Y, k=2)
    assert r.queries.tolist() == list(range(6))
    # X neighbours: 0:{1,2} 1:{0,2} 2:{1,3} 3:{2,1} 4:{3,2} 5:{4,3}
    # Y neighbours: 0:{3,2} 1:{2,3} 2:{3,1} 3:{0,2} 4:{1,2} 5:{4,1}
    assert r.overlap.tolist() == [0.5, 0.5, 1.0, 0.5, 0.5, 0.5]
    assert r.overlap.dtype == np.float32


def brute_knn(M, queries, k):
    M = M.astype(np.float64)
    norms = np.linalg.norm(M, axis=1)
    U = M / np.where(norms > 0, norms, 1)[:, None]
    S = U[queries] @ U.T
    S[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("query_block,candidate_block", [(1024, 2048), (16, 37), (5, 11)])
def test_blocked_knn_equals_brute_force(query_block, candidate_block):
    rng = np.random.default_rng(12)
    centres = rng.standard_normal((20, 12))
    X = (centres[rng.integers(0, 20, 700)] + 0.3 * rng.standard_normal((700, 12))).astype(np.float32)
    X[::50] = X[::50][::-1]  # not in any helpful order
    queries = np.sort(rng.choice(700, 120, replace=False))
    got = _knn(X, queries, 10, query_block, candidate_block)
    want = brute_knn(X, queries, 10)
    assert np.array_equal(got, want)  # same neighbours, same order (no ties in this data)


def test_knn_ties_go_to_the_smaller_index_and_zero_vectors():
    X = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 0], [2, 0]], dtype=np.float32)
    got = _knn(X, np.arange(6), 1, 2, 2)
    # 0: rows 1, 2, 5 tie at cosine 1 -> 1; 3: rows 0, 1, 2, 4, 5 all cosine 0 -> 0;
    # 4 (zero vector): cosine 0 with every row -> 0.
    assert got[:, 0].tolist() == [1, 0, 0, 0, 0, 0]
    got = _knn(X, np.arange(6), 3, 4, 3)
    assert got.tolist() == [[1, 2, 5], [0, 2, 5], [0, 1, 5], [0, 1, 2], [0, 1, 2], [0, 1, 2]]


def test_knn_overlap_rotation_is_one_and_noise_lowers_it():
    X = gaussian(4000, 16, 13)
    Y = (X @ rotation(16, 14)).astype(np.float32)
    r = knn_overlap(X, Y, k=10, sample=300, seed=3)
    assert r.queries.shape == (300,) and np.all(np.diff(r.queries) > 0)
    assert r.overlap.min() == 1.0
    noise = gaussian(4000, 16, 15)
    means = [knn_overlap(X, Y + np.float32(s) * noise, k=10, sample=300, seed=3).overlap.mean() for s in (0.1, 0.3, 1.0)]
    assert 1.0 > means[0] > means[1] > means[2]


def test_knn_query_selection():
    X, Y = gaussian(50, 4, 16), gaussian(50, 4, 17)
    a, b = knn_overlap(X, Y, k=3, sample=20, seed=1), knn_overlap(X, Y, k=3, sample=20, seed=1)
    assert np.array_equal(a.queries, b.queries) and np.array_equal(a.overlap, b.overlap)
    assert not np.array_equal(a.queries, knn_overlap(X, Y, k=3, sample=20, seed=2).queries)
    assert knn_overlap(X, Y, k=3, sample=None).queries.tolist() == list(range(50))
    assert knn_overlap(X, Y, k=3, sample=500).queries.size == 50
    given = knn_overlap(X, Y, k=3, queries=[7, 3, 3])
    assert given.queries.tolist() == [7, 3, 3] and given.overlap[1] == given.overlap[2]
    with pytest.raises(ValueError, match="k must"):
        knn_overlap(X, Y, k=50)
    with pytest.raises(ValueError, match="queries"):
        knn_overlap(X, Y, k=3, queries=[50])


# --- eigenspace instability -----------------------------------------------------------------


def dense_eis(X, Y, E, Et, alpha, rcond=1e-10):
    """The paper's formula with n x n matrices: tr((P - P~) S (P - P~)) / tr(S),
    S = (E E^T)^alpha + (E~ E~^T)^alpha, P, P~ the projections on the column spaces."""
    def projection(A):
        U, s, _ = np.linalg.svd(A.astype(np.float64), full_matrices=False)
        U = U[:, s > s.max() * rcond]
        return U @ U.T

    def power(A):
        w, V = np.linalg.eigh(A.astype(np.float64) @ A.astype(np.float64).T)
        keep = w > w.max() * rcond  # the null space has weight 0, also for alpha = 0
        return (V[:, keep] * w[keep] ** alpha) @ V[:, keep].T

    S = power(E) + power(Et)
    D = projection(X) - projection(Y)
    M = D @ S @ D
    return np.trace(M) / np.trace(S), np.diag(M) / np.trace(S)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("refs", ["self", "anchors"])
def test_eis_matches_the_dense_formula(alpha, refs):
    rng = np.random.default_rng(18)
    n = 60
    X = rng.standard_normal((n, 5)).astype(np.float32)
    Y = (X[:, :4] @ rng.standard_normal((4, 4)) + 0.7 * rng.standard_normal((n, 4))).astype(np.float32)
    if refs == "self":
        E, Et, kwargs = X, Y, {}
    else:
        E = np.hstack([X, rng.standard_normal((n, 7))]).astype(np.float32)
        Et = np.hstack([Y, rng.standard_normal((n, 5))]).astype(np.float32)
        kwargs = {"E": E, "E_tilde": Et}
    want, want_rows = dense_eis(X, Y, E, Et, alpha)
    got = eigenspace_instability(X, Y, alpha=alpha, per_entity=True, **kwargs)
    assert 0 < got.value < 1
    assert got.value == pytest.approx(want, rel=1e-9)
    np.testing.assert_allclose(got.per_entity, want_rows, rtol=1e-7, atol=1e-13)
    assert got.per_entity.min() >= 0
    assert got.per_entity.sum() == pytest.approx(got.value, rel=1e-9)
    chunked = eigenspace_instability(X, Y, alpha=alpha, chunk_rows=7, **kwargs)
    assert chunked.value == pytest.approx(got.value, rel=1e-12) and chunked.per_entity is None


def test_eis_is_zero_for_identical_rotated_and_reparametrised_tables():
    X = gaussian(2000, 12, 19)
    for Y in (X, X @ rotation(12, 20), X @ np.random.default_rng(21).standard_normal((12, 12))):
        r = eigenspace_instability(X, Y.astype(np.float32), per_entity=True)
        assert r.value < 1e-10 and r.per_entity.max() < 1e-10


def test_eis_grows_with_noise_and_is_at_most_one():
    X = gaussian(3000, 16, 22)
    noise = gaussian(3000, 16, 23)
    values = [eigenspace_instability(X, X + np.float32(s) * noise).value for s in (0.05, 0.2, 1.0, 5.0)]
    assert 0 < values[0] < values[1] < values[2] < values[3] <= 1
    # Orthogonal column spaces: the largest instability.
    A = np.zeros((100, 4), np.float32); A[:50, :2] = gaussian(50, 2, 24)
    B = np.zeros((100, 4), np.float32); B[50:, 2:] = gaussian(50, 2, 25)
    assert eigenspace_instability(A, B).value == pytest.approx(1.0)


def test_eis_rank_deficient_and_narrow_inputs():
    rng = np.random.default_rng(26)
    X = rng.standard_normal((80, 4)).astype(np.float32)
    X = np.hstack([X, X[:, :1]])  # a repeated column: rank 4
    Y = rng.standard_normal((80, 3)).astype(np.float32)
    want, _ = dense_eis(X, Y, X, Y, 3.0, rcond=1e-6)
    assert eigenspace_instability(X, Y).value == pytest.approx(want, rel=1e-9)
    few = rng.standard_normal((3, 6)).astype(np.float32)  # fewer rows than columns
    assert eigenspace_instability(few, few[::-1].copy()).value < 1e-10
    zero = np.zeros((10, 3), np.float32)
    assert eigenspace_instability(zero, zero).value == 0.0


def test_eis_scales_past_any_n_by_n_matrix():
    # 200k rows: an n x n float64 matrix would be 320 GB; the Gram formulation is small.
    X = gaussian(200_000, 8, 27)
    Y = X + np.float32(0.1) * gaussian(200_000, 8, 28)
    r = eigenspace_instability(X, Y, per_entity=True)
    assert 0 < r.value < 0.05 and r.per_entity.shape == (200_000,)


# --- summary ---------------------------------------------------------------------------------


def test_summary_of_a_rotation_and_of_a_noisy_version():
    X = gaussian(3000, 16, 29)
    Y = (X @ rotation(16, 30)).astype(np.float32)
    s = summary(X, Y, k=5, sample=200)
    assert (s.n, s.dim_old, s.dim_new, s.knn_k, s.knn_queries, s.eis_alpha) == (3000, 16, 16, 5, 200, 3.0)
    assert s.drift_mean < 1e-6 and s.drift_p95 < 1e-6 and s.knn_overlap_mean == 1.0 and s.eis < 1e-10
    noisy = summary(X, Y + np.float32(0.5) * gaussian(3000, 16, 31), k=5, sample=200)
    assert noisy.drift_p50 <= noisy.drift_p95
    assert noisy.drift_mean > 0.05 and noisy.knn_overlap_mean < 0.9 and noisy.eis > 0.01
    assert set(stability.StabilitySummary.__dataclass_fields__) == {
        "n", "dim_old", "dim_new", "drift_mean", "drift_p50", "drift_p95",
        "knn_k", "knn_queries", "knn_overlap_mean", "eis", "eis_alpha",
    }
