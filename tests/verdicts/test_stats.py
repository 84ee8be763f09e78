"""The statistical helpers of the verdicts, against scipy.stats (and first principles) on fixed data."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from latentspace import stats

A = [0.9781, 0.9774, 0.9790, 0.9769, 0.9785]
B = [0.9779, 0.9780, 0.9783, 0.9771, 0.9776]


def test_t_interval_matches_scipy():
    iv = stats.t_interval(A, 0.95)
    low, high = sps.t.interval(0.95, df=len(A) - 1, loc=np.mean(A), scale=sps.sem(A))
    assert iv["n"] == 5 and iv["mean"] == pytest.approx(np.mean(A))
    assert iv["std"] == pytest.approx(np.std(A, ddof=1))
    assert (iv["low"], iv["high"]) == (pytest.approx(low), pytest.approx(high))
    wider = stats.t_interval(A, 0.99)
    assert wider["low"] < iv["low"] and wider["high"] > iv["high"]


def test_t_interval_of_one_or_no_value_has_no_bounds():
    assert stats.t_interval([0.5]) == {"n": 1, "mean": 0.5, "std": None, "low": None, "high": None}
    assert stats.t_interval([])["mean"] is None


def test_paired_comparison_matches_scipy():
    res = stats.paired_comparison(A, B, 0.95)
    d = np.subtract(A, B)
    assert res["differences"] == pytest.approx(list(d))
    t = sps.ttest_rel(A, B)
    assert res["paired_t"]["statistic"] == pytest.approx(t.statistic)
    assert res["paired_t"]["p_value"] == pytest.approx(t.pvalue) and res["paired_t"]["df"] == 4
    w = sps.wilcoxon(d)
    assert res["wilcoxon"]["statistic"] == pytest.approx(w.statistic)
    assert res["wilcoxon"]["p_value"] == pytest.approx(w.pvalue)
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    assert (res["sign_test"]["positive"], res["sign_test"]["negative"]) == (pos, neg)
    assert res["sign_test"]["p_value"] == pytest.approx(sps.binomtest(pos, pos + neg, 0.5).pvalue)
    low, high = sps.t.interval(0.95, df=4, loc=d.mean(), scale=sps.sem(d))
    assert res["mean_difference"]["low"] == pytest.approx(low)
    assert res["mean_difference"]["high"] == pytest.approx(high)


def test_sign_test_by_hand():
    # 5 positive, 1 negative, 1 zero (dropped): two-sided p = 2 * P(X <= 1), X ~ Bin(6, 1/2) = 2 * 7 / 64.
    res = stats.sign_test([1, 2, 3, 4, 5, -1, 0])
    assert (res["positive"], res["negative"]) == (5, 1)
    assert res["p_value"] == pytest.approx(14 / 64)


def test_no_differences_give_no_p_values_but_no_error():
    res = stats.paired_comparison([0.9, 0.8], [0.9, 0.8])
    assert res["wilcoxon"]["p_value"] is None and res["sign_test"]["p_value"] is None
    assert res["paired_t"]["p_value"] is None
    assert stats.paired_comparison([0.9], [0.8])["paired_t"]["p_value"] is None


def test_paired_samples_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        stats.paired_comparison([1.0, 2.0], [1.0])


def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_images():
    a = np.array([1] * 50 + [1] * 12 + [0] * 4 + [0] * 34, bool)   # 12 images only a gets right
    b = np.array([1] * 50 + [0] * 12 + [1] * 4 + [0] * 34, bool)   # 4 only b
    res = stats.mcnemar_exact(a, b)
    assert (res["only_a"], res["only_b"]) == (12, 4)
    n = 16
    by_hand = min(1.0, 2 * sum(math.comb(n, k) for k in range(0, 5)) / 2 ** n)
    assert res["p_value"] == pytest.approx(by_hand)
    assert res["p_value"] == pytest.approx(sps.binomtest(12, 16, 0.5).pvalue)
    assert stats.mcnemar_exact(a, a)["p_value"] == 1.0


def test_spread_is_the_interval_with_min_max_and_values():
    s = stats.spread(A, 0.95)
    assert s["values"] == A and s["min"] == min(A) and s["max"] == max(A)
    assert s["low"] == pytest.approx(stats.t_interval(A, 0.95)["low"])
    assert stats.spread([0.5])["std"] is None


@pytest.mark.parametrize("seed", range(20))
def test_equivalence_is_tost_against_scipy(seed):
    rng = np.random.default_rng(seed)
    x = list(rng.normal(0.97 + rng.normal(0, 0.004), 0.003, size=int(rng.integers(2, 8))))
    ref, margin, alpha = 0.97, 0.005, 0.05
    res = stats.equivalence(x, ref, margin, alpha)
    p_low = sps.ttest_1samp(x, ref - margin, alternative="greater").pvalue
    p_high = sps.ttest_1samp(x, ref + margin, alternative="less").pvalue
    assert res["p_lower"] == pytest.approx(p_low) and res["p_upper"] == pytest.approx(p_high)
    # TOST rejects both nulls exactly when the 1 - 2 alpha interval lies inside the margin band.
    low, high = sps.t.interval(1 - 2 * alpha, df=len(x) - 1, loc=np.mean(x) - ref, scale=sps.sem(x))
    assert (res["holds"] is True) == (max(p_low, p_high) < alpha) == (-margin < low and high < margin)
    assert (res["holds"] is False) == (low > margin or high < -margin)


def test_equivalence_without_an_interval_cannot_decide():
    assert stats.equivalence([0.97], 0.97, 0.01)["holds"] is None


def test_directional_sign_size_and_no_effect():
    assert stats.directional([0.02, 0.03, 0.025], 0.001)["holds"] is True
    assert stats.directional([-0.02, -0.03, -0.025], 0.001)["holds"] is False
    assert stats.directional([0.0001, 0.0002, 0.00015], 0.001)["holds"] is False      # inside +-negligible
    assert stats.directional([0.02, -0.03, 0.025], 0.001)["holds"] is None
    d = [0.02, 0.03, 0.025]
    low, high = sps.t.interval(0.95, df=2, loc=np.mean(d), scale=sps.sem(d))
    res = stats.directional(d, 0.001)["difference"]
    assert (res["low"], res["high"]) == (pytest.approx(low), pytest.approx(high))


def test_mann_whitney_greater_matches_scipy():
    x, y = [0.3, 0.4, 0.35, 0.5], [0.1, 0.2, 0.15]
    assert stats.mann_whitney_greater(x, y)["p_value"] == pytest.approx(
        sps.mannwhitneyu(x, y, alternative="greater").pvalue)
    assert stats.mann_whitney_greater([], y)["p_value"] is None
