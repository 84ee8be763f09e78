"""Study A4 as pool tasks: the latent analysis of one trained (net, loss) pair on every image set, run in a
worker (`analyse_pair`), returning its metrics and what the stage draws; the stage writes every file.

For launch 1: compactness per dimension (linear-probe F1 per class, silhouette, within/between distance ratio)
after PCA and UMAP, the continuity check on the `all` set, and the 2-D embeddings of the figures. For each of
the first `latent.launches` launches: the claim metrics, the pairwise class separability in the 2-D PCA and UMAP
embeddings (latentspace/study_a/separability.py). Each task is single-threaded (numba's threads too), so the
results do not depend on the number of workers.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from latentspace import paths
from latentspace.core.errors import UserError
from latentspace.study_a import latent, separability
from latentspace.study_a.image_sets import image_labels_and_factors
from latentspace.study_a.nets import load_net
from latentspace.study_a.rectangles import load_rectangles
from latentspace.training.pool import worker_state

IMAGE_SETS_DIR = Path(paths.IMAGE_SETS)
MODELS_DIR = Path(paths.SEGMENTATION_MODELS)
# The code each net's claims are about: NN1's pooled encoder output, the U-Nets' 64-channel bottleneck.
PRIMARY_LAYER = {"nn1": "pool3", "nn2": "bottleneck", "nn3": "bottleneck"}


def check_sizes(p: dict) -> None:
    images = 3 * p["per_class"]
    if p["umap_neighbors"] >= images and "umap" in p["reducers"]:
        raise UserError(f"parameter 'latent.umap_neighbors' = {p['umap_neighbors']} must be below the "
                        f"{images} images of an image set (3 x latent.per_class)")
    if p["knn"] >= min(p["continuity_sample"], images):
        raise UserError(f"parameter 'latent.knn' = {p['knn']} must be below latent.continuity_sample "
                        f"({p['continuity_sample']}) and the {images} images of an image set")
    if round(images * p["holdout_fraction"]) < 3 or round(images * (1 - p["holdout_fraction"])) < 3:
        raise UserError(f"parameter 'latent.holdout_fraction' = {p['holdout_fraction']} leaves fewer than one "
                        f"image per class on one side of the split of {images} images")
    if p["separability_knn"] >= round(2 * p["per_class"] * (1 - p["holdout_fraction"])):
        raise UserError(f"parameter 'latent.separability_knn' = {p['separability_knn']} must be below the "
                        f"fitting points of a pair of classes (2 x latent.per_class x (1 - holdout_fraction))")


def model_paths(name: str, launches: int) -> list[Path]:
    paths = [MODELS_DIR / name / f"launch-{k}.pt" for k in range(1, launches + 1)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: trained net not found; parameter 'latent.launches' = {launches} asks for "
                        f"more launches than train_segmentation made (segmentation.launches), or run "
                        f"`dvc repro train_segmentation`")
    return paths


def trained_image_size(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["image_size"])


def load_image_sets(variants: list[str], image_size: int) -> dict:
    """A worker's data (the pool's initializer): each image set's images, labels and generator factors. Sets
    numba to one thread before UMAP first imports it: one single-threaded task per core."""
    os.environ["NUMBA_NUM_THREADS"] = "1"
    sets = {}
    for variant in variants:
        path = IMAGE_SETS_DIR / variant
        if not path.is_dir():
            raise UserError(f"{path}: image set not found; run `dvc repro generate_image_sets`")
        rs = load_rectangles(path)
        if rs.images.shape[1] != image_size:
            raise UserError(f"{path}: images are {rs.images.shape[1]} pixels wide but the nets were trained on "
                            f"{image_size}; regenerate the image sets or retrain with the same rectangles.image_size")
        labels, factors = image_labels_and_factors(rs)
        sets[variant] = {"images": np.array(rs.images), "labels": labels, "factors": factors}
    return sets


def _launch(net_name, launch, paths, sets, p, run, acc) -> None:
    """Analyse one launch's net on every image set, into the accumulators `acc`."""
    umap_kw = dict(umap_neighbors=p["umap_neighbors"], umap_epochs=p["umap_epochs"], seed=run["seed"])
    sep_kw = dict(k=p["separability_knn"], holdout_fraction=p["holdout_fraction"], seed=run["seed"])
    primary, seconds = PRIMARY_LAYER[net_name], acc["seconds"]
    net = load_net(paths[launch - 1])
    for variant, data in sets.items():
        labels, start = data["labels"], time.perf_counter()
        codes = latent.extract_codes(net, data["images"], device=torch.device(run["device"]),
                                     precision=run["precision"], batch_size=p["batch_size"])
        seconds["codes"] += time.perf_counter() - start
        for layer, layer_codes in codes.items():
            if launch > 1 and layer != primary:
                continue      # later launches: the claim metrics of the code the claims are about
            start = time.perf_counter()
            if launch == 1:
                entry = acc["layers"].setdefault(layer, {"code_dim": int(layer_codes.shape[1]), "image_sets": {}})
                entry["image_sets"][variant], flat = latent.dimension_sweep(
                    layer_codes, labels, dims=p["dims"], reducers=p["reducers"],
                    holdout_fraction=p["holdout_fraction"], alpha=p["probe_alpha"],
                    metric_sample=p["metric_sample"], umap_dims=p["umap_dims"], **umap_kw)
                acc["embeddings"].setdefault(layer, {})[variant] = flat
            else:
                flat = latent.embeddings_2d(layer_codes, p["reducers"], **umap_kw)
            seconds["sweep"] += time.perf_counter() - start
            start = time.perf_counter()
            for reducer, xy in flat.items():
                acc["separability"].setdefault((layer, variant, reducer), []).append(
                    separability.pairwise_separability(xy, labels, **sep_kw))
            seconds["separability"] += time.perf_counter() - start
            if launch == 1 and variant == "all":
                start = time.perf_counter()
                sample = latent.continuity_sample(len(labels), p["continuity_sample"], run["seed"])
                acc["layers"][layer]["continuity"], acc["pairs"][layer] = latent.continuity(
                    layer_codes[sample], data["factors"][sample], labels[sample], image_size=run["image_size"],
                    k=p["knn"])
                seconds["continuity"] += time.perf_counter() - start


def analyse_pair(net_name: str, loss: str, p: dict, run: dict) -> dict:
    """The latent analysis of one (net, loss) pair in this worker: its metrics record, and the layers,
    embeddings and continuity pairs its figures need."""
    sets, name = worker_state(), f"{net_name}-{loss}"
    paths = model_paths(name, p["launches"])
    acc = {"layers": {}, "embeddings": {}, "pairs": {}, "separability": {},
           "seconds": {"codes": 0.0, "sweep": 0.0, "separability": 0.0, "continuity": 0.0}}
    for launch in range(1, len(paths) + 1):
        _launch(net_name, launch, paths, sets, p, run, acc)
    launches = list(range(1, len(paths) + 1))
    result: dict = {}
    for (layer, variant, reducer), results in acc["separability"].items():
        result.setdefault(layer, {}).setdefault(variant, {})[reducer] = separability.collect(
            results, launches, p["apart_margin"])
    record = {
        "net": net_name, "loss": loss, "primary_layer": PRIMARY_LAYER[net_name],
        "image_sets": list(sets), "images_per_set": {v: len(d["labels"]) for v, d in sets.items()},
        "dims": p["dims"], "reducers": p["reducers"],
        "classifier": "one-vs-rest ridge classifier per class, balanced class weights, standardised features",
        "sweep_launch": 1, "layers": acc["layers"],
        "separability_method": separability.describe(p["separability_knn"], p["holdout_fraction"], p["apart_margin"]),
        "separability": result,
    }
    return {"name": name, "record": record, "embeddings": acc["embeddings"], "pairs": acc["pairs"],
            "labels": {v: d["labels"] for v, d in sets.items()},
            "seconds": {k: round(v, 2) for k, v in acc["seconds"].items()}}
