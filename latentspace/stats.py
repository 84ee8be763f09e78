"""The one statistics module: spreads and intervals over seeds or launches, and the tests of the reproduction
verdicts, as thin wrappers of scipy.stats that return plain dicts.

- `spread`, `t_interval`: mean, sample std (None for one value), Student-t interval, min, max, the values.
- `equivalence` (TOST): are the measured values equal to a published one within +-margin? Two one-sided t-tests
  at level alpha, i.e. the (1 - 2 alpha) interval of (measured - published) inside the margin band.
- `directional`: is a paired difference above 0, and more than negligible?
- `paired_comparison` (paired t, Wilcoxon signed-rank, sign test), `mcnemar_exact`, `mann_whitney_greater`.

Each test returns its decision as `holds`: True (the claim holds), False (it fails), None (the data cannot
tell). A p-value or bound that a test cannot give (too few values, no differences at all) is None, never NaN, so
the results go to JSON as they are.
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
    """{"n", "mean", "std", "low", "high"} of the mean of `values` (std: sample, ddof 1; None for one value)."""
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


def spread(values: Sequence[float], confidence: float = 0.95) -> dict:
    """The one spread of the project: t_interval plus min, max and the values themselves."""
    vals = [float(v) for v in values]
    return {**t_interval(vals, confidence), "min": min(vals) if vals else None, "max": max(vals) if vals else None,
            "values": vals}


def equivalence(values: Sequence[float], reference: float, margin: float, alpha: float = 0.05) -> dict:
    """TOST of mean(values) = reference within +-margin.

    holds: True when both one-sided tests reject at `alpha` (the 1 - 2 alpha interval of mean - reference lies
    inside (-margin, margin)); False when that interval lies entirely outside [-margin, margin]; else None.
    """
    d = [float(v) - float(reference) for v in values]
    iv = t_interval(d, 1 - 2 * alpha)
    out = {"difference": iv, "margin": margin, "alpha": alpha, "p_lower": None, "p_upper": None, "holds": None}
    if iv["low"] is None:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lower = stats.ttest_1samp(d, -margin, alternative="greater")
        upper = stats.ttest_1samp(d, margin, alternative="less")
    out["p_lower"], out["p_upper"] = _finite(lower.pvalue), _finite(upper.pvalue)
    if iv["std"] == 0:      # every seed gave the same value: the interval is that point
        out["holds"] = abs(iv["mean"]) < margin if abs(iv["mean"]) != margin else None
        return out
    if -margin < iv["low"] and iv["high"] < margin:
        out["holds"] = True
    elif iv["low"] > margin or iv["high"] < -margin:
        out["holds"] = False
    return out


def directional(differences: Sequence[float], negligible: float, confidence: float = 0.95) -> dict:
    """Is the mean paired difference positive, and more than negligible?

    holds: False when the interval lies inside (-negligible, negligible) (no effect) or below 0; True when it
    lies above 0; else None (the interval contains 0)."""
    iv = t_interval(differences, confidence)
    out = {"difference": iv, "negligible": negligible, "confidence": confidence, "holds": None}
    if iv["low"] is None:
        return out
    if -negligible < iv["low"] and iv["high"] < negligible:
        out["holds"] = False
    elif iv["low"] > 0:
        out["holds"] = True
    elif iv["high"] < 0:
        out["holds"] = False
    return out


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


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> dict:
    """One-sided Mann-Whitney U test of x tending to exceed y (None without values on both sides)."""
    if not len(x) or not len(y):
        return {"statistic": None, "p_value": None}
    res = stats.mannwhitneyu(np.asarray(x, float), np.asarray(y, float), alternative="greater")
    return {"statistic": _finite(res.statistic), "p_value": _finite(res.pvalue)}
