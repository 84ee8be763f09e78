"""The statistics the reproduction verdicts use, as thin wrappers of scipy.stats that return plain dicts.

- `t_interval`: mean, sample standard deviation and the Student-t confidence interval of a mean over seeds or
  launches (none from a single value).
- `paired_comparison`: two measurements paired by seed (a - b): the mean difference and its t interval, the
  paired t-test, the Wilcoxon signed-rank test and the sign test (exact binomial), all two-sided.
- `mcnemar_exact`: McNemar's test of two classifiers on the same test images: the exact binomial test on the
  images that exactly one of them gets right (no normal approximation, no continuity correction).

A p-value or bound that a test cannot give (too few values, no differences at all) is None, never NaN, so the
results go to JSON as they are.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict:
    """{"n", "mean", "std", "low", "high"} of the mean of `values` (std: sample, ddof 1)."""
    x = np.asarray([float(v) for v in values], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "low": None, "high": None}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "low": None, "high": None}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def sign_test(differences: Sequence[float]) -> dict:
    """Two-sided exact sign test of the median difference being 0; zero differences are dropped."""
    d = np.asarray(differences, dtype=float)
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    p = stats.binomtest(pos, pos + neg, 0.5).pvalue if pos + neg else None
    return {"positive": pos, "negative": neg, "p_value": _finite(p)}


def wilcoxon_signed_rank(differences: Sequence[float]) -> dict:
    """Two-sided Wilcoxon signed-rank test of the differences being symmetric about 0 (zeros dropped; the exact
    distribution where scipy uses it, i.e. small samples without ties)."""
    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return {"statistic": None, "p_value": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return {"statistic": _finite(res.statistic), "p_value": _finite(res.pvalue)}


def paired_t(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided paired t-test of mean(a - b) = 0."""
    if len(a) < 2:
        return {"statistic": None, "p_value": None, "df": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.ttest_rel(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return {"statistic": _finite(res.statistic), "p_value": _finite(res.pvalue), "df": len(a) - 1}


def paired_comparison(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """a and b paired element by element (the same seed): the difference a - b, its interval and three tests."""
    if len(a) != len(b):
        raise ValueError(f"paired samples of different lengths: {len(a)} and {len(b)}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    return {"differences": d, "mean_difference": t_interval(d, confidence),
            "paired_t": paired_t(a, b), "wilcoxon": wilcoxon_signed_rank(d), "sign_test": sign_test(d)}


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test from per-image correctness of two classifiers on the same images.

    only_a: images only classifier a gets right; only_b: only b. Under the null both are equally likely among the
    discordant images, so only_a ~ Binomial(only_a + only_b, 1/2); the p-value is the two-sided binomial one.
    """
    ca, cb = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape:
        raise ValueError(f"correctness arrays of different shapes: {ca.shape} and {cb.shape}")
    only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
    n = only_a + only_b
    p = stats.binomtest(only_a, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": _finite(p)}
