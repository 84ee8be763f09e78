"""The labelled image grid the studies' example figures share: a row per kind of picture, a column per example."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def image_grid(rows: Sequence[tuple[str, np.ndarray]], title: str, *, cell: tuple[float, float] = (1.1, 1.2),
               column_titles: Sequence[str] | None = None, **imshow):
    """rows: (label, images) with images (N, H, W) or (N, H, W, 3), each row the same N; `imshow` goes to
    every panel (cmap, vmin, vmax, ...). Returns the matplotlib figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(cell[0] * n, cell[1] * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c], **imshow)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0 and column_titles is not None:
                ax.set_title(column_titles[c], fontsize=6)
    fig.suptitle(title, fontsize=9)
    return fig
