"""Study A4: is the latent space of the segmentation nets compact (one class, one separable set) and
continuous (near in generator parameters, near in the code)?

Four steps, in the order the stage runs them:
1. image sets (`latentspace.study_a.image_sets`): images with ONE rectangle, N per class, where only some generator
   factors vary;
2. bottleneck codes of a trained net for every image of a set (batched, on the device);
3. a dimension sweep: the raw codes, then PCA and UMAP reductions, each scored by a one-vs-rest linear
   probe per class (F1 on the fitting set, as the original did, and on a held-out split), the silhouette
   score and the ratio of mean within-class to mean between-class distance;
4. continuity: geodesic distance on a kNN graph of the codes against distance in generator parameters.
The claim metrics (pairwise class separability in 2-D) live in `latentspace.study_a.separability`.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse.linalg
import torch
from scipy.linalg import LinAlgWarning
from scipy.sparse.csgraph import connected_components, shortest_path
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import f1_score, pairwise_distances, silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors, kneighbors_graph
from sklearn.preprocessing import StandardScaler

from latentspace.constants import CLASS_HEX, RECTANGLE_CLASS_CENTRES
from latentspace.study_a.image_sets import CLASSES
from latentspace.training.device import autocast
from latentspace.training.engine import batch_indices, to_device

REDUCERS = ("pca", "umap")
# Spread of the class-centre colours on a channel (212 - 42 = 170): a colour difference of that size counts as 1.
COLOUR_SCALE = float(max(map(max, RECTANGLE_CLASS_CENTRES.values())) - min(map(min, RECTANGLE_CLASS_CENTRES.values())))
# Columns of RectangleSet.params: R, G, B, w, h, xc, yc, order.
COLOUR_COLUMNS = slice(0, 3)
GEOMETRY_COLUMNS = slice(3, 7)


# --- 2. codes ---------------------------------------------------------------------------------------

@torch.no_grad()
def extract_codes(net: torch.nn.Module, images: np.ndarray, *, device: torch.device, precision: str,
                  batch_size: int) -> dict[str, np.ndarray]:
    """Flattened bottleneck activations (net.encode) of uint8 NHWC images, one float32 array per layer."""
    from latentspace.study_a.segmentation import preprocess_images
    net = net.to(device).eval()
    x_all = to_device(images, device)
    parts: dict[str, list[torch.Tensor]] = {}
    for idx in batch_indices(len(x_all), batch_size, shuffle=False, generator=None, device=device):
        # No input noise at analysis time: the code of an image should be a function of the image.
        x = preprocess_images(x_all[idx], 0.0, None)
        with autocast(device, precision):
            codes = net.encode(x)
        for name, value in codes.items():
            parts.setdefault(name, []).append(value.float().flatten(1))
    return {name: torch.cat(chunks).cpu().numpy() for name, chunks in parts.items()}


# --- 3. compactness ---------------------------------------------------------------------------------

def valid_dims(dims: list[int], n_samples: int, code_dim: int) -> list[int]:
    """The sweep's dimensions a reduction can produce: below the code size and below the sample count
    (UMAP's spectral start needs a few samples more than components)."""
    return sorted({d for d in dims if d < code_dim and d < n_samples - 2}, reverse=True)


def nearest_neighbors(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours, each point its own first neighbour (the layout UMAP expects)."""
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    return idx, dist.astype(np.float32)


def reduce_pca(codes: np.ndarray, dims: list[int], seed: int) -> dict[int, np.ndarray]:
    """PCA to every dimension at once: the first d components of one fit are the d-dimensional PCA."""
    if not dims:
        return {}
    scores = PCA(n_components=max(dims), random_state=seed).fit_transform(codes)
    return {d: scores[:, :d] for d in dims}


def numba_cache_dir() -> Path:
    """Where numba keeps UMAP's compiled code between processes: $NUMBA_CACHE_DIR if set, else beside the
    Python environment (a virtual environment is the project's, ignored by git), else the user's cache."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    if os.access(sys.prefix, os.W_OK):
        return Path(sys.prefix) / "numba-cache"
    return Path.home() / ".cache" / "latentspace" / "numba"


def import_umap():
    """umap, with every numba function of umap and pynndescent cached on disk. Most of them are compiled
    without numba's cache, so each new process spent 10-40 s compiling them again before its first fit; with
    the cache a later process loads them in about a second (README, timings). The cache is keyed by the
    source files, so an upgraded umap recompiles by itself."""
    if "umap" not in sys.modules:
        os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir())   # read once, when numba is first imported
    import umap
    from numba.core.dispatcher import Dispatcher
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("umap", "pynndescent"):
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher) and type(obj._cache).__name__ == "NullCache":
                    obj.enable_caching()
    return umap


@contextlib.contextmanager
def seeded_eigsh(seed: int):
    """Inside, every `scipy.sparse.linalg.eigsh` call that names no `rng` draws from one generator seeded by `seed`.
    scipy (1.15 on) draws ARPACK's restart vectors from OS entropy unless given `rng`, and umap's spectral start
    names none: on the kNN graph of an image set with repeated images (`x`, `height`: several connected components
    of identical codes) ARPACK restarts, and UMAP's start, so its embedding, changed from run to run."""
    original = scipy.sparse.linalg.eigsh
    rng = np.random.default_rng(seed)

    def eigsh(*args, **kwargs):
        kwargs.setdefault("rng", rng)
        return original(*args, **kwargs)
    scipy.sparse.linalg.eigsh = eigsh
    try:
        yield
    finally:
        scipy.sparse.linalg.eigsh = original


def reduce_umap(codes: np.ndarray, dims: list[int], *, neighbors: int, epochs: int, seed: int) -> dict[int, np.ndarray]:
    """UMAP to each dimension; the kNN graph is computed once (exactly) and shared by all of them."""
    if not dims:
        return {}
    umap = import_umap()  # umap and numba take seconds to import: only when UMAP is asked for
    knn_idx, knn_dist = nearest_neighbors(codes, neighbors)
    out = {}
    for d in dims:
        with warnings.catch_warnings(), seeded_eigsh(seed):
            # random_state makes UMAP single-threaded (and reproducible); it warns about that every time.
            warnings.filterwarnings("ignore", message=".*n_jobs.*")
            warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
            # Codes of a net that collapsed (or of identical images) defeat the spectral start; UMAP then
            # starts from random positions, which is fine for these figures.
            warnings.filterwarnings("ignore", message=".*[Ss]pectral initialisation failed.*")
            warnings.filterwarnings("ignore", message=".*Graph is not fully connected.*")
            warnings.filterwarnings("ignore", message=".*ARPACK has failed.*")
            warnings.filterwarnings("ignore", message=".*not reaching the requested tolerance.*")
            reducer = umap.UMAP(n_components=d, n_neighbors=neighbors, n_epochs=epochs, random_state=seed,
                                precomputed_knn=(knn_idx, knn_dist, None))
            out[d] = reducer.fit_transform(codes).astype(np.float32)
    return out


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified indices (fit, held out)."""
    idx = np.arange(len(labels))
    fit, held = train_test_split(idx, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(fit), np.sort(held)


def probe_f1(features: np.ndarray, labels: np.ndarray, fit_idx: np.ndarray, held_idx: np.ndarray, *,
             alpha: float) -> dict:
    """Per class, a one-vs-rest linear classifier (ridge: least squares on +-1 targets, L2 penalty `alpha`) on
    features standardised with the fitting split's statistics; F1 of that class on the fitting split and on
    the held-out split. Balanced class weights, so the one class against the two others is not decided by
    the 1:2 imbalance. Ridge has a closed-form solution: a linear SVM (liblinear) took minutes to converge
    on a 2,048-dimensional code of a few thousand images, ridge takes a fraction of a second."""
    scaler = StandardScaler().fit(features[fit_idx])
    x_fit, x_held = scaler.transform(features[fit_idx]), scaler.transform(features[held_idx])
    f1_fit, f1_held = {}, {}
    for c in np.unique(labels):
        y_fit, y_held = labels[fit_idx] == c, labels[held_idx] == c
        with warnings.catch_warnings():
            # With more dimensions than fitting points the ridge system is ill-conditioned; alpha keeps it
            # solvable and the F1 still measures the fit.
            warnings.filterwarnings("ignore", category=LinAlgWarning)
            clf = RidgeClassifier(alpha=alpha, class_weight="balanced").fit(x_fit, y_fit)
        f1_fit[str(c)] = float(f1_score(y_fit, clf.predict(x_fit), zero_division=0))
        f1_held[str(c)] = float(f1_score(y_held, clf.predict(x_held), zero_division=0))
    return {"f1_fit": f1_fit, "f1_heldout": f1_held,
            "f1_fit_mean": float(np.mean(list(f1_fit.values()))),
            "f1_heldout_mean": float(np.mean(list(f1_held.values())))}


def within_between_ratio(features: np.ndarray, labels: np.ndarray, dist: np.ndarray | None = None) -> float:
    """Mean distance between two points of one class over mean distance between points of different
    classes: well below 1 for compact, separated classes, about 1 when class does not matter.
    `dist`: the features' pairwise distances, if already computed."""
    dist = pairwise_distances(features) if dist is None else dist
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    between = dist[~same].mean()
    return float(dist[same & off_diagonal].mean() / between) if between > 0 else float("nan")


def compactness(features: np.ndarray, labels: np.ndarray, fit_idx: np.ndarray, held_idx: np.ndarray,
                metric_idx: np.ndarray, *, alpha: float) -> dict:
    """Probe F1 per class, silhouette and within/between distance ratio of one feature set. The distance
    figures use the features as the reducer gives them (not standardised), on the `metric_idx` sample."""
    out = probe_f1(features, labels, fit_idx, held_idx, alpha=alpha)
    sample, sample_labels = features[metric_idx], labels[metric_idx]
    dist = pairwise_distances(sample)           # once, for both figures
    out["silhouette"] = float(silhouette_score(dist, sample_labels, metric="precomputed"))
    out["within_between_ratio"] = within_between_ratio(sample, sample_labels, dist)
    return out


def dimension_sweep(codes: np.ndarray, labels: np.ndarray, *, dims: list[int], reducers: list[str],
                    holdout_fraction: float, alpha: float, metric_sample: int, umap_neighbors: int,
                    umap_epochs: int, seed: int, umap_dims: list[int] | None = None) -> tuple[dict, dict]:
    """Compactness of the raw codes and of each reduction. Returns (metrics, 2-D embeddings for plots):
    metrics = {"raw": {...}, "pca": {"<d>": {...}}, "umap": {"<d>": {...}}}. PCA runs at every dimension of
    `dims`; UMAP (a fit per dimension, the expensive step) only at those also in `umap_dims` (None: all)."""
    fit_idx, held_idx = holdout_split(labels, holdout_fraction, seed)
    rng = np.random.default_rng(seed)
    metric_idx = np.sort(rng.choice(len(labels), size=min(metric_sample, len(labels)), replace=False))
    score = lambda f: compactness(f, labels, fit_idx, held_idx, metric_idx, alpha=alpha)  # noqa: E731
    sweep_dims = valid_dims(dims, len(labels), codes.shape[1])
    metrics: dict = {"raw": score(codes)}
    embeddings_2d: dict[str, np.ndarray] = {}
    for reducer in reducers:
        own_dims = sweep_dims if reducer == "pca" or umap_dims is None else \
            [d for d in sweep_dims if d in umap_dims]
        plot_dims = sorted(set(own_dims) | {2}, reverse=True)
        if reducer == "pca":
            reduced = reduce_pca(codes, plot_dims, seed)
        else:
            reduced = reduce_umap(codes, plot_dims, neighbors=umap_neighbors, epochs=umap_epochs, seed=seed)
        metrics[reducer] = {str(d): score(reduced[d]) for d in own_dims}
        embeddings_2d[reducer] = reduced[2]
    return metrics, embeddings_2d


def embeddings_2d(codes: np.ndarray, reducers: list[str], *, umap_neighbors: int, umap_epochs: int,
                  seed: int) -> dict[str, np.ndarray]:
    """The 2-D embedding of the codes by each reducer (what the claim metrics of a later launch need)."""
    out = {}
    for reducer in reducers:
        if reducer == "pca":
            out[reducer] = reduce_pca(codes, [2], seed)[2]
        else:
            out[reducer] = reduce_umap(codes, [2], neighbors=umap_neighbors, epochs=umap_epochs, seed=seed)[2]
    return out


# --- 4. continuity ----------------------------------------------------------------------------------

def parameter_distances(factors: np.ndarray, image_size: int) -> np.ndarray:
    """Condensed pairwise distances in generator parameters: colour differences / 170 plus geometry
    differences / image size (L1 over R, G, B and w, h, xc, yc)."""
    scaled = np.concatenate([factors[:, COLOUR_COLUMNS] / COLOUR_SCALE,
                             factors[:, GEOMETRY_COLUMNS] / image_size], axis=1)
    return pdist(scaled, metric="cityblock")


def geodesic_distances(codes: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Condensed shortest-path distances on the symmetric kNN graph of the codes (edge = Euclidean
    distance; inf between graph components), and the number of components."""
    graph = kneighbors_graph(codes, n_neighbors=k, mode="distance", include_self=False)
    graph = graph.maximum(graph.T)
    n_components = connected_components(graph, directed=False)[0]
    full = shortest_path(graph, method="D", directed=False)
    return full[np.triu_indices(len(codes), k=1)], int(n_components)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def continuity(codes: np.ndarray, factors: np.ndarray, labels: np.ndarray, *, image_size: int,
               k: int) -> tuple[dict, dict]:
    """Rank correlation of geodesic code distance with generator-parameter distance, over the pairs the
    kNN graph connects, and within each class (compact classes leave the graph in pieces, one per class,
    so across-class pairs may have no geodesic). Returns (metrics, the distance pairs for the plot)."""
    geodesic, n_components = geodesic_distances(codes, k)
    param = parameter_distances(factors, image_size)
    i, j = np.triu_indices(len(codes), k=1)
    connected = np.isfinite(geodesic)
    same_class = labels[i] == labels[j]
    per_class = {}
    for c in np.unique(labels):
        pairs = connected & same_class & (labels[i] == c)
        per_class[str(c)] = spearman(geodesic[pairs], param[pairs])
    metrics = {
        "spearman": spearman(geodesic[connected], param[connected]),
        "spearman_within_class": per_class,
        "spearman_within_class_mean": float(np.nanmean(list(per_class.values()))) if per_class else float("nan"),
        "connected_fraction": float(connected.mean()),
        "components": n_components,
        "n": int(len(codes)),
        "k": int(k),
    }
    return metrics, {"geodesic": geodesic[connected], "parameter": param[connected],
                     "same_class": same_class[connected]}


def continuity_sample(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False))


# --- figures ----------------------------------------------------------------------------------------



def _dim_axis(ax, dims: list[int], raw_dim: int) -> None:
    ticks = dims + [raw_dim]
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(d) for d in dims] + [f"raw\n{raw_dim}"], fontsize=7)
    ax.minorticks_off()


def f1_figure(results: dict, score: str, title: str):
    """F1 (`score` = f1_fit or f1_heldout) vs dimension per class: a row per layer, a column per image set;
    PCA solid, UMAP dashed, the raw code at the right end."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = list(results)
    sets = list(next(iter(results.values()))["image_sets"])
    fig, axes = plt.subplots(len(layers), len(sets), figsize=(3.2 * len(sets), 2.8 * len(layers)),
                             squeeze=False, sharey=True)
    for r, layer in enumerate(layers):
        raw_dim = results[layer]["code_dim"]
        for c, variant in enumerate(sets):
            ax, m = axes[r][c], results[layer]["image_sets"][variant]
            dims = []
            for reducer, style in (("pca", "-"), ("umap", "--")):
                if reducer not in m:
                    continue
                dims = sorted(int(d) for d in m[reducer])
                for cls in CLASSES:
                    ys = [m[reducer][str(d)][score][str(cls)] for d in dims] + [m["raw"][score][str(cls)]]
                    ax.plot(dims + [raw_dim], ys, style, marker="o", ms=3, color=CLASS_HEX[cls],
                            label=f"class {cls} {reducer.upper()}")
            _dim_axis(ax, dims, raw_dim)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{layer} / {variant}", fontsize=9)
            if c == 0:
                ax.set_ylabel(score.replace("_", " "))
            if r == len(layers) - 1:
                ax.set_xlabel("dimension")
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return fig


def scatter_figure(embeddings: dict, labels: dict, title: str):
    """2-D embeddings coloured by class: a row per image set, a column per reducer.
    embeddings[variant][reducer] = (N, 2); labels[variant] = (N,)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = list(embeddings)
    reducers = list(next(iter(embeddings.values())))
    fig, axes = plt.subplots(len(sets), len(reducers), figsize=(3.2 * len(reducers), 3.0 * len(sets)),
                             squeeze=False)
    for r, variant in enumerate(sets):
        for c, reducer in enumerate(reducers):
            ax, xy = axes[r][c], embeddings[variant][reducer]
            for cls in CLASSES:
                sel = labels[variant] == cls
                ax.scatter(xy[sel, 0], xy[sel, 1], s=3, alpha=0.6, color=CLASS_HEX[cls], label=f"class {cls}",
                           linewidths=0)
            ax.set_title(f"{variant} / {reducer.upper()}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][-1].legend(fontsize=6, markerscale=3)
    fig.suptitle(title, fontsize=10)
    return fig


def continuity_figure(pairs: dict, metrics: dict, title: str, max_points: int = 20000, seed: int = 0):
    """Geodesic code distance vs generator-parameter distance, a panel per layer (a sample of the pairs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = list(pairs)
    fig, axes = plt.subplots(1, len(layers), figsize=(3.6 * len(layers), 3.2), squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, layer in zip(axes[0], layers):
        p = pairs[layer]
        idx = rng.choice(len(p["geodesic"]), size=min(max_points, len(p["geodesic"])), replace=False)
        same = p["same_class"][idx]
        ax.scatter(p["parameter"][idx][~same], p["geodesic"][idx][~same], s=2, alpha=0.3, color="0.5",
                   linewidths=0, label="different class")
        ax.scatter(p["parameter"][idx][same], p["geodesic"][idx][same], s=2, alpha=0.3, color="C0",
                   linewidths=0, label="same class")
        m = metrics[layer]
        ax.set_title(f"{layer}: Spearman {m['spearman']:.2f} (within class {m['spearman_within_class_mean']:.2f})",
                     fontsize=8)
        ax.set_xlabel("generator-parameter distance")
        ax.set_ylabel("geodesic code distance (kNN graph)")
    axes[0][-1].legend(fontsize=6, markerscale=4)
    fig.suptitle(title, fontsize=10)
    return fig
