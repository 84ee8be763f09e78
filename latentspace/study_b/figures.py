"""Study B's figures: test images over their reconstructions, the probe's test confusion matrix, and the
reconstruction error and probe accuracy against the latent size."""
from __future__ import annotations

import numpy as np

from latentspace.training.figures import image_grid


def example_indices(y: np.ndarray, per_class: int, num_classes: int = 10) -> np.ndarray:
    """The first `per_class` images of every class (in class order): a fixed, balanced set to show."""
    y = np.asarray(y)
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(num_classes)])


def reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, titles: list[str], hidden: int):
    """Originals (top row) over their reconstructions (bottom row); both (N, 3, H, W), uint8 or [0, 1] float."""
    def pictures(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images).transpose(0, 2, 3, 1)
        return images if images.dtype == np.uint8 else np.clip(images, 0, 1)

    return image_grid([("original", pictures(originals)), ("reconstruction", pictures(reconstructions))],
                      f"CIFAR-10 test images, autoencoder with hidden = {hidden}", cell=(1.1, 1.3),
                      column_titles=titles)


def confusion_figure(cm: np.ndarray, class_names: tuple[str, ...], title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.2))
    im = ax.imshow(cm, cmap="Blues")
    k = len(class_names)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted"), ax.set_ylabel("actual")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    return fig


def summary_figure(rows: list[dict]):
    """Test MSE and probe test accuracy against the latent size (log-2 axis)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hidden = [r["hidden"] for r in rows]
    fig, (ax_mse, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_mse.plot(hidden, [r["test_mse"] for r in rows], "o-")
    ax_mse.set_ylabel("test reconstruction MSE")
    ax_acc.plot(hidden, [r["probe_test_accuracy"] for r in rows], "o-", label="test")
    ax_acc.plot(hidden, [r["probe_train_accuracy"] for r in rows], "s--", label="train")
    ax_acc.set_ylabel("linear probe accuracy")
    ax_acc.legend(fontsize=8)
    for ax in (ax_mse, ax_acc):
        ax.set_xscale("log", base=2)
        ax.set_xticks(hidden, [str(h) for h in hidden])
        ax.set_xlabel("hidden size")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
