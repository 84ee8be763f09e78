"""Study A4 claim metrics: how well each pair of classes separates in a 2-D embedding of the latent codes.

The original study read its claims off 2-D UMAP pictures: for NN1 with the Dice loss three clean clusters, for
the U-Nets one class apart and the other two mixed. These numbers say the same thing without eyes: for each
pair of classes, the held-out accuracy of a k-nearest-neighbour classifier that tells the two apart in the 2-D
embedding (a stratified split of that pair's points; 0.5 is chance, 1.0 is two clean sets). A kNN classifier
asks only whether the neighbours of a point share its class, so it rewards separate sets of any shape, as an
eye reading a scatter plot would, and needs no assumption of linear separability.

"apart_class" summarises the three pairs with one documented rule: class c lies apart when both pairs that
contain c separate better than the pair of the two other classes by at least `margin` (the largest such gap
wins); with all three pairs alike (three clean clusters, or one blur) no class lies apart.
"""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from latentspace.study_a.image_sets import CLASSES

PAIRS = tuple((a, b) for i, a in enumerate(CLASSES) for b in CLASSES[i + 1:])


def pair_key(a: int, b: int) -> str:
    return f"{a}-{b}"


def describe(k: int, holdout_fraction: float, margin: float) -> str:
    """The method, in words, for the metrics file."""
    return (f"per pair of classes, held-out accuracy of a {k}-nearest-neighbour classifier (Euclidean) in the 2-D "
            f"embedding of that image set, on a stratified {holdout_fraction:.0%} of the pair's points (the rest "
            f"fit it); the embedding is fitted on all the set's codes without labels. apart_class: the class "
            f"whose two pairs both beat the third pair by at least {margin}, else null")


def pair_accuracy(xy: np.ndarray, labels: np.ndarray, a: int, b: int, *, k: int, holdout_fraction: float,
                  seed: int) -> float:
    """Held-out accuracy of a kNN classifier telling class a from class b in the embedding `xy`."""
    sel = np.flatnonzero((labels == a) | (labels == b))
    fit, held = train_test_split(sel, test_size=holdout_fraction, stratify=labels[sel], random_state=seed)
    clf = KNeighborsClassifier(n_neighbors=min(k, len(fit))).fit(xy[fit], labels[fit])
    return float((clf.predict(xy[held]) == labels[held]).mean())


def pairwise_separability(xy: np.ndarray, labels: np.ndarray, *, k: int, holdout_fraction: float,
                          seed: int) -> dict[str, float]:
    """{"1-2": accuracy, "1-3": ..., "2-3": ...} for one embedding."""
    return {pair_key(a, b): pair_accuracy(xy, labels, a, b, k=k, holdout_fraction=holdout_fraction, seed=seed)
            for a, b in PAIRS}


def apart_class(pairs: dict[str, float], margin: float) -> int | None:
    """The class whose two pairs both separate better than the remaining pair by at least `margin` (the
    largest such gap if several), or None."""
    best, best_gap = None, -np.inf
    for c in CLASSES:
        own = [v for key, v in pairs.items() if str(c) in key.split("-")]
        other = [v for key, v in pairs.items() if str(c) not in key.split("-")]
        gap = min(own) - max(other)
        if gap >= margin and gap > best_gap:
            best, best_gap = c, gap
    return best


def collect(results: list[dict[str, float]], launches: list[int], margin: float) -> dict:
    """The metrics-file record of one (layer, image set, reducer): accuracies per pair as lists over the
    analysed launches, the launches, and the apart class of each launch."""
    return {"pairs": {pair_key(a, b): [r[pair_key(a, b)] for r in results] for a, b in PAIRS},
            "launches": list(launches),
            "apart_class": [apart_class(r, margin) for r in results]}
