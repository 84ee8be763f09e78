"""Study A2: what the rectangle samples look like (geometry, areas, occlusion, colours, overlaps).

Pixel statistics come from the label maps and full masks painted from the parameter table (the generator's
own renderer, chunk by chunk: the samples are stored as their tables), factor distributions from the table
itself. All counting is vectorised over chunks of images.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from latentspace.constants import BOX_OVERLAP_DELTA, CHANNEL_OVERLAP_DELTA
from latentspace.study_a.rectangles import CLASS_COLOURS, N_CLASSES, ORDER, RectangleSet, render_chunks, render_set

CLASSES = tuple(range(1, N_CLASSES + 1))
CHANNELS = ("R", "G", "B")
FACTORS = {"xc": 5, "yc": 6, "w": 3, "h": 4}     # column of each geometry factor in the parameter table
PAIRS = tuple(combinations(CLASSES, 2))


def _summary(values: np.ndarray) -> dict:
    values = values.astype(np.float64)
    return {"min": int(values.min()), "max": int(values.max()),
            "mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}


def pixel_counts(rs: RectangleSet) -> dict[str, np.ndarray]:
    """Per image: visible pixels of background and each class (N, 4), full-mask pixels per class (N, 3),
    and whether each pair of full masks overlaps (N, 3 pairs) and all three do (N,), painted from rs.params."""
    n, size = len(rs), rs.meta["image_size"]
    visible = np.empty((n, N_CLASSES + 1), dtype=np.int64)
    full = np.empty((n, N_CLASSES), dtype=np.int64)
    pairs = np.empty((n, len(PAIRS)), dtype=bool)
    triple = np.empty(n, dtype=bool)
    for sl, _, labels, masks in render_chunks(rs.params, size):
        labels = labels.reshape(len(labels), -1)
        # One bincount for the whole chunk: image i's labels are shifted into their own block of 4.
        offset = (np.arange(len(labels)) * (N_CLASSES + 1))[:, None]
        visible[sl] = np.bincount((labels + offset).ravel(),
                                  minlength=len(labels) * (N_CLASSES + 1)).reshape(-1, N_CLASSES + 1)
        masks = masks.reshape(len(labels), N_CLASSES, -1)
        full[sl] = masks.sum(axis=2)
        for p, (a, b) in enumerate(PAIRS):
            pairs[sl, p] = (masks[:, a - 1] & masks[:, b - 1]).any(axis=1)
        triple[sl] = masks.all(axis=1).any(axis=1)
    return {"visible": visible, "full": full, "pairs": pairs, "triple": triple}


def sample_statistics(rs: RectangleSet) -> tuple[dict, dict]:
    """(metrics, histograms) of one sample. Metrics are scalars for `dvc metrics`; histograms are the
    integer-valued counts behind the figures."""
    size = rs.meta["image_size"]
    area = float(size * size)
    params = np.asarray(rs.params).astype(np.int64)
    present = params[:, :, ORDER] >= 0
    counts = pixel_counts(rs)

    classes, colour_hist = {}, {}
    for k in CLASSES:
        has = present[:, k - 1]
        full = counts["full"][has, k - 1]
        visible = counts["visible"][has, k]
        colours = params[has, k - 1, :3]
        classes[f"class_{k}"] = {
            "images": int(has.sum()),
            "full_area_fraction": round(float(full.mean() / area), 5) if has.any() else None,
            "visible_area_fraction": round(float(visible.mean() / area), 5) if has.any() else None,
            # Share of the class's own pixels covered by a rectangle painted after it.
            "hidden_fraction": round(float(1 - visible.sum() / full.sum()), 5) if full.sum() else None,
            "fully_hidden_rate": round(float(np.mean(visible == 0)), 5) if has.any() else None,
            "colour": {ch: _summary(colours[:, c]) for c, ch in enumerate(CHANNELS)} if has.any() else None,
        }
        colour_hist[f"class_{k}"] = {ch: np.bincount(colours[:, c], minlength=256).tolist()
                                     for c, ch in enumerate(CHANNELS)}

    rects = params[present]                          # (rectangles, 8)
    start_x, start_y = rects[:, 5] - rects[:, 3] // 2, rects[:, 6] - rects[:, 4] // 2
    inside = (start_x >= 0) & (start_x + rects[:, 3] <= size) & (start_y >= 0) & (start_y + rects[:, 4] <= size)
    geometry = {name: _summary(rects[:, col]) for name, col in FACTORS.items()}
    geometry["clipped_fraction"] = round(float(1 - inside.mean()), 5)
    geometry_hist = {name: np.bincount(rects[:, col], minlength=size + 1).tolist() for name, col in FACTORS.items()}

    metrics = {
        "n": len(rs), "image_size": size, "delta": rs.meta["delta"], "contained": rs.meta["contained"],
        "clipped_colours": rs.meta["clipped_colours"],
        "background_fraction": round(float(counts["visible"][:, 0].mean() / area), 5),
        "classes": classes,
        "overlap_rate": {**{f"{a}-{b}": round(float(counts["pairs"][:, p].mean()), 5) for p, (a, b) in enumerate(PAIRS)},
                         "all_three": round(float(counts["triple"].mean()), 5)},
        "geometry": geometry,
    }
    return metrics, {"geometry": geometry_hist, "colour": colour_hist}


# --- figures -----------------------------------------------------------------------------------------

def _class_rgb(k: int) -> np.ndarray:
    return CLASS_COLOURS[k - 1] / 255.0


def geometry_figure(histograms: dict[str, dict]):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(FACTORS), figsize=(4 * len(FACTORS), 3.2))
    for ax, name in zip(axes, FACTORS):
        for sample, hist in histograms.items():
            counts = np.asarray(hist["geometry"][name], dtype=np.float64)
            ax.stairs(counts / counts.sum(), np.arange(len(counts) + 1) - 0.5, label=sample)
        ax.set_title(name)
        ax.set_xlabel("pixels")
    axes[0].set_ylabel("share of rectangles")
    axes[0].legend()
    fig.suptitle("Rectangle centres (xc, yc) and side lengths (w, h), all classes pooled")
    fig.tight_layout()
    return fig


def areas_figure(metrics: dict[str, dict]):
    """Full, visible and hidden area per class, and background, for each sample side by side."""
    import matplotlib.pyplot as plt
    panels = (("full_area_fraction", "full area / image"), ("visible_area_fraction", "visible area / image"),
              ("hidden_fraction", "share of own pixels hidden"), ("overlap", "images where the pair overlaps"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    width = 0.8 / len(metrics)
    for ax, (key, title) in zip(axes, panels):
        for i, (sample, m) in enumerate(metrics.items()):
            if key == "overlap":
                names = list(m["overlap_rate"])
                values = [m["overlap_rate"][p] for p in names]
            else:
                names = [f"class {k}" for k in CLASSES]
                values = [m["classes"][f"class_{k}"][key] or 0.0 for k in CLASSES]
                if key == "visible_area_fraction":
                    names, values = names + ["background"], values + [m["background_fraction"]]
            ax.bar(np.arange(len(names)) + i * width, values, width, label=sample)
            ax.set_xticks(np.arange(len(names)) + width * (len(metrics) - 1) / 2, names, rotation=20)
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    return fig


def colours_figure(histograms: dict[str, dict], delta: int):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(histograms), 3, figsize=(12, 2.8 * len(histograms)), squeeze=False)
    edges = np.arange(257) - 0.5
    for row, (sample, hist) in zip(axes, histograms.items()):
        for ax, ch in zip(row, CHANNELS):
            for k in CLASSES:
                counts = np.asarray(hist["colour"][f"class_{k}"][ch], dtype=np.float64)
                if counts.sum():
                    # Translucent fills: once the class ranges overlap they must stay visible.
                    ax.stairs(counts / counts.sum(), edges, fill=True, alpha=0.6, color=_class_rgb(k),
                              label=f"class {k}")
            ax.set_xlim(-1, 256)
            ax.set_title(f"{sample}: channel {ch}")
    fig.suptitle(f"Rectangle colours per class and channel (delta = {delta}; ranges overlap on a channel from "
                 f"delta {CHANNEL_OVERLAP_DELTA:g}, colour boxes from {BOX_OVERLAP_DELTA:g}), share of images")
    fig.tight_layout()
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper right", fontsize=8)
    return fig


def examples_figure(rs: RectangleSet, count: int, title: str):
    """Columns: the first `count` images. Rows: image, visible label map, full mask of each class."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    count = min(count, len(rs))
    if rs.images is None:            # a sample stored as its table: paint just the images shown
        rs = render_set(rs.params[:count], rs.meta)
    label_colours = ListedColormap(np.vstack([[0, 0, 0], CLASS_COLOURS / 255.0]))
    rows = ["image", "label map"] + [f"mask {k}" for k in CLASSES]
    fig, axes = plt.subplots(len(rows), count, figsize=(1.4 * count + 0.8, 1.4 * len(rows)), squeeze=False)
    for j in range(count):
        panels = [np.asarray(rs.images[j]), np.asarray(rs.labels[j])] + [np.asarray(rs.masks[j, k - 1]) for k in CLASSES]
        for i, panel in enumerate(panels):
            ax = axes[i, j]
            if i == 0:
                ax.imshow(panel, interpolation="nearest")
            elif i == 1:
                ax.imshow(panel, cmap=label_colours, vmin=0, vmax=N_CLASSES, interpolation="nearest")
            else:
                ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
