"""Drift tests over many seeds: false alarms under control, planted changes found.

A report here tests four features (three numbers, one category), each for its
distribution and its null rate — eight tests under Benjamini–Hochberg at q = 0.05."""
import numpy as np
import pytest

from palette.monitor.drift import compare, flag
from palette.monitor.profile import Profile

CATEGORIES, WEIGHTS = np.array(list("abcde")), [0.4, 0.25, 0.15, 0.12, 0.08]


def _sample(rng, n, shift=0.0, new_category=0.0, null_rate=0.01):
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < null_rate] = np.nan
    c = rng.choice(CATEGORIES, n, p=WEIGHTS).astype(object)
    if new_category:
        c[rng.random(n) < new_category] = "new"
    return {"x": Profile.of(x), "y": Profile.of(rng.exponential(2, n)),
            "z": Profile.of(rng.integers(0, 50, n).astype(float)), "c": Profile.of(c, "cat")}


def _alerts(rng, n, **planted):
    ref, cur = _sample(rng, n), _sample(rng, n, **planted)
    return {(t.feature, t.test) for t in flag([t for f in ref for t in compare(f, ref[f], cur[f])]) if t.alert}


@pytest.mark.parametrize("n, reports", [(1_000, 1_500), (10_000, 300), (100_000, 60), (1_000_000, 8)])
def test_two_samples_of_one_distribution_alert_in_at_most_1_percent_of_reports(n, reports):
    rng = np.random.default_rng(n)
    alerting = sum(bool(_alerts(rng, n)) for _ in range(reports))
    assert alerting / reports <= 0.01, f"{alerting} of {reports} A/A reports alerted at {n:,} rows"


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_a_tenth_of_a_standard_deviation_is_found_in_90_percent_of_runs(n):
    rng = np.random.default_rng(n + 1)
    runs = 150 if n == 10_000 else 20
    found = sum(("x", "ks") in _alerts(rng, n, shift=0.1) for _ in range(runs))
    assert found / runs >= 0.9, f"{found} of {runs}"


def test_a_new_category_and_a_rising_null_rate_are_found():
    rng = np.random.default_rng(3)
    assert all(("c", "chi2") in _alerts(rng, 10_000, new_category=0.05) for _ in range(20))
    assert all(("x", "null_rate") in _alerts(rng, 10_000, null_rate=0.10) for _ in range(20))
    ref, cur = _sample(rng, 10_000), _sample(rng, 10_000, new_category=0.05)
    [chi2] = [t for t in compare("c", ref["c"], cur["c"]) if t.test == "chi2"]
    assert chi2.sizes["new_category_share"] == pytest.approx(0.05, abs=0.01)


def test_effect_sizes_of_a_known_shift():
    rng = np.random.default_rng(4)
    ref, cur = Profile.of(rng.normal(0, 2, 200_000)), Profile.of(rng.normal(1, 2, 200_000))
    [ks, _nulls] = compare("x", ref, cur)
    assert ks.sizes["mean_shift_std"] == pytest.approx(0.5, abs=0.02)
    assert ks.sizes["wasserstein_std"] == pytest.approx(0.5, abs=0.03)
    assert ks.sizes["ks_distance"] == pytest.approx(0.197, abs=0.01)           # 2 * Phi(0.25) - 1
    assert 0.2 < ks.sizes["psi"] < 0.3 and 0 < ks.sizes["js"] < 1


def test_benjamini_hochberg_sets_q_values_and_says_which_are_discoveries():
    from palette.monitor.drift import Test
    tests = [Test("f", "ks", 0, p, 0.5, 0.02) for p in (0.001, 0.02, 0.03, 0.5)]
    flag(tests, q=0.05)
    assert [round(t.q_value, 4) for t in tests] == [0.004, 0.04, 0.04, 0.5]
    assert [t.alert for t in tests] == [True, True, True, False]
