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
from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.constants import CIFAR10_CLASSES, CLASS_PAIRS, STUDY_C_CELLS, STUDY_C_REGIMES


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


def by_name(root: str | Path, pattern: str, notes: list[str] | None = None) -> dict[str, dict]:
    """{file stem: mapping} of every readable metrics file matching `pattern` (a paths.py function given "*"),
    in name order."""
    found = {}
    for p in sorted(Path(root).glob(pattern)):
        rec = read(root, p.relative_to(root).as_posix(), notes)
        if rec is not None:
            found[p.stem] = rec
    return found


def dataset_record(root: str | Path, name: str, notes: list[str] | None = None) -> dict | None:
    """How a dataset (mnist, cifar10) was obtained and split."""
    return read(root, paths.dataset_record(name), notes)


def stage_times(root: str | Path) -> dict[str, dict]:
    """{stage instance: timing record} from every timing file the stage runner wrote (those with seconds)."""
    times = {}
    for stem, rec in by_name(root, paths.timing("*")).items():
        seconds = rec.get("seconds")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            times[str(rec.get("stage") or stem)] = {**rec, "seconds": float(seconds)}
    return times


def dvc_lock(root: str | Path) -> dict:
    """dvc.lock as a mapping ({} when it is missing or not valid YAML: before the first run)."""
    try:
        lock = read_yaml(Path(root) / "dvc.lock")
    except UserError:
        return {}
    return lock if isinstance(lock, dict) else {}


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

def rectangle_samples(root: str | Path, notes: list[str] | None = None) -> dict[str, dict]:
    """{sample: how it was generated (n, image_size, delta, contained, seed, ...)} of every rectangle sample."""
    return by_name(root, paths.rectangles_record("*"), notes)


def eda_sample(root: str | Path, sample: str, notes: list[str] | None = None) -> dict | None:
    """How one rectangle sample was generated."""
    return read(root, paths.rectangles_record(sample), notes)


def eda_summary(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, paths.EDA_SUMMARY, notes)


def image_sets(root: str | Path, notes: list[str] | None = None) -> dict | None:
    """The record of the single-rectangle image sets the latent analysis reads (`image_sets`: per set)."""
    return read(root, paths.IMAGE_SETS_RECORD, notes)


def segmentation_records(root: str | Path, notes: list[str] | None = None) -> dict[str, dict]:
    """{"<net>-<loss>": record} of every trained segmentation net (the colour baseline left out)."""
    return by_name(root, paths.segmentation_record("*-*"), notes)


def segmentation(root: str | Path, net: str, loss: str, notes: list[str] | None = None) -> dict | None:
    return read(root, paths.segmentation_record(f"{net}-{loss}"), notes)


def baseline(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, paths.BASELINE_RECORD, notes)


def launches(rec: dict) -> list[dict]:
    """The per-launch records of a segmentation file (a record without launches: itself, as launch 1)."""
    per = rec.get("per_launch")
    return list(per) if isinstance(per, list) and per else [{"launch": 1, **rec}]


def mean_iou(rec: dict) -> float | None:
    """Test mean IoU, mean over launches (a record without launches: its single value)."""
    return mean_iou_range(rec)[0]


def mean_iou_range(rec: dict | None) -> tuple[float | None, float | None, float | None]:
    """(mean, min, max) of the test mean IoU over launches (a record without launches: its single value)."""
    if not rec:
        return None, None, None
    summary = (rec.get("summary") or {}).get("mean_iou")
    if isinstance(summary, dict) and summary.get("mean") is not None:
        return summary["mean"], summary.get("min"), summary.get("max")
    value = rec.get("mean_iou")
    return value, value, value


def training_runs(records: dict[str, dict]) -> dict[str, list[dict]]:
    """{net: [run]}: every training run of each net in the order it trained, the steps of its chain first (the
    chained protocol: one model through the losses of `segmentation.chain`, launch after launch), then the runs
    from fresh weights. run: {"loss", "launch", "step" (None: fresh weights), "started_from" (None: fresh
    weights), "mean_iou", "stopping" (as `stopping` gives it)}."""
    out: dict[str, list[dict]] = {}
    for name, rec in records.items():
        out.setdefault(rec.get("net") or name.split("-", 1)[0], []).extend(
            {"loss": rec.get("loss"), "launch": r.get("launch"), "step": r.get("step"),
             "started_from": r.get("started_from"), "mean_iou": r.get("mean_iou"), "stopping": stopping(r)}
            for r in launches(rec))
    # A chain step whose own loss's record is missing is still listed, from the chain another loss's record holds.
    for name, rec in records.items():
        runs = out[rec.get("net") or name.split("-", 1)[0]]
        for c in rec.get("chain") or []:
            if not any(run["step"] == c.get("step") for run in runs):
                runs.append({"loss": c.get("loss"), "launch": c.get("launch"), "step": c.get("step"),
                             "started_from": None, "mean_iou": c.get("mean_iou"),
                             "stopping": {**stopping(None), "converged": c.get("converged")}})
    return {net: sorted(runs, key=lambda r: (r["step"] is None, r["step"] or 0, str(r["loss"]), r["launch"] or 0))
            for net, runs in out.items()}


def protocols(records: dict[str, dict]) -> list[str]:
    """The segmentation protocols (chained, independent) the records were trained under, in name order."""
    return sorted({str(rec["protocol"]) for rec in records.values() if rec.get("protocol")})


def latent(root: str | Path, net: str, loss: str, notes: list[str] | None = None) -> dict | None:
    return read(root, paths.latent_record(f"{net}-{loss}"), notes)


def latent_records(root: str | Path, notes: list[str] | None = None) -> dict[str, dict]:
    """{"<net>-<loss>": latent analysis} of every analysed net."""
    return by_name(root, paths.latent_record("*"), notes)


def pair_separability(rec: dict, image_set: str, reducer: str) -> dict | None:
    """{"layer", "pairs": {"1-2": [accuracy per launch], ...}, "launches": [launch numbers]} of the claims'
    layer, or None without separability."""
    sep = rec.get("separability") or {}
    layer = rec.get("primary_layer") or next(iter(sep), None)
    block = ((sep.get(layer) or {}).get(image_set) or {}).get(reducer) or {}
    pairs = block.get("pairs")
    if not pairs or any(p not in pairs for p in CLASS_PAIRS):
        return None
    values = {p: [float(v) for v in pairs[p]] for p in CLASS_PAIRS}
    n = len(values[CLASS_PAIRS[0]])
    return {"layer": layer, "pairs": values, "launches": [int(k) for k in block.get("launches") or range(1, n + 1)]}


# --- Study B ----------------------------------------------------------------------------------------------

def study_b_summary(root: str | Path, notes: list[str] | None = None) -> dict | None:
    return read(root, paths.STUDY_B_SUMMARY, notes)


def study_b_probe(root: str | Path, tag: str, notes: list[str] | None = None) -> dict | None:
    """The record of one linear probe (tag: the latent size, with -s<k> for an extra seed)."""
    return read(root, paths.study_b_probe_record(tag), notes)


def study_b_runs(root: str | Path, notes: list[str] | None = None) -> dict[int, dict[int, dict]]:
    """{hidden: {seed: {"ae": record or None, "probe": record or None}}} from the autoencoder and probe records."""
    out: dict[int, dict[int, dict]] = {}
    for kind, pattern in (("ae", paths.study_b_ae_record("*")), ("probe", paths.study_b_probe_record("*"))):
        for rec in by_name(root, pattern, notes).values():
            if "hidden" in rec and "seed" in rec:
                seeds = out.setdefault(int(rec["hidden"]), {})
                seeds.setdefault(int(rec["seed"]), {"ae": None, "probe": None})[kind] = rec
    return {h: dict(sorted(seeds.items())) for h, seeds in sorted(out.items())}


def study_b_stopping(runs: dict[int, dict[int, dict]], part: str) -> list[dict]:
    """How every run of one family ("ae" or "probe") stopped, over sizes and seeds (see `stopping`)."""
    return [stopping(r[part]) for seeds in runs.values() for r in seeds.values() if r.get(part)]


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
    found = {cell: read(root, paths.study_c_record(cell), notes) for cell in STUDY_C_CELLS}
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
    rel = paths.study_c_predictions(cell)
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


# --- verdicts -------------------------------------------------------------------------------------------------

def verdicts(root: str | Path, notes: list[str] | None = None) -> dict | None:
    """Every check with its verdict, rule, preconditions and tests."""
    return read(root, paths.VERDICTS, notes)


def headline(root: str | Path, study: str, notes: list[str] | None = None) -> dict | None:
    """The headline metrics of one study (study_a, study_b, study_c) or of the verdicts."""
    return read(root, paths.headline(study), notes)


def convergence(runs: list[dict]) -> dict[str, int]:
    """How many runs (each as `stopping` gives it) converged (patience ended every phase), hit their epoch cap,
    or cannot tell (older records)."""
    flags = [r.get("converged") for r in runs]
    return {"runs": len(flags), "converged": sum(f is True for f in flags), "hit_cap": sum(f is False for f in flags),
            "unknown": sum(f is None for f in flags)}


def as_number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
