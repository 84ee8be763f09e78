"""Classification metrics computed from a confusion matrix (rows true class, columns predicted)."""
from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(y_true: torch.Tensor | np.ndarray, y_pred: torch.Tensor | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Counts as int64, rows true class, columns predicted; works on any device, any shape."""
    t = torch.as_tensor(y_true).reshape(-1).long()
    p = torch.as_tensor(y_pred).reshape(-1).long().to(t.device)
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 (a class never predicted, or absent) counts as 0, as scikit-learn's zero_division=0 does.
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def classification_report(cm: np.ndarray, class_names: list[str] | None = None) -> dict:
    """Accuracy, per-class precision/recall/F1 and their macro means, from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(float)
    precision = _ratio(tp, cm.sum(axis=0).astype(float))
    recall = _ratio(tp, cm.sum(axis=1).astype(float))
    f1 = _ratio(2 * precision * recall, precision + recall)
    names = class_names or [str(i) for i in range(len(cm))]
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "per_class": {n: {"precision": float(p), "recall": float(r), "f1": float(f)}
                      for n, p, r, f in zip(names, precision, recall, f1)},
    }
