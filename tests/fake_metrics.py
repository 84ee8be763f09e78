"""Fabricated metrics in the formats of the metrics contract (never the real pipeline), for the tests of the
verdicts and of the report. Published values are never typed in here: tests derive what they fabricate from
references.yaml."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ("1-2", "1-3", "2-3")
CELLS = ("fc-none", "fc-erasing", "conv-none", "conv-erasing")
REGIMES = ("frozen", "fine_tuned", "scratch")


def references() -> dict:
    return yaml.safe_load((ROOT / "references.yaml").read_text())


def put_json(root: Path, rel: str, data) -> None:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))


def tiny_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, written with the standard library only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def put_png(root: Path, rel: str, rgb=(47, 93, 138)) -> None:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(tiny_png(60, 30, rgb))


def stopping(converged: bool = True, epochs: int = 5, cap: int = 20) -> dict:
    """A run's `stopping` record of the metrics contract."""
    run = epochs if converged else cap
    return {"epoch_kept": max(1, run - 3) if converged else run, "epochs_run": run, "max_epochs": cap,
            "converged": converged, "hit_cap": not converged,
            "phases": [{"epochs_run": run, "max_epochs": cap, "stopped_by": "patience" if converged else "cap"}]}


def spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max()), "values": [float(x) for x in v]}


# --- Study A ---------------------------------------------------------------------------------------------

def segmentation(root: Path, models: dict[str, dict], launches: int = 2, converged: bool = True) -> None:
    """models: "<net>-<loss>" -> {"parameters": int, "mean_iou": float}; launch k adds 0.01 * k to the scores
    (mean IoU capped at 0.999)."""
    classes = ("background", "class1", "class2", "class3")
    for name, spec in models.items():
        net, loss = name.split("-")
        per_launch = []
        for k in range(launches):
            m = min(0.999, spec["mean_iou"] + 0.01 * k)
            per_launch.append({
                "launch": k + 1, "seed": 100 + k, "pixel_accuracy": m + 0.05, "mean_iou": m, "mean_dice": m + 0.03,
                "mean_iou_rectangles": m - 0.02, "mean_dice_rectangles": m + 0.01,
                "iou": {c: m + 0.001 * i for i, c in enumerate(classes)},
                "dice": {c: m + 0.03 + 0.001 * i for i, c in enumerate(classes)},
                "confusion_matrix": [[900, 10, 20, 30], [5, 80, 3, 2], [7, 1, 70, 4], [9, 2, 6, 65]],
                "best_epoch": 3 + k, "epochs": 4, "step": None, "started_from": None,
                "stopping": stopping(spec.get("converged", converged))})
        put_json(root, f"metrics/segmentation/{name}.json", {
            "net": net, "loss": loss, "parameters": spec["parameters"], "launches": launches,
            "seeds": [100 + k for k in range(launches)], "per_launch": per_launch,
            "summary": {key: spread([r[key] for r in per_launch])
                        for key in ("pixel_accuracy", "mean_iou", "mean_dice", "mean_iou_rectangles")},
            "train_images": 256, "val_images": 32, "test_images": 64, "delta": 15, "protocol": "independent"})
        put_png(root, f"reports/segmentation/{name}-predictions.png")


def eda(root: Path, background: float = 0.4, class_area: tuple[float, ...] = (0.1, 0.1, 0.1),
        train_contained: bool = True) -> None:
    """metrics/eda/summary.json (two samples, the contained one with these area fractions) and the training
    sample's generation record."""
    def sample(contained: bool, bg: float, areas) -> dict:
        return {"n": 1000, "image_size": 64, "delta": 15, "contained": contained, "background_fraction": bg,
                "classes": {f"class_{k + 1}": {"visible_area_fraction": a, "full_area_fraction": a * 1.2}
                            for k, a in enumerate(areas)}}
    put_json(root, "metrics/eda/summary.json", {"eda_free": sample(False, 0.55, (0.15, 0.15, 0.15)),
                                                "eda_contained": sample(True, background, class_area)})
    put_json(root, "metrics/eda/generate/train.json", {"n": 500, "image_size": 64, "delta": 15, "seed": 1,
                                                       "contained": train_contained})


def baseline(root: Path, mean_iou: float) -> None:
    put_json(root, "metrics/segmentation/baseline.json", {
        "net": "baseline", "loss": None, "parameters": 0, "pixel_accuracy": mean_iou, "mean_iou": mean_iou,
        "mean_dice": mean_iou, "mean_iou_rectangles": mean_iou, "mean_dice_rectangles": mean_iou,
        "iou": {}, "dice": {}, "confusion_matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        "train_images": 0, "val_images": 0, "test_images": 64, "epochs": 0, "best_epoch": 0, "delta": 15})
    put_png(root, "reports/segmentation/baseline-predictions.png")


def latent(root: Path, name: str, pairs: dict[str, list[float]], layer: str = "pool3", image_set: str = "all",
           reducer: str = "umap") -> None:
    """metrics/latent/<name>.json with the contract's separability block (and a minimal compactness block)."""
    net, loss = name.split("-")
    launches = list(range(1, len(next(iter(pairs.values()))) + 1))
    comp = {"f1_fit": {"1": 0.9, "2": 0.8, "3": 0.7}, "f1_heldout": {"1": 0.85, "2": 0.75, "3": 0.65},
            "silhouette": 0.4, "within_between_ratio": 0.6}
    put_json(root, f"metrics/latent/{name}.json", {
        "net": net, "loss": loss, "image_sets": [image_set], "dims": [2], "reducers": [reducer],
        "primary_layer": layer,
        "layers": {layer: {"code_dim": 2048, "image_sets": {image_set: {"raw": comp, reducer: {"2": comp}}}}},
        "separability": {layer: {image_set: {reducer: {"pairs": pairs, "launches": launches}}}},
        "separability_method": "kNN per pair of classes in the 2-D embedding"})
    put_png(root, f"reports/latent/{name}/scatter-{layer}.png")


# --- Study B ---------------------------------------------------------------------------------------------

def study_b(root: Path, accuracy: dict[int, list[float]], mse: dict[int, list[float]], data: dict | None = None,
            converged: bool = True, confusion: dict[int, list] | None = None, profile_shift: float = 0.05) -> None:
    """summary.json, the autoencoder records (metrics/study_b/autoencoders/) and the probe records
    (metrics/study_b/sizes/) of every size (seed k of a size: `-s<k>`).
    confusion: hidden -> 10 x 10 test matrix (default: the published 256 matrix, or 512's at 512); the precision
    profile of size number i is a base profile with class i raised by profile_shift (seeds add a trace)."""
    by_hidden = {}
    base = np.linspace(0.2, 0.5, 10)
    for i, h in enumerate(accuracy):
        by_hidden[str(h)] = {"test_mse": float(np.mean(mse[h])), "test_mse_values": mse[h],
                             "probe_test_accuracy": float(np.mean(accuracy[h])),
                             "probe_test_accuracy_values": accuracy[h],
                             "probe_train_accuracy": float(np.mean(accuracy[h])) + 0.02,
                             "probe_test_macro_f1": float(np.mean(accuracy[h])) - 0.01,
                             "seeds": list(range(len(accuracy[h])))}
        published = references()["facts"]["study_b_confusion"]["values"]
        matrix = np.asarray((confusion or {}).get(h) or published.get(h) or published[256])
        for s, (acc, err) in enumerate(zip(accuracy[h], mse[h])):
            tag = f"{h}" + (f"-s{s}" if s else "")
            stop = stopping(converged)
            put_json(root, f"metrics/study_b/autoencoders/ae-{tag}.json", {
                "hidden": h, "seed": s, "test_mse": err, "train_images": 3000, "val_images": 500,
                **{k: stop[k] for k in ("epoch_kept", "epochs_run", "max_epochs", "hit_cap")}, "stopping": stop})
            precision = base + profile_shift * (np.arange(10) == i % 10) + 0.001 * s * np.sin(np.arange(10) + s)
            put_json(root, f"metrics/study_b/sizes/probe-{tag}.json", {
                "hidden": h, "seed": s, "test_accuracy": acc, "stopping": stopping(converged),
                "confusion": matrix.tolist(), "precision": precision.tolist(),
                "recall": (np.diag(matrix) / matrix.sum(axis=1)).tolist()})
        put_png(root, f"reports/study_b/probe-{h}-confusion.png")
        put_png(root, f"reports/study_b/ae-{h}-reconstructions.png")
    put_json(root, "metrics/study_b/summary.json", {
        "by_hidden": by_hidden,
        "data": data or {"source": "offline copy", "jpeg_decoded": False, "jpeg_roundtrip_drop": None}})
    put_png(root, "reports/study_b/summary.png")


# --- Study C ---------------------------------------------------------------------------------------------

def study_c(root: Path, accuracy: dict[str, dict[str, list[float]]], epochs: int = 5, converged: bool = True,
            caps: dict[str, int] | None = None) -> None:
    """accuracy: cell -> regime -> per-seed test accuracy (seeds 0, 1, ...). The report's per-run fields: the kept
    epoch of seed s is epochs - s (seed 0 hits the cap). The verdicts' `stopping` records: every run converged
    unless `converged` is False (every run at its cap); caps: epoch cap per regime (and "autoencoder"), 20 by
    default."""
    caps = {"autoencoder": 20, **{r: 20 for r in REGIMES}, **(caps or {})}
    for cell, by_regime in accuracy.items():
        arch, augment = cell.split("-")
        n = len(next(iter(by_regime.values())))
        per_seed = [{"seed": s, **{r: {"test_accuracy": by_regime[r][s], "test_macro_f1": by_regime[r][s] - 0.001,
                                       "epoch_kept": max(1, epochs - s), "hit_cap": s == 0, "max_epochs": epochs,
                                       "stopping": stopping(converged, epochs, caps[r])} for r in REGIMES},
                     "autoencoder": {"test_mse": 0.02, "epoch_kept": 2, "hit_cap": True, "max_epochs": 2,
                                     "stopping": stopping(converged, epochs, caps["autoencoder"])}}
                    for s in range(n)]
        put_json(root, f"metrics/study_c/{cell}.json", {
            "arch": arch, "augment": augment, "seeds": list(range(n)),
            **{r: {"test_accuracy": spread(by_regime[r]), "test_macro_f1": spread([v - 0.001 for v in by_regime[r]])}
               for r in REGIMES},
            "autoencoder": {"test_mse": spread([0.02] * n)}, "per_seed": per_seed,
            "epochs": {"autoencoder": 1, "frozen": 3, "fine_tuned": epochs, "scratch": epochs},
            "train_images": 50000, "val_images": 10000, "test_images": 10000})
        put_png(root, f"reports/study_c/{cell}-reconstructions.png")


def predictions(root: Path, cell: str, correct: dict[str, np.ndarray], seed: int = 0) -> None:
    """data/study_c/predictions/<cell>.npz from per-regime (S, N) boolean correctness: a wrong prediction is the
    next label."""
    rng = np.random.default_rng(seed)
    first = next(iter(correct.values()))
    y = rng.integers(0, 10, size=first.shape[1]).astype(np.uint8)
    arrays = {r: np.where(c, y, (y + 1) % 10).astype(np.uint8) for r, c in correct.items()}
    p = Path(root) / f"data/study_c/predictions/{cell}.npz"
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(p, y_test=y, seeds=np.arange(first.shape[0]), **arrays)


def published_c(refs: dict, cell: str, regime: str) -> float:
    return refs["facts"]["study_c_test_scores"]["values"][cell][regime]["test_accuracy"]


def study_c_near_published(root: Path, refs: dict, shift: float = 0.0, noise: float = 0.0005, seeds: int = 3,
                           shift_regimes: tuple[str, ...] = REGIMES, **kwargs) -> dict:
    """Study C at the published accuracies (+ `shift` for the regimes in `shift_regimes`) with a little seed noise
    that is the same in every cell and regime (so the paired differences are the published ones, +- a trace)."""
    jitter = np.array([(-1) ** s * noise * (1 + s % 2) for s in range(seeds)])
    acc = {c: {r: list(published_c(refs, c, r) + (shift if r in shift_regimes else 0.0) + jitter
                       + 0.0001 * i * np.arange(seeds)) for i, r in enumerate(REGIMES)} for c in CELLS}
    study_c(root, acc, **kwargs)
    return acc


def timing(root: Path, stage: str, seconds: float) -> None:
    put_json(root, f"metrics/timing/{stage}.json", {"stage": stage, "seconds": seconds, "device": "cpu",
                                                    "precision": "fp32"})
