"""Headline metrics: the few numbers per study that `dvc metrics diff` and `dvc exp show` compare between runs.

Four small flat files under metrics/headline/ (the only files dvc.yaml declares under `metrics:`), with key
names that read as table columns:
- study_a.json: `<net>_<loss>_test_miou` (test mean IoU, mean over launches), `baseline_test_miou` (the colour
  baseline), `<net>_<loss>_min_pair_sep` (the smallest held-out pair separability in the claims' 2-D embedding,
  mean over launches: the figure the cluster claims turn on);
- study_b.json: `h<size>_probe_acc`, `h<size>_test_mse` (means over seeds);
- study_c.json: `<arch>_<augment>_<regime>_acc` and `..._acc_std` (mean and sample std over seeds);
- verdicts.json: how many checks got each verdict, and how many of each kind (stated, derived, extension)
  were reproduced.
A study that has not run gives an empty file, so a run that adds it shows as added keys, not as an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from latentspace import paths
from latentspace import results
from latentspace.constants import STUDY_C_REGIMES
from latentspace.verdicts.base import VERDICTS, Context

HEADLINE_DIR = paths.HEADLINE_DIR


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def study_a(ctx: Context, figures_claim: dict | None) -> dict:
    out: dict[str, float | None] = {}
    base = results.baseline(ctx.root, ctx.notes)
    if base is not None:
        out["baseline_test_miou"] = _r(results.mean_iou(base))
    for name, rec in results.segmentation_records(ctx.root, ctx.notes).items():
        out[f"{name.replace('-', '_')}_test_miou"] = _r(results.mean_iou(rec))
    if figures_claim is not None:
        for name in results.segmentation_records(ctx.root):
            net, loss = name.split("-", 1)
            found = results.pair_separability(results.latent(ctx.root, net, loss) or {},
                                              figures_claim["image_set"], figures_claim["reducer"])
            if found:
                out[f"{name.replace('-', '_')}_min_pair_sep"] = _r(min(np.mean(v) for v in found["pairs"].values()))
    return out


def study_b(ctx: Context) -> dict:
    rec = results.study_b_summary(ctx.root, ctx.notes) or {}
    out = {}
    for h, r in sorted((rec.get("by_hidden") or {}).items(), key=lambda kv: int(kv[0])):
        out[f"h{h}_probe_acc"] = _r(r.get("probe_test_accuracy"))
        out[f"h{h}_test_mse"] = _r(r.get("test_mse"), 6)
    return out


def study_c(ctx: Context) -> dict:
    out = {}
    for cell, rec in results.study_c_cells(ctx.root, ctx.notes).items():
        for regime in STUDY_C_REGIMES:
            vals = results.study_c_values(rec, regime)
            key = f"{cell.replace('-', '_')}_{regime}_acc"
            out[key] = _r(np.mean(vals)) if vals else None
            out[f"{key}_std"] = _r(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return out


def verdict_counts(verdicts: dict) -> dict:
    counts = verdicts["counts"]
    by_kind = verdicts.get("counts_by_kind") or {}
    return {"claims": sum(counts.values()), **{v.replace(" ", "_"): counts[v] for v in VERDICTS},
            **{f"{kind}_reproduced": c.get(VERDICTS[0], 0) for kind, c in by_kind.items()}}


def headline(ctx: Context, verdicts: dict) -> dict[str, dict]:
    """{file name: content} of the four headline files."""
    sep = next((c for c in ctx.refs["claims"] if c["id"] == "a-latent-figures"), None)
    return {"study_a.json": study_a(ctx, sep), "study_b.json": study_b(ctx), "study_c.json": study_c(ctx),
            "verdicts.json": verdict_counts(verdicts)}


def headline_paths(root: Path) -> dict[str, Path]:
    return {name: Path(root) / HEADLINE_DIR / name for name in ("study_a.json", "study_b.json", "study_c.json",
                                                                "verdicts.json")}
