"""Headline metrics: the few numbers per study that `dvc metrics diff` and `dvc exp show` compare between runs.

Four small flat files under metrics/headline/ (the only files dvc.yaml declares under `metrics:`), with key
names that read as table columns:
- study_a.json: `<net>_<loss>_test_miou` (test mean IoU, mean over launches), `baseline_test_miou` (the colour
  baseline), `<net>_<loss>_min_pair_sep` (the smallest held-out pair separability in the claims' 2-D embedding,
  mean over launches: the figure the cluster claims turn on);
- study_b.json: `h<size>_probe_acc`, `h<size>_test_mse` (means over seeds);
- study_c.json: `<arch>_<augment>_<regime>_acc` and `..._acc_std` (mean and sample std over seeds);
- verdicts.json: how many claims got each verdict.
A study that has not run gives an empty file, so a run that adds it shows as added keys, not as an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from latentspace.constants import STUDY_C_REGIMES
from latentspace.verdicts_ab import pair_separability
from latentspace.verdicts_base import VERDICTS, Context
from latentspace.verdicts_c import by_seed, cells

HEADLINE_DIR = "metrics/headline"


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def _mean_iou(rec: dict) -> float | None:
    """Test mean IoU, mean over launches (a record without launches: its single value)."""
    summary = (rec.get("summary") or {}).get("mean_iou")
    if isinstance(summary, dict) and summary.get("mean") is not None:
        return summary["mean"]
    return rec.get("mean_iou")


def study_a(ctx: Context, separability_claim: dict | None) -> dict:
    out: dict[str, float | None] = {}
    seg = ctx.root / "metrics/segmentation"
    for p in sorted(seg.glob("*.json")):
        rec = ctx.metrics(p.relative_to(ctx.root).as_posix()) or {}
        if p.stem == "baseline":
            out["baseline_test_miou"] = _r(_mean_iou(rec))
        elif "-" in p.stem:
            out[f"{p.stem.replace('-', '_')}_test_miou"] = _r(_mean_iou(rec))
    if separability_claim is not None:
        for p in sorted((ctx.root / "metrics/latent").glob("*-*.json")):
            found = pair_separability(ctx.metrics(p.relative_to(ctx.root).as_posix()) or {},
                                      separability_claim["probe_set"], separability_claim["reducer"])
            if found:
                out[f"{p.stem.replace('-', '_')}_min_pair_sep"] = _r(min(np.mean(v) for v in found[1].values()))
    return out


def study_b(ctx: Context) -> dict:
    rec = ctx.metrics("metrics/study_b/summary.json") or {}
    out = {}
    for h, r in sorted((rec.get("by_hidden") or {}).items(), key=lambda kv: int(kv[0])):
        out[f"h{h}_probe_acc"] = _r(r.get("probe_test_accuracy"))
        out[f"h{h}_test_mse"] = _r(r.get("test_mse"), 6)
    return out


def study_c(ctx: Context) -> dict:
    out = {}
    for cell, rec in cells(ctx).items():
        for regime in STUDY_C_REGIMES:
            vals = list(by_seed(rec, regime).values())
            key = f"{cell.replace('-', '_')}_{regime}_acc"
            out[key] = _r(np.mean(vals)) if vals else None
            out[f"{key}_std"] = _r(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return out


def verdict_counts(verdicts: dict) -> dict:
    counts = verdicts["counts"]
    return {"claims": sum(counts.values()), **{v.replace(" ", "_").replace("_at_this_scale", ""): counts[v]
                                               for v in VERDICTS}}


def headline(ctx: Context, verdicts: dict) -> dict[str, dict]:
    """{file name: content} of the four headline files."""
    sep = next((c for c in ctx.refs["claims"] if c["id"] == "a-nn1-clean-clusters"), None)
    return {"study_a.json": study_a(ctx, sep), "study_b.json": study_b(ctx), "study_c.json": study_c(ctx),
            "verdicts.json": verdict_counts(verdicts)}


def headline_paths(root: Path) -> dict[str, Path]:
    return {name: Path(root) / HEADLINE_DIR / name for name in ("study_a.json", "study_b.json", "study_c.json",
                                                                "verdicts.json")}
