"""The one reader of each metrics file the studies write, for the verdicts, the report, the sweep and the docs.

Every reader takes the project root and returns plain data, or None when the file is missing or unreadable (an
unreadable file adds a line to `notes` when one is given), so a study that has not run never stops a reader.
Readers tolerate the older metrics of the committed run where a field is missing: a run record without
`stopping` has convergence None (unknown), unless its `hit_cap` says it stopped at its cap.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from latentspace import paths
from latentspace.constants import CIFAR10_CLASSES, CLASS_PAIRS, STUDY_C_CELLS, STUDY_C_REGIMES

SEGMENTATION_DIR = paths.SEGMENTATION_METRICS
LATENT_DIR = paths.LATENT_METRICS
EDA_SUMMARY = paths.EDA_SUMMARY
EDA_SAMPLE = paths.rectangles_record("{sample}")
STUDY_B_SUMMARY = paths.STUDY_B_SUMMARY
STUDY_B_SIZES_DIR = f"{paths.STUDY_B_METRICS}/sizes"
STUDY_C_CELL = paths.study_c_record("{cell}")
STUDY_C_PREDICTIONS = paths.study_c_predictions("{cell}")


def read(root: str | Path, rel: str, notes: list[str] | None = None) -> dict | None:
    """A metrics JSON mapping, or None when it is missing or not a valid JSON mapping."""
    try:
        data = json.loads((Path(root) / rel).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, IsADirectoryError):
        if notes is not None:
            notes.append(f"`{rel}` is not valid JSON; what needs it counts as not run")
        return None
    return data if isinstance(data, dict) else None


def stopping(run: dict | None) -> dict:
    """How one training run stopped: {"converged": True/False/None, "hit_cap", "epochs_run", "max_epochs",
    "epoch_kept", "phases"}; converged None when the record cannot tell (older metrics without `stopping`)."""
    run = run or {}
    s = run.get("stopping")
    if isinstance(s, dict):
        return {"converged": s.get("converged"), "hit_cap": s.get("hit_cap"), "epochs_run": s.get("epochs_run"),
                "max_epochs": s.get("max_epochs"), "epoch_kept": s.get("epoch_kept"), "phases": s.get("phases")}
    hit = run.get("hit_cap")
    return {"converged": False if hit is True else None, "hit_cap": hit, "epochs_run": run.get("epochs_run"),
            "max_epochs": run.get("max_epochs"), "epoch_kept": run.get("epoch_kept", run.get("best_epoch")),
            "phases": None}


# --- Study A ----------------------------------------------------------------------------------------------

def segmentation_records(root: str | Path, notes: list[str] | None = None) -> dict[str, dict]:
    """{"<net>-<loss>": record} of every trained segmentation net (the colour baseline left out)."""
    found = {}
    for p in sorted((Path(root) / SEGMENTATION_DIR).glob("*-*.json")):
        rec = read(root, f"{SEGMENTATION_DIR}/{p.name}", notes)
        if rec is not None:
            found[p.stem] = rec
    return found


def segmentation(root: str | Path, net: str, loss: str, notes: list[str] | None = None) -> dict | None:
    return read(root, f"{SEGMENTATION_DIR}/{net}-{loss}.json", notes)


def baseline(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, f"{SEGMENTATION_DIR}/baseline.json", notes)


def launches(rec: dict) -> list[dict]:
    """The per-launch records of a segmentation file (a record without launches: itself, as launch 1)."""
    per = rec.get("per_launch")
    return list(per) if isinstance(per, list) and per else [{"launch": 1, **rec}]


def mean_iou(rec: dict) -> float | None:
    """Test mean IoU, mean over launches (a record without launches: its single value)."""
    summary = (rec.get("summary") or {}).get("mean_iou")
    if isinstance(summary, dict) and summary.get("mean") is not None:
        return summary["mean"]
    return rec.get("mean_iou")


def latent(root: str | Path, net: str, loss: str, notes: list[str] | None = None) -> dict | None:
    return read(root, f"{LATENT_DIR}/{net}-{loss}.json", notes)


def pair_separability(rec: dict, probe_set: str, reducer: str) -> dict | None:
    """{"layer", "pairs": {"1-2": [accuracy per launch], ...}, "launches": [launch numbers]} of the claims'
    layer, or None without separability."""
    sep = rec.get("separability") or {}
    layer = rec.get("primary_layer") or next(iter(sep), None)
    block = ((sep.get(layer) or {}).get(probe_set) or {}).get(reducer) or {}
    pairs = block.get("pairs")
    if not pairs or any(p not in pairs for p in CLASS_PAIRS):
        return None
    values = {p: [float(v) for v in pairs[p]] for p in CLASS_PAIRS}
    n = len(values[CLASS_PAIRS[0]])
    return {"layer": layer, "pairs": values, "launches": [int(k) for k in block.get("launches") or range(1, n + 1)]}


def eda_summary(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, EDA_SUMMARY, notes)


def eda_sample(root: str | Path, sample: str, notes: list[str] | None = None) -> dict | None:
    """How one rectangle sample was generated (n, image_size, delta, contained, ...)."""
    return read(root, EDA_SAMPLE.format(sample=sample), notes)


# --- Study B ----------------------------------------------------------------------------------------------

def study_b_summary(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, STUDY_B_SUMMARY, notes)


def study_b_runs(root: str | Path, notes: list[str] | None = None) -> dict[int, dict[int, dict]]:
    """{hidden: {seed: {"ae": record or None, "probe": record or None}}} from metrics/study_b/sizes/."""
    out: dict[int, dict[int, dict]] = {}
    for p in sorted((Path(root) / STUDY_B_SIZES_DIR).glob("*.json")):
        kind = p.stem.split("-")[0]
        rec = read(root, f"{STUDY_B_SIZES_DIR}/{p.name}", notes)
        if kind not in ("ae", "probe") or rec is None or "hidden" not in rec or "seed" not in rec:
            continue
        out.setdefault(int(rec["hidden"]), {}).setdefault(int(rec["seed"]), {"ae": None, "probe": None})[kind] = rec
    return {h: dict(sorted(seeds.items())) for h, seeds in sorted(out.items())}


def confusion(probe: dict | None) -> np.ndarray | None:
    """The probe's test confusion matrix (rows true class, columns predicted), or None."""
    m = (probe or {}).get("confusion")
    if not isinstance(m, list) or len(m) != len(CIFAR10_CLASSES):
        return None
    return np.asarray(m, dtype=float)


def per_class(probe: dict | None, what: str) -> list[float] | None:
    """Per-class `recall` or `precision` of a probe, in CIFAR10_CLASSES order: the record's list, else its
    per_class block, else computed from its confusion matrix."""
    probe = probe or {}
    if isinstance(probe.get(what), list) and len(probe[what]) == len(CIFAR10_CLASSES):
        return [float(v) for v in probe[what]]
    block = probe.get("per_class")
    if isinstance(block, dict) and all(isinstance(block.get(c), dict) and what in block[c] for c in CIFAR10_CLASSES):
        return [float(block[c][what]) for c in CIFAR10_CLASSES]
    m = confusion(probe)
    if m is None:
        return None
    axis = 1 if what == "recall" else 0
    totals = m.sum(axis=axis)
    return [float(m[i, i] / t) if t else 0.0 for i, t in enumerate(totals)]


# --- Study C ----------------------------------------------------------------------------------------------

def study_c_cells(root: str | Path, notes: list[str] | None = None) -> dict[str, dict]:
    """{cell: record} of the Study C cells that have run."""
    found = {cell: read(root, STUDY_C_CELL.format(cell=cell), notes) for cell in STUDY_C_CELLS}
    return {k: v for k, v in found.items() if v}


def runs_by_seed(rec: dict, regime: str) -> dict[int, dict]:
    """{seed: run record} of one regime (or "autoencoder") of a cell."""
    out = {}
    for r in rec.get("per_seed") or []:
        run = r.get(regime)
        if "seed" in r and isinstance(run, dict):
            out[int(r["seed"])] = run
    return out


def by_seed(rec: dict, regime: str, metric: str = "test_accuracy") -> dict[int, float]:
    """{seed: value} of one regime: the per-seed records where there are, else the summary's values in seed order."""
    out = {s: float(run[metric]) for s, run in runs_by_seed(rec, regime).items()
           if isinstance(run.get(metric), (int, float))}
    if out:
        return out
    vals = ((rec.get(regime) or {}).get(metric) or {}).get("values") or []
    return {int(s): float(v) for s, v in zip(rec.get("seeds") or range(len(vals)), vals)}


def study_c_predictions(root: str | Path, cell: str, notes: list[str] | None = None) -> dict | None:
    """The test predictions of one cell (y_test, seeds, one (S, N) array per regime), or None."""
    rel = STUDY_C_PREDICTIONS.format(cell=cell)
    path = Path(root) / rel
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return {k: np.asarray(z[k]) for k in ("y_test", "seeds", *STUDY_C_REGIMES)}
    except (OSError, KeyError, ValueError) as e:
        if notes is not None:
            notes.append(f"`{rel}` could not be read ({type(e).__name__}); no McNemar test for {cell}")
        return None


def study_c_values(rec: dict, regime: str, metric: str = "test_accuracy") -> list[float]:
    """The per-seed values of one regime in seed order (for figures and tables)."""
    return list(by_seed(rec, regime, metric).values())


def as_number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
