"""Study A3: how well a label map matches the truth: pixel accuracy, IoU and Dice per class from a pixel
confusion matrix, their spread over launches, and the pixel sample of the `dvc plots` confusion matrix."""
from __future__ import annotations

import numpy as np
import torch

from latentspace import stats
from latentspace.constants import SEGMENTATION_CLASSES
from latentspace.training.metrics import confusion_matrix

CLASS_NAMES = SEGMENTATION_CLASSES


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 (an output absent from the labels and never predicted) counts as 0, as latentspace.training.metrics does.
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def segmentation_metrics(cm: np.ndarray) -> dict:
    """Pixel accuracy, IoU and Dice per output and their means (over all 4, and over the 3 rectangle
    classes), from a 4 x 4 pixel confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    iou = _ratio(tp, tp + fp + fn)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "pixel_accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "iou": {n: float(v) for n, v in zip(CLASS_NAMES, iou)},
        "dice": {n: float(v) for n, v in zip(CLASS_NAMES, dice)},
        "mean_iou": float(iou.mean()),
        "mean_dice": float(dice.mean()),
        "mean_iou_rectangles": float(iou[1:].mean()),
        "mean_dice_rectangles": float(dice[1:].mean()),
        "confusion_matrix": cm.tolist(),
    }


SUMMARISED = ("pixel_accuracy", "mean_iou", "mean_dice", "mean_iou_rectangles", "mean_dice_rectangles")


def launch_summary(per_launch: list[dict]) -> dict:
    """Mean and spread over launches of each summary test metric (`SUMMARISED`)."""
    return {key: stats.spread([r[key] for r in per_launch]) for key in SUMMARISED}


def pixel_confusion(labels: torch.Tensor, predicted: torch.Tensor) -> np.ndarray:
    return confusion_matrix(labels, predicted, len(CLASS_NAMES))


def confusion_rows(labels: np.ndarray, predicted: np.ndarray, pixels: int, seed: int) -> list[dict]:
    """{actual, predicted} rows for `dvc plots`' confusion template, for a random sample of test pixels
    (all of them would be millions of rows)."""
    flat_true, flat_pred = np.asarray(labels).reshape(-1), np.asarray(predicted).reshape(-1)
    idx = np.sort(np.random.default_rng(seed).choice(len(flat_true), size=min(pixels, len(flat_true)),
                                                      replace=False))
    names = np.asarray(CLASS_NAMES)
    return [{"actual": a, "predicted": p} for a, p in zip(names[flat_true[idx]], names[flat_pred[idx]])]

